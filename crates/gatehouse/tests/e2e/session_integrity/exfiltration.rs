//! Copying sensitive values into an object the session may read back unmasked: a temporary
//! table filled by `CREATE TABLE AS EXECUTE`, `SELECT INTO`, through a temporary view, or a
//! non-sensitive table filled by a prepared `INSERT … SELECT`. Each copy is refused or its
//! values stay masked when read back; nothing clear reaches the client either way.

use super::{assert_all_passed, attempt, direct, leaked, raw, run_all, start};

#[tokio::test]
async fn sensitive_values_cannot_be_copied_into_objects_read_back_in_clear() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "CREATE TEMP TABLE AS EXECUTE",
            &[
                "PREPARE p AS SELECT id, email, ssn FROM users",
                "CREATE TEMP TABLE copied AS EXECUTE p",
            ],
            "SELECT * FROM copied",
        ),
        (
            "CREATE TEMP TABLE AS EXECUTE, after EXECUTEs",
            &[
                "PREPARE p AS SELECT id, email, ssn FROM users",
                "EXECUTE p",
                "PREPARE p2 AS SELECT lower(email) FROM users WHERE id = $1",
                "EXECUTE p2(1)",
                "CREATE TEMP TABLE copied AS EXECUTE p",
            ],
            "SELECT * FROM copied",
        ),
        (
            "SELECT INTO TEMP",
            &["SELECT id, ssn INTO TEMP copied FROM users"],
            "SELECT * FROM copied",
        ),
        (
            "CREATE TEMP TABLE AS an expression",
            &["CREATE TEMP TABLE copied AS SELECT lower(email) AS e FROM users"],
            "SELECT * FROM copied",
        ),
        (
            "CREATE TEMP TABLE AS a temp view",
            &[
                "CREATE TEMP VIEW tv AS SELECT ssn FROM users",
                "CREATE TEMP TABLE copied AS SELECT * FROM tv",
            ],
            "SELECT * FROM copied",
        ),
        (
            "prepared INSERT … SELECT into a non-sensitive table",
            &[
                "PREPARE ins AS INSERT INTO pets SELECT id + 100, ssn FROM users",
                "EXECUTE ins",
            ],
            "SELECT name FROM pets",
        ),
    ];
    let mut failures = Vec::new();
    for (what, steps, read_back) in cases {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                run_all(&mut c, steps).await;
                run_all(&mut c, &[read_back]).await;
            })
            .await,
        );
    }
    // Nothing clear was written into the shared, non-sensitive table either.
    let pets = direct(gh)
        .await
        .query("SELECT coalesce(name, '') FROM pets", &[])
        .await
        .unwrap();
    let names: Vec<String> = pets.iter().map(|r| r.get(0)).collect();
    let found = leaked(names.join(" ").as_bytes());
    failures.push(
        (!found.is_empty())
            .then(|| format!("[stored in pets] clear values copied into pets: {found:?}")),
    );
    assert_all_passed(failures);
}

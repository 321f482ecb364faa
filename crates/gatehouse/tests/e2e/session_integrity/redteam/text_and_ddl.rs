//! Round one: settings that change how the server reads text, and DDL that moves values.

use super::*;

/// The proxy lexes every query as UTF-8; the server lexes it after converting from the
/// session's client_encoding, which a client may set (startup parameter or SET). In SJIS (also
/// BIG5, GBK, UHC, GB18030) 0x5C can be the second byte of a character: the bytes C3 81 5C are
/// "Á\" to the proxy (a backslash that escapes the next quote in an E'' literal) but a katakana
/// and one two-byte character to the server (no backslash, the quote ends the literal). What
/// the proxy takes for a literal, the server runs as SQL: unmasked columns, a DELETE without an
/// effective WHERE, a DROP TABLE nobody audited.
#[tokio::test]
async fn defence_client_encoding_sjis_cannot_make_the_server_run_what_the_proxy_saw_as_a_literal() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("raw: SELECT hidden in a literal", async {
            let mut c = raw(gh, token).await;
            // Secure outcomes: the SET refused, or the session ended before anything else ran.
            let _ = c.simple("SET client_encoding = 'SJIS'").await;
            let r = c
                .simple("SELECT E'Á\\', upper(email) AS e, upper(ssn) AS s FROM users -- '")
                .await;
            assert_no_secrets("SELECT E'Á\\', upper(email), upper(ssn) …", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("raw: DELETE whose WHERE hides in a literal", async {
            let mut c = raw(gh, token).await;
            // Secure outcomes: the SET refused, or the session ended before anything else ran.
            let _ = c.simple("SET client_encoding = 'SJIS'").await;
            let _ = c
                .simple("DELETE FROM orders WHERE E'Á\\' = '' OR true --' = 'x' AND id = 10")
                .await;
            let db = direct(gh).await;
            let n: i64 = db
                .query_one("SELECT count(*) FROM orders", &[])
                .await
                .unwrap()
                .get(0);
            if n != 2 {
                db.batch_execute(
                    "DELETE FROM orders; INSERT INTO orders VALUES (10, 1, 500), (11, 2, 700)",
                )
                .await
                .unwrap();
            }
            assert_eq!(n, 2, "the DELETE removed every row of orders");
        })
        .await,
    );
    failures.push(
        attempt("raw: DROP TABLE hidden in a literal", async {
            let mut c = raw(gh, token).await;
            // Secure outcomes: the SET refused, or the session ended before anything else ran.
            let _ = c.simple("SET client_encoding = 'SJIS'").await;
            let _ = c.simple("SELECT E'Á\\'; DROP TABLE orders; --'").await;
            assert_orders_intact(gh, "SELECT E'Á\\'; DROP TABLE orders; --'").await;
        })
        .await,
    );
    failures.push(
        attempt("psycopg with client_encoding=SJIS (startup parameter)", async {
            let tap = Tap::start(gh.port).await;
            let script = r#"
import sys, psycopg
port, token = sys.argv[1], sys.argv[2]
jp = b"\xc3\x81\x5c".decode("shift_jis")
try:
    conn = psycopg.connect(host="127.0.0.1", port=port, user="alice", password=token,
                           dbname="app", client_encoding="SJIS", autocommit=True)
except psycopg.OperationalError as e:
    print("refused at login", e)
    sys.exit(0)
with conn:
    try:
        rows = conn.execute("SELECT E'" + jp + "', upper(email) AS e, upper(ssn) AS s FROM users -- '").fetchall()
        print(len(rows))
    except Exception as e:
        print("error", e)
"#;
            let out = tokio::process::Command::new(python())
                .args(["-c", script, &tap.port.to_string(), token])
                .output()
                .await
                .expect("python runs");
            assert!(
                out.status.success(),
                "python: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_no_secrets("psycopg, SJIS", &tap.received());
        })
        .await,
    );
    assert_all_passed(failures);
}

/// The same split through `standard_conforming_strings = off` (a permitted SET and startup
/// parameter): the server then reads `\'` inside a plain literal as an escaped quote, while
/// the proxy's parser keeps the standard meaning. Both see two statements, so nothing is out
/// of step, but the second is a different statement on each side.
#[tokio::test]
async fn defence_standard_conforming_strings_off_cannot_make_the_server_run_a_different_statement()
{
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("SELECT of names (proxy) / of ssn (server)", async {
            let mut c = raw(gh, token).await;
            let _ = c.simple("SET standard_conforming_strings = off").await;
            let r = c
                .simple(
                    "SELECT 'a\\'; SELECT upper(name) AS n FROM users WHERE '' = '; \
                     SELECT upper(email) AS e, upper(ssn) AS s FROM users; --'",
                )
                .await;
            assert_no_secrets("scs off", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt(
            "bounded DELETE (proxy) / unbounded DELETE (server)",
            async {
                let mut c = raw(gh, token).await;
                let _ = c.simple("SET standard_conforming_strings = off").await;
                let _ = c
                    .simple(
                        "SELECT 'a\\'; DELETE FROM orders WHERE id = 10 AND '' = '; \
                     DELETE FROM orders; --'",
                    )
                    .await;
                let db = direct(gh).await;
                let n: i64 = db
                    .query_one("SELECT count(*) FROM orders", &[])
                    .await
                    .unwrap()
                    .get(0);
                if n != 2 {
                    db.batch_execute(
                        "DELETE FROM orders; INSERT INTO orders VALUES (10, 1, 500), (11, 2, 700)",
                    )
                    .await
                    .unwrap();
                }
                assert_eq!(n, 2, "the DELETE removed every row of orders");
            },
        )
        .await,
    );
    assert_all_passed(failures);
}

/// Python with psycopg: `$GATEHOUSE_TEST_PYTHON` or the repository's `.venv`.
fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return p.into();
    }
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// With DDL permitted (as this suite's policy does), objects that run code or rename columns
/// move sensitive values past lineage: a user function that shadows a built-in name (a better
/// argument match), a trigger, a column default, RENAME COLUMN.
#[tokio::test]
async fn finding_ddl_moves_sensitive_values_past_lineage() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("user lower(integer) shadows the built-in", async {
            let mut c = raw(gh, token).await;
            let r = c
                .simple(
                    "CREATE FUNCTION public.lower(integer) RETURNS text LANGUAGE sql \
                     AS $$ SELECT string_agg(ssn, ',') FROM public.users $$",
                )
                .await;
            assert_no_secrets("CREATE FUNCTION", &r.bytes);
            let r = c.simple("SELECT lower(1)").await;
            assert_no_secrets("SELECT lower(1)", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("trigger copies values into a non-sensitive column", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     NEW.name := (SELECT string_agg(email, ',') FROM public.users); \
                     RETURN NEW; END $$",
                    "CREATE TRIGGER steal BEFORE INSERT ON pets FOR EACH ROW EXECUTE FUNCTION steal()",
                ],
            )
            .await;
            let r = c
                .simple("INSERT INTO pets VALUES (42, 'x') RETURNING name")
                .await;
            assert_no_secrets("INSERT … RETURNING name", &r.bytes);
            let r = c.simple("SELECT name FROM pets WHERE id = 42").await;
            assert_no_secrets("SELECT name FROM pets", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("column default copies values", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "CREATE FUNCTION grab() RETURNS text LANGUAGE sql \
                     AS $$ SELECT string_agg(ssn, ',') FROM public.users $$",
                    "CREATE TABLE notes (id int, body text DEFAULT grab())",
                ],
            )
            .await;
            let r = c
                .simple("INSERT INTO notes (id) VALUES (1) RETURNING body")
                .await;
            assert_no_secrets("INSERT … DEFAULT RETURNING body", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("RENAME COLUMN sheds the configured name", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["ALTER TABLE users RENAME COLUMN ssn TO tax_id"]).await;
            // The proxy reloads its catalog after DDL.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let r = c.simple("SELECT tax_id FROM users").await;
            assert_masked_or_refused("SELECT tax_id FROM users", &r, 3);
        })
        .await,
    );
    assert_all_passed(failures);
}

// ---------------------------------------------------------------------------------------------
// Defences that hold
// ---------------------------------------------------------------------------------------------

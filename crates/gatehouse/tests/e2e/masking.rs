//! Masking end to end: recognisable fake PII never appears in the bytes a client receives,
//! through every read route, in text (psql) and binary (tokio-postgres) formats, while a
//! principal permitted to unmask sees clear values and other columns are untouched.

use crate::harness::{pg_tool, Gatehouse, Options};
use tokio_postgres::SimpleQueryMessage;

const SETUP: &str = "
CREATE TABLE users (id int PRIMARY KEY, name text, email text, ssn text, age int);
INSERT INTO users VALUES
  (1, 'Ada', 'ada.secret@example.com', '123-45-6789', 36),
  (2, 'Alan', 'alan.secret@example.org', '234-56-7890', 41);
CREATE TABLE orders (id int PRIMARY KEY, user_id int, total int);
INSERT INTO orders VALUES (10, 1, 500), (11, 2, 700);
CREATE VIEW contacts AS SELECT id, name, email FROM users;
CREATE UNIQUE INDEX users_email ON users (email);
CREATE FUNCTION leak() RETURNS text LANGUAGE sql AS 'SELECT ssn FROM users LIMIT 1';
";

const SENSITIVE: &str = r#"
[[sensitive]]
target = "app"
columns = ["public.users.email"]
tags = ["pii", "contact"]
mask = "email"
[[sensitive]]
target = "app"
columns = ["public.users.ssn"]
tags = ["pii", "ssn"]
mask = "last4"
"#;

const UNMASK: &str = r#"
@id("support-sees-contact")
permit(principal in Gatehouse::Group::"support", action == Gatehouse::Action::"unmask", resource)
when { resource.tags.contains("contact") };
"#;

const SECRETS: [&str; 4] = ["ada.secret", "alan.secret", "123-45-6789", "234-56-7890"];

async fn start() -> Gatehouse {
    Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: SETUP.into(),
        policies: UNMASK.into(),
        ..Options::default()
    })
    .await
}

/// Every cell of a simple-protocol result (text format), flattened.
async fn texts(c: &tokio_postgres::Client, sql: &str) -> Vec<String> {
    let rows = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn assert_clean(what: &str, cells: &[String]) {
    for s in SECRETS {
        assert!(
            !cells.iter().any(|c| c.contains(s)),
            "{what}: {s} leaked in {cells:?}"
        );
    }
}

#[tokio::test]
async fn every_read_route_is_masked_in_text_format() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let c = gh.connect("alice", &token).await;
    let routes = [
        "SELECT * FROM users",
        "SELECT u.* FROM users u",
        "SELECT email AS e, ssn FROM users",
        "SELECT lower(email), email || '', upper(ssn) FROM users",
        "SELECT CASE WHEN id = 1 THEN email ELSE 'x' END FROM users",
        "SELECT coalesce(email, 'none') FROM users",
        "SELECT (SELECT email FROM users WHERE id = 1)",
        "SELECT e FROM (SELECT email AS e FROM users) s",
        "WITH c AS (SELECT email FROM users) SELECT * FROM c",
        "WITH RECURSIVE r(e, n) AS (SELECT email, 1 FROM users UNION ALL SELECT e, n + 1 FROM r WHERE n < 2) SELECT e FROM r",
        "SELECT email FROM users UNION SELECT 'x'",
        "SELECT o.total, u.email FROM orders o JOIN users u ON u.id = o.user_id",
        "SELECT * FROM contacts",
        "SELECT string_agg(email, ',') FROM users",
        "SELECT max(ssn) FROM users",
        "SELECT email, row_number() OVER () FROM users",
        "SELECT row_to_json(u) FROM users u",
        "SELECT to_jsonb(u) FROM users u",
        "SELECT u::text FROM users u",
        "SELECT json_agg(u) FROM users u",
        "SELECT array_agg(u) FROM users u",
        "SELECT ROW(u.*) FROM users u",
    ];
    for sql in routes {
        assert_clean(sql, &texts(&c, sql).await);
    }
    // Non-sensitive columns are untouched; the email mask keeps the domain.
    let cells = texts(&c, "SELECT id, name, email, age FROM users WHERE id = 1").await;
    assert_eq!(cells, vec!["1", "Ada", "a***@example.com", "36"]);
    // RETURNING of a write is a read too.
    let cells = texts(
        &c,
        "UPDATE users SET age = age + 1 WHERE id = 2 RETURNING email, age",
    )
    .await;
    assert_clean("RETURNING", &cells);
    assert_eq!(cells.get(1).map(String::as_str), Some("42"));
}

#[tokio::test]
async fn binary_format_and_extended_protocol_are_masked() {
    let gh = start().await;
    let token = gh.issue("bot", "agent", &[]).await;
    let c = gh.connect("bot", &token).await;
    // tokio-postgres asks for binary results.
    let rows = c
        .query(
            "SELECT id, email, ssn, age FROM users WHERE id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    let email: String = rows[0].get(1);
    let ssn: String = rows[0].get(2);
    assert_eq!(email, "a***@example.com");
    assert_eq!(ssn, "****6789");
    assert_eq!(rows[0].get::<_, i32>(3), 36);
    let stmt = c
        .prepare("SELECT email FROM contacts ORDER BY id")
        .await
        .unwrap();
    for _ in 0..2 {
        let rows = c.query(&stmt, &[]).await.unwrap();
        let got: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        assert_clean("prepared", &got);
        assert_eq!(got.len(), 2);
    }
}

#[tokio::test]
async fn psql_bytes_never_carry_the_clear_values() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let out = tokio::process::Command::new(pg_tool("psql"))
        .arg(gh.conninfo("alice"))
        .args([
            "-X",
            "-At",
            "-c",
            "SELECT * FROM users",
            "-c",
            "SELECT row_to_json(u) FROM users u",
        ])
        .env("PGPASSWORD", &token)
        .output()
        .await
        .unwrap();
    let all =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{all}");
    assert_clean("psql", std::slice::from_ref(&all));
    assert!(all.contains("a***@example.com"), "{all}");
}

#[tokio::test]
async fn side_channels_are_refused() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    for sql in [
        "SELECT id FROM users WHERE ssn LIKE '1%'",
        "SELECT id FROM users ORDER BY email",
        "SELECT count(*) FROM users GROUP BY email",
        "SELECT o.id FROM orders o JOIN users u ON u.email = 'x'",
        "INSERT INTO orders (id, user_id, total) SELECT 99, 1, length(email) FROM users WHERE id = 1",
        "CREATE TABLE leak AS SELECT email FROM users",
        "COPY users TO STDOUT (FORMAT csv)",
        "SELECT * FROM pg_stats WHERE tablename = 'users'",
        "SELECT leak()",
        "SELECT id, leak() FROM orders",
    ] {
        let e = c.simple_query(sql).await.expect_err(sql);
        let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
        assert_eq!(db.code().code(), "42501", "{sql}: {db:?}");
    }
    // An error that would echo a sensitive value is masked too.
    let e = c
        .simple_query("INSERT INTO users VALUES (3, 'X', 'ada.secret@example.com', NULL, 1)")
        .await
        .unwrap_err();
    let db = e.as_db_error().unwrap();
    assert_eq!(db.code().code(), "23505");
    let text = format!("{} {}", db.message(), db.detail().unwrap_or_default());
    assert!(!text.contains("ada.secret"), "{text}");
}

#[tokio::test]
async fn permitted_principals_see_clear_values_and_audit_names_masked_columns() {
    let gh = start().await;
    let support = gh.issue("sam", "human", &["support"]).await;
    let c = gh.connect("sam", &support).await;
    let cells = texts(&c, "SELECT email, ssn FROM users WHERE id = 1").await;
    assert_eq!(
        cells,
        vec!["ada.secret@example.com", "****6789"],
        "contact tag unmasked, ssn not"
    );
    let alice = gh.issue("alice", "human", &[]).await;
    let a = gh.connect("alice", &alice).await;
    texts(&a, "SELECT email, name FROM users").await;
    let events = gh
        .wait_events("masked columns", |evs| {
            evs.iter()
                .any(|e| e["statement"] == "SELECT email, name FROM users")
        })
        .await;
    let ev = events
        .iter()
        .find(|e| e["statement"] == "SELECT email, name FROM users")
        .unwrap();
    assert_eq!(ev["masked"][0], "email:contact,pii");
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("****6789") || !all.contains("123-45-6789"));
}

#[tokio::test]
async fn classify_suggests_the_pii_columns() {
    let gh = start().await;
    let out = gh.cli(&["classify", "--target", "app"]).await;
    assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("\"public.users.email\""),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("\"public.users.ssn\""),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("public.orders.total"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("ada.secret"),
        "classify prints no values"
    );
}

#[tokio::test]
async fn copy_to_stdout_rows_are_masked() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    for sql in [
        "COPY users TO STDOUT",
        "COPY (SELECT id, lower(email), ssn FROM users) TO STDOUT",
        "COPY users (email) TO STDOUT",
    ] {
        let stream = c
            .copy_out(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        let chunks: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(stream)
            .await
            .unwrap();
        let text: String = chunks
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        assert_clean(sql, std::slice::from_ref(&text));
        assert_eq!(text.lines().count(), 2, "{sql}: {text}");
    }
}

#[tokio::test]
async fn psycopg_and_sqlalchemy_receive_masked_values() {
    let gh = start().await;
    let token = gh.issue("py", "agent", &[]).await;
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var_os("GATEHOUSE_TEST_PYTHON")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join(".venv/bin/python"));
    let out = tokio::process::Command::new(&python)
        .arg(root.join("tests/python/masking_clients.py"))
        .args(["127.0.0.1", &gh.port.to_string(), "py", "app"])
        .env("PGPASSWORD", &token)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Vec<String> = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap();
    assert_clean("psycopg/SQLAlchemy", &seen);
    assert!(seen.iter().any(|v| v == "a***@example.com"), "{seen:?}");
}

#[tokio::test]
async fn another_search_path_does_not_bypass_masking() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute("SET search_path = nosuchschema, public")
        .await
        .unwrap();
    assert_clean(
        "search_path",
        &texts(&c, "SELECT email, ssn FROM users").await,
    );
}

#[tokio::test]
async fn safety_net_redacts_detected_values_in_unlisted_columns() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: "[masking]\ndetect_all_text = true\n".into(),
        setup_sql: "CREATE TABLE notes (id int, body text, n int);
            INSERT INTO notes VALUES (1, 'call ada.secret@example.com, key AKIAIOSFODNN7EXAMPLE', 7),
                                     (2, 'nothing to see', 8);"
            .into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    let cells = texts(&c, "SELECT body, n FROM notes ORDER BY id").await;
    let all = cells.join(" ");
    assert!(
        !all.contains("ada.secret") && !all.contains("AKIAIOSFODNN7EXAMPLE"),
        "{all}"
    );
    assert!(
        cells.contains(&"nothing to see".to_owned()) && cells.contains(&"7".to_owned()),
        "{cells:?}"
    );
    // Binary format (extended protocol) too.
    let rows = c
        .query("SELECT body FROM notes WHERE id = $1", &[&1i32])
        .await
        .unwrap();
    let body: String = rows[0].get(0);
    assert!(
        !body.contains("ada.secret") && !body.contains("AKIAIOSFODNN7EXAMPLE"),
        "{body}"
    );
}

//! The audit trail of one session: connect, authenticated, one `statement` event per
//! statement (simple and extended protocol, with parameters, outcome, rows, duration),
//! disconnect; every event carries who, from where, to which target, in which session.

use crate::harness::{db_error, of_kind, Gatehouse};
use serde_json::{json, Value};

const APP: &str = "audit-e2e";

/// Starts a proxy and runs one session as the agent `etl-bot` (groups etl, oncall); returns
/// the proxy and the session's events once its disconnect is stored.
async fn session_events(
    work: impl AsyncFnOnce(&tokio_postgres::Client),
) -> (Gatehouse, Vec<Value>) {
    let gh = Gatehouse::start().await;
    let token = gh.issue("etl-bot", "agent", &["etl", "oncall"]).await;
    let mut cfg = gh.pg_config("etl-bot", &token);
    cfg.application_name(APP);
    let client = crate::harness::connect(cfg).await;
    work(&client).await;
    drop(client);
    let events = gh
        .wait_events("disconnect", |evs| !of_kind(evs, "disconnect").is_empty())
        .await;
    (gh, events)
}

fn statements(events: &[Value]) -> Vec<&Value> {
    of_kind(events, "statement")
}

/// The statement event whose text is exactly `sql`.
fn stmt<'a>(events: &'a [Value], sql: &str) -> &'a Value {
    statements(events)
        .into_iter()
        .find(|e| e["statement"] == sql)
        .unwrap_or_else(|| {
            let texts: Vec<&Value> = statements(events).iter().map(|e| &e["statement"]).collect();
            panic!("no statement event for {sql:?}; have {texts:?}")
        })
}

#[tokio::test]
async fn session_lifecycle_and_extended_statements_are_audited() {
    let (gh, events) = session_events(async |c| {
        c.batch_execute("CREATE TABLE t (a int, b text)")
            .await
            .unwrap();
        // Extended protocol: parameters of several types, one INSERT, one SELECT, one error.
        let n = c
            .execute(
                "INSERT INTO t VALUES ($1, $2), ($3, $4)",
                &[&7i32, &"seven", &8i32, &None::<&str>],
            )
            .await
            .unwrap();
        assert_eq!(n, 2);
        let rows = c
            .query("SELECT a, b FROM t WHERE a >= $1 ORDER BY a", &[&7i32])
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        // Fails while executing (not while planning at Bind: `a` is a column).
        let e = c
            .query("SELECT 1 / (a - $1) FROM t", &[&7i32])
            .await
            .unwrap_err();
        assert_eq!(db_error(&e).0, "22012");
        // Simple protocol error.
        let e = c
            .batch_execute("SELECT * FROM missing_table")
            .await
            .unwrap_err();
        assert_eq!(db_error(&e).0, "42P01");
    })
    .await;

    // The order of the session's lifecycle.
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"connect"), "{kinds:?}");
    assert_eq!(kinds.get(1), Some(&"authenticated"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"disconnect"), "{kinds:?}");
    assert!(
        kinds[2..kinds.len() - 1].iter().all(|k| *k == "statement"),
        "{kinds:?}"
    );

    // Every event: same session, client address, application name, target; ids consecutive,
    // each linked to the previous hash.
    let session = events[0]["session"].as_str().unwrap().to_owned();
    assert!(session.len() >= 16, "session id {session:?}");
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e["id"], json!(i as u64 + 1), "{e}");
        assert_eq!(e["session"], session.as_str(), "{e}");
        assert!(
            e["client_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
            "{e}"
        );
        assert_eq!(e["application_name"], APP, "{e}");
        assert_eq!(e["target"], "app", "{e}");
        assert!(
            e["time"]
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.contains('T')),
            "{e}"
        );
        assert_eq!(e["hash"].as_str().map(str::len), Some(64), "{e}");
        if i > 0 {
            assert_eq!(e["prev_hash"], events[i - 1]["hash"], "chain link at {e}");
        }
    }
    // From authentication on, the identity is the proven one with its kind and groups.
    assert_eq!(events[0]["identity"], "etl-bot");
    for e in &events[1..] {
        assert_eq!(e["identity"], "etl-bot", "{e}");
        assert_eq!(e["identity_kind"], "agent", "{e}");
        assert_eq!(e["groups"], json!(["etl", "oncall"]), "{e}");
    }

    // Extended protocol: one event per Execute, parameters rendered (tokio-postgres binds
    // them in binary: \x hex; NULL stays null).
    let insert = stmt(&events, "INSERT INTO t VALUES ($1, $2), ($3, $4)");
    assert_eq!(
        insert["params"],
        json!(["\\x00000007", "\\x736576656e", "\\x00000008", null])
    );
    assert_eq!(insert["outcome"], json!({"status": "ok"}));
    assert_eq!(insert["rows"], 2);
    let select = stmt(&events, "SELECT a, b FROM t WHERE a >= $1 ORDER BY a");
    assert_eq!(select["params"], json!(["\\x00000007"]));
    assert_eq!(select["rows"], 2);
    assert_eq!(select["outcome"]["status"], "ok");
    let failed = stmt(&events, "SELECT 1 / (a - $1) FROM t");
    assert_eq!(failed["params"], json!(["\\x00000007"]));
    assert_eq!(failed["outcome"]["status"], "error");
    assert_eq!(failed["outcome"]["sqlstate"], "22012");
    assert_eq!(failed["outcome"]["message"], "division by zero");
    assert!(failed["rows"].is_null(), "{failed}");
    let missing = stmt(&events, "SELECT * FROM missing_table");
    assert_eq!(missing["outcome"]["sqlstate"], "42P01");
    let create = stmt(&events, "CREATE TABLE t (a int, b text)");
    assert_eq!(create["outcome"]["status"], "ok");
    for s in statements(&events) {
        assert!(s["duration_us"].is_u64(), "duration_us missing: {s}");
    }
    // Exactly one event per statement run (no duplicates, nothing for Parse/Describe/Sync).
    assert_eq!(statements(&events).len(), 5, "{:#?}", statements(&events));
    let disconnect = events.last().unwrap();
    assert_eq!(disconnect["outcome"]["status"], "ok", "{disconnect}");

    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
}

/// Issue §5: "every statement (each statement of a multi-statement query …)".
#[tokio::test]
async fn each_statement_of_a_simple_query_is_one_event() {
    let (_gh, events) = session_events(async |c| {
        c.batch_execute(
            "CREATE TABLE m (a int); INSERT INTO m VALUES (1), (2), (3); SELECT * FROM m",
        )
        .await
        .unwrap();
        let e = c
            .batch_execute(
                "UPDATE m SET a = a + 1 WHERE a > 0; SELECT 1/0; DELETE FROM m WHERE a > 100",
            )
            .await
            .unwrap_err();
        assert_eq!(db_error(&e).0, "22012");
    })
    .await;
    let stmts = statements(&events);
    let texts: Vec<&str> = stmts
        .iter()
        .map(|e| {
            e["statement"]
                .as_str()
                .unwrap()
                .trim()
                .trim_end_matches(';')
                .trim()
        })
        .collect();
    // The statement after the error never ran: no event, or one that does not claim success.
    if let Some(skipped) = stmts.get(5) {
        assert_ne!(skipped["outcome"]["status"], "ok", "{skipped}");
    }
    assert!(stmts.len() <= 6, "{texts:?}");
    assert_eq!(
        texts[..5.min(texts.len())],
        vec![
            "CREATE TABLE m (a int)",
            "INSERT INTO m VALUES (1), (2), (3)",
            "SELECT * FROM m",
            "UPDATE m SET a = a + 1 WHERE a > 0",
            "SELECT 1/0",
        ],
        "one event per statement that ran"
    );
    assert_eq!(stmts[1]["rows"], 3);
    assert_eq!(stmts[2]["rows"], 3);
    assert_eq!(stmts[3]["rows"], 3);
    assert_eq!(stmts[3]["outcome"]["status"], "ok");
    assert_eq!(stmts[4]["outcome"]["sqlstate"], "22012");
}

/// Issue §5: "each Execute of the extended protocol, with its parameters" and an outcome. An
/// Execute whose statement fails before it runs — at Bind (planning a custom plan folds
/// `1 / $1` with $1 = 0) or at Parse (a syntax error pipelined with Bind/Execute/Sync, as
/// JDBC, asyncpg and psycopg's pipeline mode send it) — is an attempt that must be on record
/// with its error, as the same statement over the simple protocol is.
#[tokio::test]
async fn statements_failing_at_parse_or_bind_are_audited() {
    let (_gh, events) = session_events(async |c| {
        let e = c.query("SELECT 1 / $1::int4", &[&0i32]).await.unwrap_err();
        assert_eq!(db_error(&e).0, "22012");
        // query_typed sends Parse, Bind, Describe, Execute and Sync in one go. SQL that does
        // not parse is refused by Gatehouse at Parse (fail closed) and never reaches the server.
        let e = c.query_typed("SELEC 1", &[]).await.unwrap_err();
        assert_eq!(db_error(&e).0, "42501");
    })
    .await;
    let bind_time = stmt(&events, "SELECT 1 / $1::int4");
    assert_eq!(bind_time["params"], json!(["\\x00000000"]));
    assert_eq!(bind_time["outcome"]["sqlstate"], "22012");
    let parse_time = stmt(&events, "SELEC 1");
    assert_eq!(parse_time["outcome"]["sqlstate"], "42501");
    assert_eq!(parse_time["decision"], "deny");
}

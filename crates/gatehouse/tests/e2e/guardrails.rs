//! Guardrails end to end: statements the built-in pack refuses never reach the database
//! (checked on a direct upstream connection), allowed ones run, the refusal carries SQLSTATE
//! 42501, the policy id in DETAIL and a HINT, transaction state matches what a server error
//! would leave, and the audit trail records the decision.

use crate::harness::{upstream, Gatehouse, Options};
use tokio_postgres::SimpleQueryMessage;

const SETUP: &str = "CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance int);
                     INSERT INTO accounts VALUES (1, 'ada', 100), (2, 'alan', 200), (3, 'grace', 300)";

async fn count(db: &str) -> i64 {
    let direct = upstream().connect(db).await;
    let row = direct
        .query_one("SELECT count(*) FROM accounts", &[])
        .await
        .unwrap();
    row.get(0)
}

fn refused(e: &tokio_postgres::Error) -> (String, String, Option<String>) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e}"));
    assert_eq!(db.code().code(), "42501", "{db:?}");
    assert!(db.message().starts_with("gatehouse: "), "{db:?}");
    (
        db.message().to_owned(),
        db.detail().unwrap_or_default().to_owned(),
        db.hint().map(str::to_owned),
    )
}

#[tokio::test]
async fn bypass_variants_are_refused_and_change_nothing() {
    let gh = Gatehouse::start().await;
    upstream()
        .connect(&gh.db.name)
        .await
        .batch_execute(SETUP)
        .await
        .unwrap();
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let c = gh.connect("alice", &token).await;

    let attacks = [
        "DROP TABLE accounts",
        "drop/* hidden */table accounts",
        "DrOp TaBlE \"accounts\"",
        "DROP TABLE U&\"\\0061ccounts\"",
        "SELECT 1; DROP TABLE accounts",
        "DELETE FROM accounts",
        "DELETE FROM accounts WHERE 1=1",
        "DELETE FROM accounts WHERE 'a'='a'",
        "UPDATE accounts SET balance = 0 WHERE id = id",
        "UPDATE accounts SET balance = 0 WHERE id = 1 OR true",
        "WITH gone AS (DELETE FROM accounts RETURNING *) SELECT count(*) FROM gone",
        "TRUNCATE accounts",
        "DO $$ BEGIN EXECUTE 'DROP TABLE accounts'; END $$",
        "DO $$ BEGIN DROP TABLE accounts; END $$",
        "ALTER TABLE accounts DROP COLUMN balance",
        "GRANT ALL ON accounts TO PUBLIC",
        "CREATE ROLE intruder SUPERUSER",
        "SET ROLE postgres",
        "SELECT pg_read_file('/etc/passwd')",
        "SELECT length(x) FROM (SELECT pg_read_file('/etc/hostname') AS x) s",
        "COPY accounts TO PROGRAM 'cat > /tmp/x'",
        "SET gatehouse.identity = 'eve'",
        "SELECT set_config('gatehouse.identity', 'eve', false)",
        "ALTER SYSTEM SET log_statement = 'none'",
        "LOAD 'plpgsql'",
        "this is not sql",
    ];
    for sql in attacks {
        let e = c.batch_execute(sql).await.expect_err(sql);
        let (_, detail, _) = refused(&e);
        assert!(detail.starts_with("policy: "), "{sql}: {detail}");
    }
    // The extended protocol refuses at Parse.
    for sql in [
        "DELETE FROM accounts WHERE $1::int = $1::int",
        "DROP TABLE accounts",
    ] {
        let e = c.prepare(sql).await.expect_err(sql);
        refused(&e);
    }
    assert_eq!(
        count(&gh.db.name).await,
        3,
        "nothing was deleted or dropped"
    );
    let who = c
        .query_one("SELECT current_setting('gatehouse.identity')", &[])
        .await
        .unwrap();
    assert_eq!(who.get::<_, String>(0), "alice");

    // Look-alikes that must pass.
    c.batch_execute("SELECT 'DROP TABLE accounts' AS text -- DROP TABLE accounts")
        .await
        .unwrap();
    c.batch_execute("SELECT count(*) AS drop_count FROM information_schema.tables")
        .await
        .unwrap();
    let n = c
        .execute("DELETE FROM accounts WHERE id = $1", &[&3i32])
        .await
        .unwrap();
    assert_eq!(n, 1);
    c.batch_execute("UPDATE accounts SET balance = balance + 1 WHERE owner = 'ada'")
        .await
        .unwrap();
    c.batch_execute("CREATE TEMP TABLE scratch (x int); DROP TABLE scratch")
        .await
        .unwrap();
    assert_eq!(count(&gh.db.name).await, 2);

    // The audit trail records the refusals with their policy.
    let events = gh
        .wait_events("refusals", |evs| {
            evs.iter().filter(|e| e["decision"] == "deny").count() >= attacks.len()
        })
        .await;
    let drop = events
        .iter()
        .find(|e| e["statement"] == "DROP TABLE accounts")
        .unwrap();
    assert_eq!(drop["outcome"]["sqlstate"], "42501");
    assert!(
        drop["policies"].as_array().is_some_and(|p| !p.is_empty()),
        "{drop}"
    );
    let ok = events
        .iter()
        .find(|e| e["statement"] == "DELETE FROM accounts WHERE id = $1")
        .unwrap();
    assert_eq!(ok["decision"], "allow");
    assert_eq!(ok["command"], "write:DELETE");
    assert_eq!(ok["tables"][0], "public.accounts");
    assert_eq!(gh.verify().await.0, 0);
}

#[tokio::test]
async fn refusal_inside_a_transaction_fails_it_like_a_server_error() {
    let gh = Gatehouse::start().await;
    upstream()
        .connect(&gh.db.name)
        .await
        .batch_execute(SETUP)
        .await
        .unwrap();
    let token = gh.issue("bot", "agent", &[]).await;
    let c = gh.connect("bot", &token).await;
    c.batch_execute("BEGIN; UPDATE accounts SET balance = 0 WHERE id = 1")
        .await
        .unwrap();
    let e = c.batch_execute("DELETE FROM accounts").await.unwrap_err();
    let (_, _, hint) = refused(&e);
    assert!(hint.is_some(), "an agent gets a hint to act on");
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(
        e.code().map(|c| c.code()),
        Some("25P02"),
        "transaction is failed: {e}"
    );
    c.batch_execute("ROLLBACK").await.unwrap();
    let rows = c
        .simple_query("SELECT balance FROM accounts WHERE id = 1")
        .await
        .unwrap();
    let balance = rows.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(
        balance.as_deref(),
        Some("100"),
        "the update was rolled back"
    );
    // Pipelined extended-protocol traffic around a refusal stays in step.
    let (a, b, d) = tokio::join!(
        c.query_one("SELECT $1::int + 1", &[&1i32]),
        c.prepare("DROP TABLE accounts"),
        c.query_one("SELECT $1::text", &[&"after"]),
    );
    assert_eq!(a.unwrap().get::<_, i32>(0), 2);
    refused(&b.unwrap_err());
    assert_eq!(d.unwrap().get::<_, String>(0), "after");
    assert_eq!(count(&gh.db.name).await, 3);
}

#[tokio::test]
async fn shadow_mode_records_but_lets_it_run() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: "[policy]\nmode = \"shadow\"\npaths = [\"test-permits.cedar\"]\n".into(),
        ..Options::default()
    })
    .await;
    upstream()
        .connect(&gh.db.name)
        .await
        .batch_execute(SETUP)
        .await
        .unwrap();
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute("DELETE FROM accounts").await.unwrap();
    assert_eq!(count(&gh.db.name).await, 0);
    let events = gh
        .wait_events("shadow decision", |evs| {
            evs.iter().any(|e| e["decision"] == "shadow_deny")
        })
        .await;
    let ev = events
        .iter()
        .find(|e| e["decision"] == "shadow_deny")
        .unwrap();
    assert_eq!(ev["statement"], "DELETE FROM accounts");
    assert_eq!(ev["outcome"]["status"], "ok");
}

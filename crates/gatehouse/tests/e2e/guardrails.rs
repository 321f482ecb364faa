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

/// Upstream objects the enforcement guardrails protect: an audit trigger, row-level security
/// with a policy, an event trigger, and a staging table to MERGE from.
const SAFEGUARDS: &str = "
    CREATE TABLE audit_log (n int);
    CREATE FUNCTION audit_fn() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN INSERT INTO audit_log VALUES (1); RETURN NEW; END $$;
    CREATE TRIGGER audit AFTER UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION audit_fn();
    ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
    CREATE POLICY tenant ON accounts USING (owner = current_user);
    CREATE FUNCTION ddl_fn() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN END $$;
    CREATE EVENT TRIGGER audit_ddl ON ddl_command_end EXECUTE FUNCTION ddl_fn();
    CREATE TABLE staging (id int, balance int);
    INSERT INTO staging VALUES (1, 5)";

/// The state of those objects, read directly upstream.
async fn safeguard_state(db: &str) -> String {
    let direct = upstream().connect(db).await;
    let row = direct
        .query_one(
            "SELECT (SELECT string_agg(tgname || ':' || tgenabled::text, ',') FROM pg_trigger
                      WHERE tgrelid = 'accounts'::regclass AND NOT tgisinternal),
                    (SELECT relrowsecurity::text FROM pg_class WHERE oid = 'accounts'::regclass),
                    (SELECT string_agg(polname || ':' || pg_get_expr(polqual, polrelid), ',')
                       FROM pg_policy WHERE polname = 'tenant'),
                    (SELECT count(*)::text FROM pg_rules WHERE tablename = 'accounts'),
                    (SELECT string_agg(evtname || ':' || evtenabled::text, ',') FROM pg_event_trigger),
                    current_setting('log_statement')",
            &[],
        )
        .await
        .unwrap();
    (0..6)
        .map(|i| row.get::<_, Option<String>>(i).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(" | ")
}

/// Weakening settings, disabled safeguards, catalog writes and MERGE over every row: each is
/// refused with 42501 and its own policy id, nothing of it reaches the server, and the
/// ordinary statement next to it still runs (DDL is permitted by the suite's policy file).
#[tokio::test]
async fn enforcement_guardrails_refuse_and_ordinary_neighbours_run() {
    let gh = Gatehouse::start().await;
    let direct = upstream().connect(&gh.db.name).await;
    direct.batch_execute(SETUP).await.unwrap();
    direct.batch_execute(SAFEGUARDS).await.unwrap();
    let before = safeguard_state(&gh.db.name).await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let c = gh.connect("alice", &token).await;

    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "builtin.no-weakening-settings",
            &[
                "SET session_replication_role = replica",
                "set SESSION_REPLICATION_ROLE to 'local'",
                "SELECT set_config('session_replication_role', 'replica', false)",
                "SET row_security = off",
                "SET log_statement = 'none'",
                "SET log_min_duration_statement = -1",
                "SET pgaudit.log = 'none'",
                "SET default_transaction_read_only = off",
                "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                "BEGIN READ WRITE",
                "SELECT 1; SET session_replication_role = replica",
                "DO $$ BEGIN SET session_replication_role = replica; \
                 UPDATE accounts SET balance = 0 WHERE id = 1; END $$",
            ],
            &[
                "SET statement_timeout = 0",
                "SET session_replication_role = origin",
                "RESET session_replication_role",
                "BEGIN READ ONLY; SELECT 1; COMMIT",
            ],
        ),
        (
            "builtin.no-disabling-safeguards",
            &[
                "ALTER TABLE accounts DISABLE TRIGGER ALL",
                "alter table accounts disable trigger audit",
                "ALTER TABLE U&\"\\0061ccounts\" DISABLE TRIGGER USER",
                "ALTER TABLE accounts ENABLE REPLICA TRIGGER audit",
                "DROP TRIGGER audit ON accounts",
                "CREATE OR REPLACE TRIGGER audit AFTER UPDATE ON accounts \
                 FOR EACH ROW EXECUTE FUNCTION ddl_fn()",
                "ALTER TABLE accounts DISABLE ROW LEVEL SECURITY",
                "ALTER TABLE accounts NO FORCE ROW LEVEL SECURITY",
                "DROP POLICY tenant ON accounts",
                "ALTER POLICY tenant ON accounts USING (true)",
                "CREATE POLICY open ON accounts USING (true)",
                "CREATE RULE keep AS ON DELETE TO accounts DO INSTEAD NOTHING",
                "ALTER EVENT TRIGGER audit_ddl DISABLE",
                "DROP EVENT TRIGGER audit_ddl",
                "SELECT 1; /* x */ ALTER TABLE accounts DISABLE TRIGGER ALL",
                "DO $$ BEGIN ALTER TABLE accounts DISABLE TRIGGER ALL; END $$",
            ],
            &[
                "ALTER TABLE accounts ENABLE TRIGGER ALL",
                "ALTER TABLE accounts ADD COLUMN note text",
                "CREATE POLICY positive ON accounts AS RESTRICTIVE USING (balance >= 0)",
            ],
        ),
        (
            "builtin.no-catalog-writes",
            &[
                "UPDATE pg_catalog.pg_trigger SET tgenabled = 'D' WHERE tgname = 'audit'",
                "update PG_CATALOG.PG_TRIGGER set tgenabled = 'D' where tgname = 'audit'",
                "DELETE FROM pg_policy WHERE polname = 'tenant'",
                "UPDATE pg_settings SET setting = 'replica' WHERE name = 'session_replication_role'",
                "UPDATE pg_settings SET setting = 'eve' WHERE name = 'gatehouse.identity'",
                "WITH x AS (UPDATE pg_authid SET rolsuper = false WHERE rolname = 'nobody' \
                 RETURNING 1) SELECT count(*) FROM x",
            ],
            &[
                "SELECT tgenabled FROM pg_catalog.pg_trigger WHERE tgname = 'audit' FOR UPDATE",
                "SELECT count(*) FROM pg_class",
            ],
        ),
        (
            "builtin.unfiltered-merge",
            &[
                "MERGE INTO accounts USING staging ON true WHEN MATCHED THEN DELETE",
                "merge into accounts a using staging s on s.id = 1 \
                 when matched then update set balance = 0",
                "MERGE INTO accounts a USING staging s ON a.id = s.id \
                 WHEN NOT MATCHED BY SOURCE THEN DELETE",
            ],
            &["MERGE INTO accounts a USING staging s ON a.id = s.id \
               WHEN MATCHED THEN UPDATE SET balance = s.balance"],
        ),
    ];
    for (policy, refused_sql, allowed_sql) in cases {
        for sql in refused_sql.iter() {
            let e = c.batch_execute(sql).await.expect_err(sql);
            let (_, detail, hint) = refused(&e);
            assert_eq!(detail, format!("policy: {policy}"), "{sql}");
            assert!(hint.is_some_and(|h| !h.is_empty()), "{sql}");
        }
        for sql in allowed_sql.iter() {
            c.batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    // The extended protocol refuses at Parse, like the simple one.
    for sql in [
        "SET session_replication_role = replica",
        "ALTER TABLE accounts DISABLE TRIGGER ALL",
        "DELETE FROM pg_catalog.pg_trigger WHERE tgname = $1",
    ] {
        refused(&c.prepare(sql).await.expect_err(sql));
    }

    // Nothing reached the server: safeguards intact, the setting unchanged, the trigger fires.
    let show = c
        .simple_query("SHOW session_replication_role")
        .await
        .unwrap();
    let mode = show.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
        _ => None,
    });
    assert_eq!(mode.as_deref(), Some("origin"));
    assert_eq!(safeguard_state(&gh.db.name).await, before);
    c.batch_execute("UPDATE accounts SET balance = balance + 1 WHERE id = 2")
        .await
        .unwrap();
    let audited = direct
        .query_one("SELECT count(*) FROM audit_log", &[])
        .await
        .unwrap();
    assert!(
        audited.get::<_, i64>(0) >= 2,
        "the audit trigger still fires"
    );
    assert_eq!(count(&gh.db.name).await, 3, "no MERGE deleted anything");
    let merged = direct
        .query_one("SELECT balance FROM accounts WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(merged.get::<_, i32>(0), 5, "the keyed MERGE ran");

    let events = gh
        .wait_events("enforcement refusals", |evs| {
            evs.iter()
                .any(|e| e["statement"] == "ALTER TABLE accounts DISABLE TRIGGER ALL")
        })
        .await;
    let ev = events
        .iter()
        .find(|e| e["statement"] == "ALTER TABLE accounts DISABLE TRIGGER ALL")
        .unwrap();
    assert_eq!(ev["decision"], "deny");
    assert_eq!(ev["outcome"]["sqlstate"], "42501");
    assert_eq!(gh.verify().await.0, 0);
}

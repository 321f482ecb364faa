//! Ordinary work by a principal who may not unmask must not be refused: psql's
//! meta-commands, information_schema and catalog introspection, pg_stat_activity,
//! PREPARE/EXECUTE of a plain query, and a temporary view (masked through its lineage).

use super::rawpg::Tap;
use super::{assert_no_secrets, assert_ok, raw, start};
use crate::harness::{pg_tool, WAIT};
use std::process::Stdio;

#[tokio::test]
async fn psql_meta_commands_work_for_a_principal_who_may_not_unmask() {
    let (gh, token) = start().await;
    let tap = Tap::start(gh.port).await;
    // (command, text its output must contain; "" = any output)
    let commands = [
        ("\\d users", "ssn"),
        ("\\d+ users", "ssn"),
        ("\\d people", "Number of partitions: 1"),
        ("\\d+ people", "people_1"),
        ("\\dt", "orders"),
        ("\\dv", "harmless"),
        ("\\dm", ""),
        ("\\df", ""),
        ("\\dn", "shadow"),
        ("\\du", "postgres"),
        ("\\l", gh.db.name.as_str()),
        ("\\di", "users_pkey"),
        ("\\dT", ""),
        ("\\dx", "plpgsql"),
        ("\\dp", "orders"),
        ("\\sv harmless", "VIEW public.harmless"),
    ];
    let mut failures = Vec::new();
    for (cmd, expect) in commands {
        let mut p = tokio::process::Command::new(pg_tool("psql"));
        p.arg(format!(
            "host=127.0.0.1 port={} dbname=app user=alice connect_timeout=10",
            tap.port
        ))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", cmd])
        .env("PGPASSWORD", &token)
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGSERVICE")
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::null());
        let out = tokio::time::timeout(WAIT, p.output())
            .await
            .expect("psql timed out")
            .expect("psql runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !stdout.contains(expect) {
            failures.push(format!(
                "{cmd}: exit {:?}, stderr: {}, stdout: {}",
                out.status.code(),
                stderr.trim(),
                stdout.chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "meta-commands refused or broken:\n{}",
        failures.join("\n")
    );
    assert_no_secrets("psql meta-commands", &tap.received());
}

#[tokio::test]
async fn catalog_introspection_and_pg_stat_activity_are_not_refused() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let mut failures = Vec::new();
    for sql in [
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' \
         AND table_schema = 'public' ORDER BY ordinal_position",
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'",
        "SELECT pid, state FROM pg_stat_activity",
        "SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'gatehouse:%'",
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull \
         FROM pg_attribute a WHERE a.attrelid = 'public.users'::regclass AND a.attnum > 0 \
         AND NOT a.attisdropped ORDER BY a.attnum",
        "SELECT pg_get_viewdef('harmless'::regclass, true)",
        "SELECT indexrelid::regclass, pg_get_indexdef(indexrelid) FROM pg_index \
         WHERE indrelid = 'users'::regclass",
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = 'users'::regclass",
        "SELECT obj_description('users'::regclass, 'pg_class')",
    ] {
        let r = c.simple(sql).await;
        assert_no_secrets(sql, &r.bytes);
        if !(r.complete() && r.error().is_none()) {
            failures.push(format!("{sql}: {}", r.describe()));
        }
    }
    let r = c
        .simple(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users' \
             AND table_schema = 'public' ORDER BY ordinal_position",
        )
        .await;
    if r.error().is_none() {
        assert_eq!(
            r.cells(),
            vec!["id", "name", "email", "ssn", "age"],
            "{}",
            r.describe()
        );
    }
    // The extended protocol, as ORMs send it.
    let client = gh.connect("alice", &token).await;
    if let Err(e) = client
        .query(
            "SELECT column_name, data_type FROM information_schema.columns \
             WHERE table_schema = $1 AND table_name = $2",
            &[&"public", &"users"],
        )
        .await
    {
        let why = e.as_db_error().map(|d| d.message().to_owned());
        failures.push(format!("extended information_schema.columns: {e}: {why:?}"));
    }
    assert!(
        failures.is_empty(),
        "introspection refused:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn prepare_and_execute_of_a_plain_query_are_not_refused() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "PREPARE q",
        &c.simple("PREPARE q AS SELECT id FROM orders ORDER BY id")
            .await,
    );
    let r = c.simple("EXECUTE q").await;
    assert_ok("EXECUTE q", &r);
    assert_eq!(r.cells(), vec!["10", "11"]);
    assert_ok(
        "PREPARE q2",
        &c.simple("PREPARE q2(int) AS SELECT total FROM orders WHERE id = $1")
            .await,
    );
    let r = c.simple("EXECUTE q2(11)").await;
    assert_ok("EXECUTE q2(11)", &r);
    assert_eq!(r.cells(), vec!["700"]);
    // A non-sensitive column of the sensitive table.
    assert_ok(
        "PREPARE q3",
        &c.simple("PREPARE q3 AS SELECT name FROM users ORDER BY id")
            .await,
    );
    let r = c.simple("EXECUTE q3").await;
    assert_ok("EXECUTE q3", &r);
    assert_eq!(r.cells(), vec!["Ada", "Alan", "Kid"]);
    assert_ok("DEALLOCATE q", &c.simple("DEALLOCATE q").await);
    assert_ok("DEALLOCATE ALL", &c.simple("DEALLOCATE ALL").await);
}

#[tokio::test]
async fn temp_view_works_and_is_masked_through_its_lineage() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "CREATE TEMP VIEW",
        &c.simple("CREATE TEMP VIEW tv AS SELECT id, name, email FROM users")
            .await,
    );
    let r = c.simple("SELECT * FROM tv ORDER BY id").await;
    assert_no_secrets("SELECT * FROM tv", &r.bytes);
    assert_ok("SELECT * FROM tv", &r);
    assert_eq!(r.rows().len(), 3, "{}", r.describe());
    let cells = r.cells();
    assert!(
        cells.contains(&"Ada".to_owned()) && cells.contains(&"a***@example.com".to_owned()),
        "names clear, email masked: {}",
        r.describe()
    );
    let r = c.simple("SELECT lower(email) FROM tv").await;
    assert_no_secrets("SELECT lower(email) FROM tv", &r.bytes);
    assert_ok("SELECT lower(email) FROM tv", &r);
    // A temp view over a temp view.
    assert_ok(
        "CREATE TEMP VIEW tv2",
        &c.simple("CREATE TEMP VIEW tv2 AS SELECT email AS e FROM tv")
            .await,
    );
    let r = c.simple("SELECT e FROM tv2").await;
    assert_no_secrets("SELECT e FROM tv2", &r.bytes);
    assert_ok("SELECT e FROM tv2", &r);
    // The session's own temporary views may be dropped.
    assert_ok("DROP VIEW tv2", &c.simple("DROP VIEW tv2").await);
    assert_ok("DROP VIEW tv", &c.simple("DROP VIEW tv").await);
}

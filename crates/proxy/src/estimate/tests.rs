//! Row estimates against a real PostgreSQL: `GATEHOUSE_TEST_PG_URL` (key=value form, e.g.
//! `host=127.0.0.1 port=5432 user=postgres dbname=postgres`) or a throwaway cluster.

use super::*;
use crate::config::{SensitiveSet, UpstreamTls};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

struct Server {
    target: TargetConfig,
    _cluster: Option<pgcluster::Cluster>,
}

fn server() -> &'static TargetConfig {
    static SERVER: OnceLock<Server> = OnceLock::new();
    &SERVER
        .get_or_init(|| match std::env::var("GATEHOUSE_TEST_PG_URL") {
            Ok(url) if !url.trim().is_empty() => Server {
                target: from_key_values(&url),
                _cluster: None,
            },
            _ => {
                let password = format!("est-{}", std::process::id());
                let cluster = pgcluster::Cluster::start(&pgcluster::Options {
                    superuser_password: Some(password.clone()),
                    hba: None,
                    settings: vec![],
                })
                .unwrap_or_else(|e| panic!("throwaway PostgreSQL: {e}"));
                let mut target = from_key_values("host=127.0.0.1 user=postgres dbname=postgres");
                target.port = cluster.port;
                target.password = Some(password);
                Server {
                    target,
                    _cluster: Some(cluster),
                }
            }
        })
        .target
}

fn from_key_values(s: &str) -> TargetConfig {
    let mut t = TargetConfig {
        name: "test".into(),
        host: "127.0.0.1".into(),
        port: 5432,
        user: "postgres".into(),
        database: "postgres".into(),
        password: None,
        tls: UpstreamTls::Disable,
        environment: "test".into(),
        sensitive: Arc::new(SensitiveSet::default()),
    };
    for pair in s.split_whitespace() {
        let Some((k, v)) = pair.split_once('=') else {
            panic!("GATEHOUSE_TEST_PG_URL: key=value pairs only, got {pair:?}");
        };
        match k {
            "host" => t.host = v.into(),
            "port" => t.port = v.parse().unwrap_or_else(|e| panic!("port: {e}")),
            "user" => t.user = v.into(),
            "dbname" => t.database = v.into(),
            "password" => t.password = Some(v.into()),
            _ => {}
        }
    }
    t
}

/// A connection standing for a client's session (or for setting up).
async fn session() -> Upstream {
    let t = server();
    let params = vec![
        ("user".to_owned(), t.user.clone()),
        ("database".to_owned(), t.database.clone()),
        ("application_name".to_owned(), "estimate-test".to_owned()),
    ];
    upstream::connect(t, &params)
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"))
}

async fn run(up: &mut Upstream, sql: &str) -> Vec<Vec<Option<String>>> {
    query(up, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A schema of its own with table `t` of `rows` analysed rows (ids 1..=rows).
async fn table(rows: u32) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let schema = format!(
        "gh_estimate_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut up = session().await;
    run(
        &mut up,
        &format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; \
             CREATE TABLE {schema}.est_rows AS SELECT g AS id, 'x' || g AS note FROM generate_series(1, {rows}) g; \
             ANALYZE {schema}.est_rows"
        ),
    )
    .await;
    schema
}

async fn drop_schema(schema: &str) {
    let mut up = session().await;
    run(&mut up, &format!("DROP SCHEMA {schema} CASCADE")).await;
}

async fn count(schema: &str) -> String {
    let mut up = session().await;
    let rows = run(&mut up, &format!("SELECT count(*) FROM {schema}.est_rows")).await;
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default()
}

fn near(got: Option<u64>, want: u64) -> bool {
    got.is_some_and(|g| g * 2 >= want && g <= want * 2)
}

#[tokio::test]
async fn a_filtered_delete_is_sized_and_nothing_runs() {
    let s = table(10_000).await;
    let t = server();
    let got = estimate_rows(t, &format!("DELETE FROM {s}.est_rows WHERE id <= 500"), &[]).await;
    assert!(near(got, 500), "{got:?}");
    let got = estimate_rows(
        t,
        &format!("UPDATE {s}.est_rows SET note = 'y' WHERE id > 9000"),
        &[],
    )
    .await;
    assert!(near(got, 1000), "{got:?}");
    let got = estimate_rows(t, &format!("DELETE FROM {s}.est_rows"), &[]).await;
    assert!(near(got, 10_000), "{got:?}");
    let got = estimate_rows(
        t,
        &format!(
            "INSERT INTO {s}.est_rows SELECT id + 10000, note FROM {s}.est_rows WHERE id <= 2000"
        ),
        &[],
    )
    .await;
    assert!(near(got, 2000), "{got:?}");
    // A write inside WITH counts the rows it writes, not the one the SELECT returns.
    let got = estimate_rows(
        t,
        &format!("WITH d AS (DELETE FROM {s}.est_rows WHERE id <= 3000 RETURNING id) SELECT count(*) FROM d"),
        &[],
    )
    .await;
    assert!(near(got, 3000), "{got:?}");
    let got = estimate_rows(
        t,
        &format!("SELECT * FROM {s}.est_rows WHERE id <= 100"),
        &[],
    )
    .await;
    assert!(near(got, 100), "{got:?}");
    // Unqualified, resolved with the session's search path.
    let got = estimate_rows(
        t,
        "DELETE FROM est_rows WHERE id <= 500",
        std::slice::from_ref(&s),
    )
    .await;
    assert!(near(got, 500), "{got:?}");
    assert_eq!(count(&s).await, "10000");
    drop_schema(&s).await;
}

#[tokio::test]
async fn only_one_sizable_statement_is_explained() {
    let s = table(100).await;
    let t = server();
    for sql in [
        format!("DELETE FROM {s}.est_rows WHERE id = 1; DELETE FROM {s}.est_rows"),
        format!("SELECT 1; DROP TABLE {s}.est_rows"),
        format!("DROP TABLE {s}.est_rows"),
        format!("TRUNCATE {s}.est_rows"),
        format!("CREATE TABLE {s}.u (id int)"),
        format!("ALTER TABLE {s}.est_rows ADD COLUMN x int"),
        "VACUUM".into(),
        "COMMIT".into(),
        "".into(),
        "SELECT pg_sleep(10)".into(),
        format!("DELETE FROM {s}.est_rows WHERE id = $1"),
        "this is not sql".into(),
    ] {
        assert_eq!(estimate_rows(t, &sql, &[]).await, None, "{sql}");
    }
    assert_eq!(count(&s).await, "100");
    drop_schema(&s).await;
}

#[tokio::test]
async fn the_side_connection_never_sees_the_session() {
    let s = table(1000).await;
    let t = server();
    let mut client = session().await;
    // The client's temporary table and search path are its own.
    run(
        &mut client,
        &format!("SET search_path = {s}; CREATE TEMP TABLE mine AS SELECT 1 AS id"),
    )
    .await;
    assert_eq!(
        estimate_rows(t, "DELETE FROM mine WHERE id = 1", &[]).await,
        None
    );
    assert_eq!(
        estimate_rows(t, "DELETE FROM est_rows WHERE id <= 10", &[]).await,
        None
    );
    // A lock the client's open transaction holds blocks the side connection, which gives up
    // within its time bound: it is another backend, and it waits no longer than that.
    run(
        &mut client,
        &format!("BEGIN; LOCK TABLE {s}.est_rows IN ACCESS EXCLUSIVE MODE"),
    )
    .await;
    let started = std::time::Instant::now();
    let got = estimate_rows(t, &format!("DELETE FROM {s}.est_rows WHERE id <= 10"), &[]).await;
    assert_eq!(got, None);
    assert!(started.elapsed() < Duration::from_millis(3500));
    run(&mut client, "ROLLBACK").await;
    // The client's session is as it was: its transaction, its table, its path.
    let rows = run(
        &mut client,
        "SELECT count(*) FROM mine, est_rows WHERE est_rows.id = mine.id",
    )
    .await;
    assert_eq!(
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .as_deref(),
        Some("1")
    );
    let got = estimate_rows(t, &format!("DELETE FROM {s}.est_rows WHERE id <= 10"), &[]).await;
    assert!(near(got, 10), "{got:?}");
    drop_schema(&s).await;
}

#[test]
fn plans_are_read_for_the_rows_written() {
    let delete = r#"[{"Plan": {"Node Type": "ModifyTable", "Operation": "Delete", "Plan Rows": 0,
        "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 42}]}}]"#;
    assert_eq!(rows_from_plan(delete), Some(42));
    let returning = r#"[{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 7,
        "Plans": [{"Node Type": "Result", "Parent Relationship": "InitPlan", "Plan Rows": 1},
                  {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 7}]}}]"#;
    assert_eq!(rows_from_plan(returning), Some(7));
    let select = r#"[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 12.0}}]"#;
    assert_eq!(rows_from_plan(select), Some(12));
    for bad in [
        "",
        "[]",
        "{}",
        r#"[{"Plan": {}}]"#,
        r#"[{"Plan": {"Plan Rows": -1}}]"#,
    ] {
        assert_eq!(rows_from_plan(bad), None, "{bad}");
    }
    assert_eq!(search_path_sql(&[]), Ok(None));
    assert_eq!(
        search_path_sql(&["a\"b".into(), "pg_temp_3".into(), "public".into()]),
        Ok(Some(
            "SET LOCAL search_path = \"a\"\"b\", \"public\"".into()
        ))
    );
    assert!(search_path_sql(&["a\0".into()]).is_err());
}

//! When the audit store fails, `audit.on_failure = "block"` refuses new statements (and new
//! connections) with SQLSTATE 58000 until it recovers; `"allow"` lets them run. The store is
//! made to fail deterministically by holding SQLite's write lock from the test
//! (`BEGIN EXCLUSIVE`): the writer's next commit waits out its busy timeout (5 s) and fails,
//! which marks the writer unhealthy; releasing the lock lets the retry succeed.

use crate::harness::{connect_err, db_error, Gatehouse, Options, WAIT};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// GET `path` on the admin endpoint: status code and body.
async fn admin_get(gh: &Gatehouse, path: &str) -> (u16, String) {
    let port = gh.admin_port.expect("admin endpoint configured");
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

/// Holds SQLite's write lock on the proxy's store until dropped (or `release`d).
struct StoreLock(rusqlite::Connection);

impl StoreLock {
    fn take(gh: &Gatehouse) -> StoreLock {
        let conn = rusqlite::Connection::open(gh.data_dir().join("gatehouse.db")).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        StoreLock(conn)
    }

    fn release(self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

/// Polls until `/healthz` answers `want`.
async fn wait_health(gh: &Gatehouse, want: u16) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, body) = admin_get(gh, "/healthz").await;
        if status == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "/healthz stayed {status} {body:?}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn block_options() -> Options {
    Options {
        extra_toml: "[audit]\non_failure = \"block\"\n".into(),
        admin: true,
        ..Options::default()
    }
}

/// Takes the store's write lock, then runs `INSERT INTO t VALUES (n)` (simple protocol) on
/// `c` until one is refused. Returns the lock, how many INSERTs ran, and the refusal.
async fn block_store(
    gh: &Gatehouse,
    c: &tokio_postgres::Client,
) -> (StoreLock, i32, (String, String)) {
    let lock = StoreLock::take(gh);
    // Statements keep running while their events wait in the queue; once the writer's
    // commit fails, the next statement is refused.
    let mut ran = 0i32;
    let deadline = Instant::now() + WAIT;
    let refusal = loop {
        match c
            .batch_execute(&format!("INSERT INTO t VALUES ({ran})"))
            .await
        {
            Ok(()) => ran += 1,
            Err(e) => break db_error(&e),
        }
        assert!(
            Instant::now() < deadline,
            "statements still run after {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    (lock, ran, refusal)
}

#[tokio::test]
async fn block_mode_refuses_statements_while_the_store_fails() {
    let gh = Gatehouse::start_with(block_options()).await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute("CREATE TABLE t (a int)").await.unwrap();
    assert_eq!(admin_get(&gh, "/healthz").await.0, 200);

    let (lock, ran, (code, message)) = block_store(&gh, &c).await;
    assert_eq!(code, "58000", "{message}");
    assert!(message.contains("audit trail"), "{message}");
    assert!(
        ran > 0,
        "the first statements run while their events are queued"
    );
    assert_eq!(admin_get(&gh, "/healthz").await.0, 503);

    // Still refused, the session stays usable for when the store recovers, and new
    // connections are refused too.
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(db_error(&e).0, "58000");
    let e = connect_err(gh.pg_config("alice", &token)).await;
    assert_eq!(db_error(&e).0, "58000", "{e:?}");

    // The refused INSERTs never reached the database: only the accepted ones did.
    let direct = crate::harness::upstream().connect(&gh.db.name).await;
    let n: i64 = direct
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, i64::from(ran));

    lock.release();
    wait_health(&gh, 200).await;
    c.execute("INSERT INTO t VALUES ($1)", &[&-1i32])
        .await
        .unwrap();
    let c2 = gh.connect("alice", &token).await;
    c2.batch_execute("SELECT 1").await.unwrap();

    // Every statement that ran is in the trail (events queued during the outage were kept
    // and committed after it), and the chain is intact.
    let want = ran as usize + 1;
    gh.wait_events("every INSERT that ran", |evs| {
        evs.iter()
            .filter(|e| {
                e["statement"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("INSERT INTO t VALUES"))
                    && e["outcome"]["status"] == "ok"
            })
            .count()
            >= want
    })
    .await;
    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
}

/// An Execute refused by the proxy (here: audit unavailable) is answered in order, as the
/// server answers an error: BindComplete, ErrorResponse, ReadyForQuery; the session stays in
/// step for the next statement.
#[tokio::test]
async fn block_mode_refuses_extended_protocol_statements_in_order() {
    let gh = Gatehouse::start_with(block_options()).await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute("CREATE TABLE t (a int)").await.unwrap();
    let (lock, _, (code, _)) = block_store(&gh, &c).await;
    assert_eq!(code, "58000");

    // Extended protocol: Parse/Describe/Sync pass (nothing runs), Bind passes, the Execute
    // is refused, then Sync.
    let e = c.query("SELECT $1::int4", &[&1i32]).await.unwrap_err();
    let (code, message) = db_error(&e);
    assert_eq!(code, "58000", "{message}");
    // The connection is still in sync.
    let e = c.query("SELECT $1::int4", &[&2i32]).await.unwrap_err();
    assert_eq!(db_error(&e).0, "58000");
    lock.release();
    wait_health(&gh, 200).await;
    let v: i32 = c
        .query_one("SELECT $1::int4", &[&3i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, 3);
}

#[tokio::test]
async fn allow_mode_keeps_serving_while_the_store_fails() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: "[audit]\non_failure = \"allow\"\n".into(),
        admin: true,
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    let lock = StoreLock::take(&gh);
    c.batch_execute("SELECT 1").await.unwrap();
    wait_health(&gh, 503).await;
    // Unhealthy store, yet statements and new connections are served (opted out).
    for i in 0..5i32 {
        let v: i32 = c.query_one("SELECT $1::int4", &[&i]).await.unwrap().get(0);
        assert_eq!(v, i);
    }
    gh.connect("alice", &token)
        .await
        .batch_execute("SELECT 2")
        .await
        .unwrap();
    let (_, metrics) = admin_get(&gh, "/metrics").await;
    assert!(
        metrics.contains("gatehouse_audit_events_missed_total"),
        "missed events are counted:\n{metrics}"
    );
    lock.release();
    wait_health(&gh, 200).await;
    c.batch_execute("SELECT 3").await.unwrap();
    gh.wait_events("SELECT 3", |evs| {
        evs.iter().any(|e| e["statement"] == "SELECT 3")
    })
    .await;
    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
}

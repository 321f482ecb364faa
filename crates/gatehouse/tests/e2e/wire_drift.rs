//! Error and COPY shapes through psycopg (executemany with a failing row, pipeline mode with
//! errors between Syncs, COPY FROM/TO in text, binary and block form with errors inside,
//! server-side cursors): every result equals what the server gives directly, the proxy logs
//! no drift, and the audit trail holds one event per statement the server ran.

use crate::harness::{upstream, Gatehouse};
use serde_json::{json, Value};
use std::time::Duration;

async fn run(port: u16, user: &str, db: &str, password: Option<&str>) -> Value {
    let mut cmd = tokio::process::Command::new(crate::python::python());
    cmd.arg(crate::python::repo_root().join("tests/python/drift.py"))
        .args(["127.0.0.1", &port.to_string(), user, db])
        .env_remove("PGHOST")
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null());
    match password {
        Some(p) => cmd.env("PGPASSWORD", p),
        None => cmd.env_remove("PGPASSWORD"),
    };
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the Python client timed out")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON result ({e}):\n{stdout}\n{stderr}"))
}

#[tokio::test]
async fn errors_pipelines_and_copy_keep_the_books_exact() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("drift", "human", &[]).await;
    let through = run(gh.port, "drift", "app", Some(&token)).await;

    // The same script directly against a fresh database of the same server.
    let up = upstream();
    let direct_db = crate::harness::TestDb::create().await;
    let direct = if up.host == "127.0.0.1" || up.host == "localhost" {
        run(up.port, &up.user, &direct_db.name, up.password.as_deref()).await
    } else {
        through.clone()
    };
    assert_eq!(through, direct, "through Gatehouse vs directly");
    assert_eq!(through["pipeline"], json!(["22012", 0, 0]));
    assert_eq!(through["copy_out_rows"], 10);

    let log = gh.log();
    for drift in [
        "does not match",
        "more statement results",
        "closing the session",
        "desync",
    ] {
        assert!(!log.contains(drift), "drift in the log ({drift}):\n{log}");
    }
    // Every COPY the server ran is in the trail with its row count.
    let events = gh
        .wait_events("the COPY events", |ev| {
            ev.iter()
                .any(|e| e["statement"] == "COPY d TO STDOUT" && e["outcome"]["status"] == "ok")
        })
        .await;
    let copy_in_ok = events
        .iter()
        .filter(|e| {
            e["statement"]
                .as_str()
                .is_some_and(|s| s.starts_with("COPY d (id, v) FROM STDIN"))
                && e["outcome"]["status"] == "ok"
        })
        .count();
    assert_eq!(copy_in_ok, 4, "{events:#?}");
    let unknown = events
        .iter()
        .filter(|e| e["outcome"]["status"] == "unknown")
        .count();
    assert_eq!(unknown, 0, "{events:#?}");
}

/// Raw shapes the psycopg suite met: a batch whose Parse fails, with the next batch already
/// sent; Sync then Flush (psycopg's end of a pipeline) before a fastpath call; a client
/// that terminates during COPY IN.
#[tokio::test]
async fn raw_pipeline_and_copy_edges() {
    use crate::raw;
    use crate::session_integrity::rawpg::{self, RawPg};
    let gh = Gatehouse::start().await;
    let token = gh.issue("edges", "human", &[]).await;
    let mut s = RawPg::login(gh.port, "edges", &token).await;

    // Batch 1 fails at Parse; batch 2 (sent before the failure is seen) runs.
    s.send(&[
        rawpg::parse("", "SELECT no_such_function($1)"),
        rawpg::bind("", "", &[Some("1")], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
        rawpg::parse("", "SELECT 'second batch'"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = s.read_ready(2).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42883"), "{}", r.describe());
    assert!(
        r.cells().contains(&"second batch".to_owned()),
        "{}",
        r.describe()
    );

    // Sync then Flush: no batch is open, so a fastpath call is decided (lo_creat(-1)).
    s.send(&[
        rawpg::parse("", "SELECT 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
        rawpg::flush(),
    ])
    .await;
    s.read_ready(1).await;
    let mut call = Vec::new();
    call.extend_from_slice(&957u32.to_be_bytes());
    call.extend_from_slice(&[0, 1, 0, 1, 0, 1, 0, 0, 0, 4]);
    call.extend_from_slice(&(-1i32).to_be_bytes());
    call.extend_from_slice(&[0, 1]);
    s.send(&[raw::message(b'F', &call)]).await;
    let r = s.read_ready(1).await;
    assert!(r.error().is_none(), "{}", r.describe());
    assert!(r.tags().contains('V'), "{}", r.describe());

    // Terminate during COPY IN: the server answers ERROR then FATAL; no drift.
    s.simple("CREATE TEMP TABLE c (id int)").await;
    let mut q = bytes::BytesMut::new();
    q.extend_from_slice(&raw::message(b'Q', b"COPY c FROM STDIN\0"));
    s.send(&[q]).await;
    s.read_until_tag(b'G').await;
    s.send(&[raw::message(b'X', b"")]).await;
    let _ = s.drain(Duration::from_secs(2)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = gh.log();
    for drift in [
        "more statement results",
        "does not match",
        "closing the session",
    ] {
        assert!(!log.contains(drift), "drift in the log ({drift}):\n{log}");
    }
}

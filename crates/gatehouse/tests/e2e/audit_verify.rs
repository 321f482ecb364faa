//! `audit verify` passes an intact store and catches one that was tampered with: an event's
//! stored JSON changed, a row deleted, two rows swapped — each on a fresh copy of the data
//! directory taken after the server stopped, each reported at the right event id.

use crate::harness::{gatehouse_cli, of_kind, Gatehouse};
use std::path::{Path, PathBuf};

/// Copies the data directory to `dest/data` and writes a config pointing at it.
fn copy_store(gh: &Gatehouse, dest: &Path) -> PathBuf {
    let data = dest.join("data");
    std::fs::create_dir_all(&data).unwrap();
    for entry in std::fs::read_dir(gh.data_dir()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), data.join(entry.file_name())).unwrap();
        }
    }
    let config = std::fs::read_to_string(&gh.config_path).unwrap();
    let path = dest.join("gatehouse.toml");
    std::fs::write(&path, config).unwrap();
    path
}

fn open_db(config: &Path) -> rusqlite::Connection {
    let db = config.parent().unwrap().join("data/gatehouse.db");
    rusqlite::Connection::open(db).unwrap()
}

async fn verify(config: &Path) -> (i32, String) {
    let c = config.to_string_lossy().into_owned();
    let out = gatehouse_cli(&["audit", "verify", "--config", &c]).await;
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

fn event_json(conn: &rusqlite::Connection, id: i64) -> String {
    conn.query_row(
        "SELECT event_json FROM audit_events WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn verify_detects_changed_removed_and_reordered_events() {
    let mut gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    {
        let c = gh.connect("alice", &token).await;
        c.batch_execute("CREATE TABLE t (a int)").await.unwrap();
        for i in 0..6i32 {
            c.execute("INSERT INTO t VALUES ($1)", &[&i]).await.unwrap();
        }
        c.query("SELECT * FROM t", &[]).await.unwrap();
    }
    let events = gh
        .wait_events("session end", |evs| !of_kind(evs, "disconnect").is_empty())
        .await;
    // connect, authenticated, 8 statements, disconnect.
    assert!(events.len() >= 11, "{}", events.len());
    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&format!("{} events", events.len())), "{out}");
    gh.stop().await;

    let scratch = tempfile::tempdir().unwrap();

    // 1. One field in one event's stored JSON changed (the identity of statement event 5).
    let cfg = copy_store(&gh, &scratch.path().join("changed"));
    {
        let conn = open_db(&cfg);
        let mut ev: serde_json::Value = serde_json::from_str(&event_json(&conn, 5)).unwrap();
        assert_eq!(ev["kind"], "statement");
        ev["identity"] = "mallory".into();
        conn.execute(
            "UPDATE audit_events SET event_json = ?1 WHERE id = 5",
            [ev.to_string()],
        )
        .unwrap();
    }
    let (code, out) = verify(&cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("at event 5:"), "{out}");

    // The same change to a field that has no column of its own (the parameters).
    let cfg = copy_store(&gh, &scratch.path().join("params"));
    {
        let conn = open_db(&cfg);
        let mut ev: serde_json::Value = serde_json::from_str(&event_json(&conn, 6)).unwrap();
        assert_eq!(ev["kind"], "statement");
        ev["params"] = serde_json::json!(["\\x00000063"]);
        conn.execute(
            "UPDATE audit_events SET event_json = ?1 WHERE id = 6",
            [ev.to_string()],
        )
        .unwrap();
    }
    let (code, out) = verify(&cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("at event 6:"), "{out}");

    // 2. A middle row deleted.
    let cfg = copy_store(&gh, &scratch.path().join("deleted"));
    open_db(&cfg)
        .execute("DELETE FROM audit_events WHERE id = 7", [])
        .unwrap();
    let (code, out) = verify(&cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("at event 7:"), "{out}");

    // 3. Two rows' contents swapped (every column but the row id).
    let cfg = copy_store(&gh, &scratch.path().join("swapped"));
    {
        let conn = open_db(&cfg);
        conn.execute_batch(
            "CREATE TEMP TABLE saved AS SELECT * FROM audit_events WHERE id IN (4, 8);
             UPDATE audit_events SET (time, kind, identity, session, target, prev_hash, hash, event_json) =
               (SELECT time, kind, identity, session, target, prev_hash, hash, event_json
                  FROM saved WHERE saved.id = 12 - audit_events.id)
             WHERE id IN (4, 8);",
        )
        .unwrap();
        let moved: serde_json::Value = serde_json::from_str(&event_json(&conn, 4)).unwrap();
        assert_eq!(moved["id"], 8, "the swap happened");
    }
    let (code, out) = verify(&cfg).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("at event 4:"), "{out}");

    // The original store is still intact (the copies were tampered with, not it).
    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
}

//! verify(): an intact chain passes; each kind of tampering with the stored log is caught at
//! the right event.

mod common;

use audit::{verify, BadKind, ChainHead};
use common::{statement, MemLog, TestResult};
use rusqlite::{params, Connection};
use std::path::Path;
use store::{AuditLog, SqliteAuditLog, DB_FILE_NAME};

/// Writes `n` chained events to a fresh SQLite log; returns the directory.
fn stored_chain(n: u64) -> Result<tempfile::TempDir, Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut log = SqliteAuditLog::open(dir.path())?;
    let mut head = ChainHead::genesis();
    let events: Vec<_> = (1..=n)
        .map(|i| {
            let mut ev = statement(i);
            head.seal(&mut ev);
            ev
        })
        .collect();
    log.append(&events)?;
    Ok(dir)
}

fn raw(dir: &Path) -> rusqlite::Result<Connection> {
    Connection::open(dir.join(DB_FILE_NAME))
}

fn json_of(conn: &Connection, id: i64) -> rusqlite::Result<String> {
    conn.query_row(
        "SELECT event_json FROM audit_events WHERE id = ?1",
        [id],
        |r| r.get(0),
    )
}

/// Rewrites one field of event `id`'s stored JSON.
fn edit(dir: &Path, id: i64, field: &str, value: serde_json::Value) -> TestResult {
    let conn = raw(dir)?;
    let mut doc: serde_json::Value = serde_json::from_str(&json_of(&conn, id)?)?;
    doc[field] = value;
    conn.execute(
        "UPDATE audit_events SET event_json = ?2 WHERE id = ?1",
        params![id, doc.to_string()],
    )?;
    Ok(())
}

fn first_bad(dir: &Path) -> Result<Option<(u64, BadKind)>, Box<dyn std::error::Error>> {
    let report = verify(&SqliteAuditLog::open(dir)?)?;
    Ok(report.first_bad.map(|b| (b.id, b.kind)))
}

#[test]
fn intact_chain_verifies() -> TestResult {
    let dir = stored_chain(2500)?;
    let log = SqliteAuditLog::open(dir.path())?;
    let report = verify(&log)?;
    assert_eq!(report.first_bad, None);
    assert_eq!(report.events, 2500);
    assert_eq!(report.last_hash, log.head()?.map(|h| h.1));
    Ok(())
}

#[test]
fn empty_log_verifies() -> TestResult {
    let report = verify(&MemLog::default())?;
    assert!(report.is_intact());
    assert_eq!((report.events, report.last_hash), (0, None));
    Ok(())
}

#[test]
fn changed_field_is_caught() -> TestResult {
    for (field, value) in [
        ("statement", serde_json::json!("DROP TABLE customers")),
        ("identity", serde_json::json!("mallory")),
        ("rows", serde_json::json!(0)),
        ("params", serde_json::json!([])),
        ("time", serde_json::json!("2020-01-01T00:00:00Z")),
    ] {
        let dir = stored_chain(10)?;
        edit(dir.path(), 7, field, value)?;
        assert_eq!(
            first_bad(dir.path())?,
            Some((7, BadKind::Changed)),
            "field {field}"
        );
    }
    Ok(())
}

#[test]
fn changed_and_rehashed_event_breaks_the_next_link() -> TestResult {
    let dir = stored_chain(10)?;
    let conn = raw(dir.path())?;
    let mut ev: model::AuditEvent = serde_json::from_str(&json_of(&conn, 4)?)?;
    ev.statement = Some("SELECT 'innocent'".into());
    ev.hash = audit::chain_hash(&ev.prev_hash, &ev);
    conn.execute(
        "UPDATE audit_events SET event_json = ?1 WHERE id = 4",
        [serde_json::to_string(&ev)?],
    )?;
    assert_eq!(first_bad(dir.path())?, Some((5, BadKind::BrokenLink)));
    Ok(())
}

#[test]
fn changed_hash_is_caught() -> TestResult {
    let dir = stored_chain(10)?;
    edit(dir.path(), 3, "hash", serde_json::json!("ab".repeat(32)))?;
    assert_eq!(first_bad(dir.path())?, Some((3, BadKind::Changed)));
    Ok(())
}

#[test]
fn deleted_event_is_caught() -> TestResult {
    let dir = stored_chain(10)?;
    raw(dir.path())?.execute("DELETE FROM audit_events WHERE id = 5", [])?;
    assert_eq!(first_bad(dir.path())?, Some((5, BadKind::Missing)));

    let dir = stored_chain(10)?;
    raw(dir.path())?.execute("DELETE FROM audit_events WHERE id = 1", [])?;
    assert_eq!(first_bad(dir.path())?, Some((1, BadKind::Missing)));
    Ok(())
}

#[test]
fn deleted_and_renumbered_event_is_caught() -> TestResult {
    // Remove event 5 and shift the rest down so ids stay consecutive.
    let dir = stored_chain(10)?;
    let conn = raw(dir.path())?;
    conn.execute("DELETE FROM audit_events WHERE id = 5", [])?;
    for id in 6..=10 {
        edit(dir.path(), id, "id", serde_json::json!(id - 1))?;
        conn.execute(
            "UPDATE audit_events SET id = ?1 WHERE id = ?2",
            [id - 1, id],
        )?;
    }
    assert_eq!(first_bad(dir.path())?, Some((5, BadKind::Changed)));
    Ok(())
}

#[test]
fn swapped_events_are_caught() -> TestResult {
    let dir = stored_chain(10)?;
    let conn = raw(dir.path())?;
    let (three, four) = (json_of(&conn, 3)?, json_of(&conn, 4)?);
    conn.execute(
        "UPDATE audit_events SET event_json = ?1 WHERE id = 3",
        [four],
    )?;
    conn.execute(
        "UPDATE audit_events SET event_json = ?1 WHERE id = 4",
        [three],
    )?;
    assert_eq!(first_bad(dir.path())?, Some((3, BadKind::Missing)));
    Ok(())
}

#[test]
fn swapped_and_renumbered_events_are_caught() -> TestResult {
    let dir = stored_chain(10)?;
    let conn = raw(dir.path())?;
    let (three, four) = (json_of(&conn, 3)?, json_of(&conn, 4)?);
    conn.execute(
        "UPDATE audit_events SET event_json = ?1 WHERE id = 3",
        [four],
    )?;
    conn.execute(
        "UPDATE audit_events SET event_json = ?1 WHERE id = 4",
        [three],
    )?;
    edit(dir.path(), 3, "id", serde_json::json!(3))?;
    edit(dir.path(), 4, "id", serde_json::json!(4))?;
    assert_eq!(first_bad(dir.path())?, Some((3, BadKind::Changed)));
    Ok(())
}

#[test]
fn unreadable_event_is_named_after_checking_those_before_it() -> TestResult {
    let dir = stored_chain(10)?;
    raw(dir.path())?.execute(
        "UPDATE audit_events SET event_json = 'garbage' WHERE id = 6",
        [],
    )?;
    assert_eq!(first_bad(dir.path())?, Some((6, BadKind::Unreadable)));

    // An earlier problem in the same page is still the one reported.
    edit(dir.path(), 2, "statement", serde_json::json!("x"))?;
    assert_eq!(first_bad(dir.path())?, Some((2, BadKind::Changed)));
    Ok(())
}

#[test]
fn report_carries_a_readable_reason() -> TestResult {
    let dir = stored_chain(3)?;
    raw(dir.path())?.execute("DELETE FROM audit_events WHERE id = 2", [])?;
    let report = verify(&SqliteAuditLog::open(dir.path())?)?;
    let bad = report.first_bad.ok_or("expected a bad event")?;
    assert!(bad.reason.contains("event 2 is missing"), "{}", bad.reason);
    assert_eq!(report.events, 1);
    Ok(())
}

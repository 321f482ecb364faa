//! SqliteAuditLog: append in one transaction, read pages and tails, head.

use model::{AuditEvent, AuditKind, Outcome};
use store::{AuditLog, SqliteAuditLog, SqliteStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn event(id: u64) -> AuditEvent {
    let mut ev = AuditEvent::new(
        AuditKind::Statement,
        "s1",
        format!("2024-01-01T00:00:{id:02}Z"),
    );
    ev.id = id;
    ev.identity = Some("alice".into());
    ev.statement = Some(format!("SELECT {id}"));
    ev.params = vec![Some("x".into()), None];
    ev.outcome = Outcome::Error {
        sqlstate: "42P01".into(),
        message: "no such table".into(),
    };
    ev.prev_hash = format!("{:064x}", id.saturating_sub(1));
    ev.hash = format!("{id:064x}");
    ev
}

fn ids(events: &[AuditEvent]) -> Vec<u64> {
    events.iter().map(|e| e.id).collect()
}

#[test]
fn empty_log_has_no_head() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = SqliteStore::open_audit_log(dir.path())?;
    assert_eq!(log.head()?, None);
    assert!(log.read_after(0, 10)?.is_empty());
    assert!(log.read_last(10)?.is_empty());
    Ok(())
}

#[test]
fn append_and_read_back_exactly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = SqliteAuditLog::open(dir.path())?;
    let events: Vec<AuditEvent> = (1..=10).map(event).collect();
    log.append(&events[..4])?;
    log.append(&events[4..])?;

    assert_eq!(log.head()?, Some((10, format!("{:064x}", 10))));
    assert_eq!(log.read_after(0, 100)?, events);
    assert_eq!(ids(&log.read_after(3, 4)?), [4, 5, 6, 7]);
    assert_eq!(ids(&log.read_last(3)?), [8, 9, 10]);
    assert_eq!(ids(&log.read_last(100)?).len(), 10);
    assert!(log.read_after(u64::MAX, 10)?.is_empty());
    Ok(())
}

#[test]
fn a_failing_batch_stores_nothing() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = SqliteAuditLog::open(dir.path())?;
    log.append(&[event(1)])?;
    // Event 3 is fine but event 1 collides with the stored one: the whole batch must roll back.
    assert!(log.append(&[event(3), event(1)]).is_err());
    assert_eq!(ids(&log.read_after(0, 10)?), [1]);
    Ok(())
}

fn stored_json(dir: &std::path::Path) -> rusqlite::Result<Vec<String>> {
    let raw = rusqlite::Connection::open(dir.join(store::DB_FILE_NAME))?;
    let mut stmt = raw.prepare("SELECT event_json FROM audit_events ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    rows.collect()
}

#[test]
fn append_serialized_stores_the_json_it_is_given() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = SqliteAuditLog::open(dir.path())?;
    let events: Vec<AuditEvent> = (1..=3).map(event).collect();
    // Pretty-printed, so that JSON made again by the store would show.
    let json: Vec<String> = events
        .iter()
        .map(serde_json::to_string_pretty)
        .collect::<Result<_, _>>()?;
    let texts: Vec<&str> = json.iter().map(String::as_str).collect();
    log.append_serialized(&events, &texts)?;
    log.append(&[event(4)])?;
    assert_eq!(
        log.read_after(0, 10)?,
        (1..=4).map(event).collect::<Vec<_>>()
    );
    let mut expected = json;
    expected.push(serde_json::to_string(&event(4))?);
    assert_eq!(stored_json(dir.path())?, expected);
    Ok(())
}

#[test]
fn append_serialized_refuses_a_json_count_that_does_not_match() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = SqliteAuditLog::open(dir.path())?;
    let json = serde_json::to_string(&event(1))?;
    assert!(log
        .append_serialized(&[event(1), event(2)], &[json.as_str()])
        .is_err());
    assert!(log.read_after(0, 10)?.is_empty());
    Ok(())
}

#[test]
fn readers_on_other_connections_see_commits() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut writer = SqliteAuditLog::open(dir.path())?;
    let reader = SqliteAuditLog::open(dir.path())?;
    writer.append(&[event(1), event(2)])?;
    assert_eq!(ids(&reader.read_last(1)?), [2]);
    Ok(())
}

#[test]
fn unreadable_json_names_the_row() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut log = SqliteAuditLog::open(dir.path())?;
    log.append(&[event(1), event(2)])?;
    let raw = rusqlite::Connection::open(dir.path().join(store::DB_FILE_NAME))?;
    raw.execute("UPDATE audit_events SET event_json = '{' WHERE id = 2", [])?;
    match log.read_after(0, 10) {
        Err(store::StoreError::CorruptEvent { id, .. }) => assert_eq!(id, 2),
        other => panic!("expected CorruptEvent, got {other:?}"),
    }
    Ok(())
}

#[test]
fn database_is_in_wal_mode() -> TestResult {
    let dir = tempfile::tempdir()?;
    let _log = SqliteAuditLog::open(dir.path())?;
    let raw = rusqlite::Connection::open(dir.path().join(store::DB_FILE_NAME))?;
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    assert_eq!(mode, "wal");
    Ok(())
}

#[test]
fn token_writes_and_audit_appends_run_side_by_side() -> TestResult {
    use store::TokenStore;
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_owned();
    let appender = std::thread::spawn(move || -> Result<(), store::StoreError> {
        let mut log = SqliteAuditLog::open(&path)?;
        for id in 1..=200 {
            log.append(&[event(id)])?;
        }
        Ok(())
    });
    let tokens = SqliteStore::open(dir.path())?;
    for n in 0..200 {
        let rec = model::TokenRecord {
            id: format!("id{n}"),
            identity: "alice".into(),
            kind: model::IdentityKind::Human,
            groups: vec![],
            created_at: n,
            expires_at: n + 1,
            revoked_at: None,
            token_hash: format!("{n:064x}"),
            scram: model::ScramVerifier {
                salt: vec![0; 16],
                iterations: 4096,
                stored_key: [0; 32],
                server_key: [0; 32],
            },
        };
        tokens.insert_token(&rec)?;
    }
    appender.join().map_err(|_| "appender panicked")??;
    assert_eq!(tokens.list_tokens()?.len(), 200);
    assert_eq!(
        SqliteAuditLog::open(dir.path())?.head()?.map(|h| h.0),
        Some(200)
    );
    Ok(())
}

//! The writer: group commit, back-pressure, failure and recovery, shutdown.

mod common;

use audit::{verify, AuditError, AuditWriter, RetryPolicy, WriterConfig};
use common::{statement, wait_until, MemLog, TestResult};
use std::time::{Duration, Instant};
use store::{AuditLog, SqliteAuditLog};

const QUICK_RETRY: RetryPolicy = RetryPolicy {
    initial: Duration::from_millis(1),
    max: Duration::from_millis(20),
};

#[tokio::test]
async fn thousand_events_group_committed_in_order() -> TestResult {
    let dir = tempfile::tempdir()?;
    let log = SqliteAuditLog::open(dir.path())?;
    let cfg = WriterConfig {
        capacity: 2000,
        max_batch: 256,
    };
    let (handle, join) = AuditWriter::spawn(Box::new(log), cfg)?;
    for n in 0..1000 {
        handle.submit(statement(n))?;
    }
    handle.flush().await?;

    let reader = SqliteAuditLog::open(dir.path())?;
    let events = reader.read_after(0, 5000)?;
    assert_eq!(events.len(), 1000);
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev.id, i as u64 + 1);
        assert_eq!(
            ev.statement.as_deref(),
            Some(format!("SELECT {i}").as_str())
        );
    }
    let report = verify(&reader)?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 1000);
    join.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn queued_events_share_transactions() -> TestResult {
    let mem = MemLog::default();
    let cfg = WriterConfig {
        capacity: 1000,
        max_batch: 256,
    };
    let (handle, join) = AuditWriter::spawn(Box::new(mem.clone()), cfg)?;
    {
        // Hold appends so all 1000 events queue up behind the first batch.
        let _gate = mem.gate.lock().unwrap_or_else(|p| p.into_inner());
        for n in 0..1000 {
            handle.submit(statement(n))?;
        }
    }
    handle.flush().await?;
    assert_eq!(mem.ids(), (1..=1000).collect::<Vec<u64>>());
    // First batch (>= 1 event) plus at most ceil(999 / 256) full-size batches.
    let appends = mem.state().appends;
    assert!(appends <= 5, "{appends} transactions for 1000 events");
    join.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn full_queue_refuses_without_waiting() -> TestResult {
    let mem = MemLog::default();
    let cfg = WriterConfig {
        capacity: 4,
        max_batch: 1,
    };
    let (handle, join) = AuditWriter::spawn(Box::new(mem.clone()), cfg)?;
    let gate = mem.gate.lock().unwrap_or_else(|p| p.into_inner());
    let mut accepted = 0;
    let started = Instant::now();
    let refused = loop {
        match handle.submit(statement(accepted)) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(
            accepted <= 5,
            "queue of 4 (+1 in the writer's hands) never filled"
        );
    };
    assert!(matches!(refused, AuditError::QueueFull), "{refused:?}");
    assert!(matches!(handle.reserve(), Err(AuditError::QueueFull)));
    assert!(started.elapsed() < Duration::from_secs(1), "submit waited");
    assert!(accepted == 4 || accepted == 5, "{accepted}");
    assert!(handle.queued() >= 4);

    drop(gate);
    handle.flush().await?;
    assert_eq!(mem.ids(), (1..=accepted).collect::<Vec<u64>>());
    join.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn failing_log_makes_reserve_unavailable_then_recovers() -> TestResult {
    let mem = MemLog::default();
    let (handle, join) =
        AuditWriter::spawn_with(Box::new(mem.clone()), WriterConfig::default(), QUICK_RETRY)?;
    handle.submit(statement(1))?;
    handle.flush().await?;
    assert!(handle.is_healthy());

    mem.set_fail(true);
    // Reserved while still healthy: the slot must still deliver its event.
    let slot = handle.reserve()?;
    handle.submit(statement(2))?;
    let failing = mem.clone();
    assert!(wait_until(Duration::from_secs(5), || failing
        .state()
        .failed_appends
        > 0));
    assert!(wait_until(Duration::from_secs(5), || !handle.is_healthy()));
    assert!(matches!(handle.reserve(), Err(AuditError::Unavailable)));
    assert!(matches!(
        handle.submit(statement(9)),
        Err(AuditError::Unavailable)
    ));
    slot.send(statement(3));

    mem.set_fail(false);
    handle.flush().await?;
    assert!(handle.is_healthy());
    handle.submit(statement(4))?;
    handle.flush().await?;

    let rows: Vec<Option<u64>> = mem.state().events.iter().map(|e| e.rows).collect();
    assert_eq!(
        rows,
        [Some(1), Some(2), Some(3), Some(4)],
        "no event lost or reordered"
    );
    assert_eq!(mem.ids(), [1, 2, 3, 4]);
    assert!(verify(&mem)?.is_intact());
    join.shutdown().await?;
    Ok(())
}

#[tokio::test]
async fn shutdown_drains_queue_and_outstanding_slots() -> TestResult {
    let mem = MemLog::default();
    let (handle, join) = AuditWriter::spawn(Box::new(mem.clone()), WriterConfig::default())?;
    for n in 0..50 {
        handle.submit(statement(n))?;
    }
    let slot = handle.reserve()?;
    let late = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        slot.send(statement(50));
    });
    join.shutdown().await?;
    late.await?;
    assert_eq!(mem.ids().len(), 51);
    assert!(matches!(handle.reserve(), Err(AuditError::Unavailable)));
    assert!(!handle.is_healthy());
    assert!(matches!(handle.flush().await, Err(AuditError::Unavailable)));
    Ok(())
}

#[test]
fn blocking_shutdown_and_resume_from_stored_head() -> TestResult {
    let dir = tempfile::tempdir()?;
    for round in 0..2u64 {
        let log = SqliteAuditLog::open(dir.path())?;
        let (handle, join) = AuditWriter::spawn(Box::new(log), WriterConfig::default())?;
        for n in 0..10 {
            handle.submit(statement(round * 10 + n))?;
        }
        join.shutdown_blocking()?;
    }
    let reader = SqliteAuditLog::open(dir.path())?;
    assert_eq!(reader.head()?.map(|h| h.0), Some(20));
    assert_eq!(verify(&reader)?.events, 20);
    Ok(())
}

#[tokio::test]
async fn blocking_shutdown_inside_a_runtime_is_refused() -> TestResult {
    let (_handle, join) = AuditWriter::spawn(Box::new(MemLog::default()), WriterConfig::default())?;
    // Consumes the join; the writer then ends once the handle is dropped too.
    assert!(matches!(
        join.shutdown_blocking(),
        Err(AuditError::BlockingInAsync)
    ));
    Ok(())
}

#[test]
fn bad_config_is_rejected() {
    for cfg in [
        WriterConfig {
            capacity: 0,
            max_batch: 1,
        },
        WriterConfig {
            capacity: 1,
            max_batch: 0,
        },
        WriterConfig {
            capacity: usize::MAX,
            max_batch: 1,
        },
    ] {
        let res = AuditWriter::spawn(Box::new(MemLog::default()), cfg);
        assert!(matches!(res, Err(AuditError::InvalidConfig(_))));
    }
}

#[test]
fn unreadable_store_fails_at_spawn() {
    let mem = MemLog::default();
    mem.set_fail(true);
    let res = AuditWriter::spawn(Box::new(mem), WriterConfig::default());
    assert!(matches!(res, Err(AuditError::Store(_))));
}

#[test]
fn continues_a_stored_chain_and_stores_each_events_serde_json() -> TestResult {
    let dir = tempfile::tempdir()?;
    // A log appended to the way the writer used to: events sealed one by one, the store
    // serialising them.
    let mut head = audit::ChainHead::genesis();
    let before: Vec<_> = (0..5)
        .map(|n| {
            let mut ev = statement(n);
            head.seal(&mut ev);
            ev
        })
        .collect();
    SqliteAuditLog::open(dir.path())?.append(&before)?;

    let log = SqliteAuditLog::open(dir.path())?;
    let (handle, join) = AuditWriter::spawn(Box::new(log), WriterConfig::default())?;
    for n in 5..25 {
        let mut ev = statement(n);
        ev.statement = Some(format!(r#"SELECT '","hash":"", {n}', 'é\t'"#));
        ev.decision = Some("allow".into());
        ev.tables = vec!["public.hash".into()];
        handle.submit(ev)?;
    }
    join.shutdown_blocking()?;

    let reader = SqliteAuditLog::open(dir.path())?;
    let report = verify(&reader)?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.events, 25);
    let raw = rusqlite::Connection::open(dir.path().join(store::DB_FILE_NAME))?;
    let mut stmt = raw.prepare("SELECT hash, event_json FROM audit_events ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let events = reader.read_after(0, 100)?;
    let mut count = 0;
    for (row, ev) in rows.zip(&events) {
        let (hash, json) = row?;
        assert_eq!(json, serde_json::to_string(ev)?);
        assert_eq!(hash, ev.hash);
        count += 1;
    }
    assert_eq!(count, 25);
    Ok(())
}

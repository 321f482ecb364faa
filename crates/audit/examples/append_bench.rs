//! CPU the audit writer thread spends per event: statement events like the proxy's, through
//! [`AuditWriter`] into a [`SqliteAuditLog`] in a temporary directory.
//!
//! ```text
//! cargo run --release -p audit --example append_bench -- [events (200000)] [batch (32)] [dir]
//! ```
//!
//! `batch` events are sent, then a flush is awaited, so each transaction holds exactly `batch`
//! events (about 32 at 15k statements/s with the writer's 2 ms linger). `batch` 0 sends
//! everything as fast as the queue takes it (transactions of up to `max_batch`). Prints the
//! writer thread's CPU time (from `/proc/self/task/<tid>/schedstat`, or `stat`) per event,
//! then verifies the stored chain (not timed). With `dir`, the log is kept there (and an
//! existing one continued) instead of in a temporary directory.

use audit::{verify, AuditError, AuditWriter, WriterConfig};
use model::{AuditEvent, AuditKind, Outcome};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use store::{AuditLog, SqliteAuditLog};

type BenchResult = Result<(), Box<dyn std::error::Error>>;

/// A `pgbench -S` statement as the proxy audits it.
fn statement(n: u64) -> AuditEvent {
    let micros = 1_796_000_000_000_000 + n * 67;
    let mut ev = AuditEvent::new(
        AuditKind::Statement,
        &format!("{:024x}", 0x5eed_0000_u64 + n % 16),
        format!(
            "2026-11-30T01:33:{:02}.{:06}Z",
            (micros / 1_000_000) % 60,
            micros % 1_000_000
        ),
    );
    ev.client_addr = Some(format!("127.0.0.1:{}", 40_000 + n % 16));
    ev.identity = Some("alice@example.com".into());
    ev.identity_kind = Some("human".into());
    ev.groups = vec!["analysts".into(), "bench".into()];
    ev.application_name = Some("pgbench".into());
    ev.target = Some("bench".into());
    ev.statement = Some(format!(
        "SELECT abalance FROM pgbench_accounts WHERE aid = {};",
        (n * 7919) % 1_000_000 + 1
    ));
    ev.outcome = Outcome::Ok;
    ev.rows = Some(1);
    ev.duration_us = Some(80 + n % 50);
    ev.decision = Some("allow".into());
    ev.policies = vec!["builtin.allow_reads".into()];
    ev.command = Some("read:SELECT".into());
    ev.tables = vec!["public.pgbench_accounts".into()];
    ev
}

/// The writer thread's id, found by its name.
fn writer_tid() -> Option<String> {
    std::fs::read_dir("/proc/self/task")
        .ok()?
        .filter_map(Result::ok)
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim() == "gatehouse-audit")
        })
        .map(|task| task.file_name().to_string_lossy().into_owned())
}

/// CPU time the thread has used so far, in nanoseconds.
fn thread_cpu_ns(tid: &str) -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        return s.split_whitespace().next()?.parse().ok();
    }
    // utime and stime, in clock ticks (100 per second on Linux), after the parenthesised name.
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10_000_000)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> BenchResult {
    let mut args = std::env::args().skip(1);
    let events: u64 = args.next().map_or(Ok(200_000), |a| a.parse())?;
    let batch: u64 = args.next().map_or(Ok(32), |a| a.parse())?;

    let temp = tempfile::tempdir()?;
    let dir = args
        .next()
        .map_or_else(|| temp.path().to_owned(), PathBuf::from);
    let log = SqliteAuditLog::open(&dir)?;
    let stored = log.head()?.map_or(0, |(id, _)| id);
    let (handle, join) = AuditWriter::spawn(Box::new(log), WriterConfig::default())?;
    // The thread names itself once it runs.
    let mut tid = writer_tid();
    for _ in 0..1000 {
        if tid.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
        tid = writer_tid();
    }
    let tid = tid.ok_or("writer thread not found")?;
    let pending: Vec<AuditEvent> = (0..events).map(statement).collect();

    let cpu0 = thread_cpu_ns(&tid).ok_or("cannot read the writer's CPU time")?;
    let start = Instant::now();
    let mut in_batch = 0u64;
    for ev in pending {
        loop {
            match handle.reserve() {
                Ok(slot) => break slot.send(ev),
                Err(AuditError::QueueFull) => tokio::time::sleep(Duration::from_micros(200)).await,
                Err(e) => return Err(e.into()),
            }
        }
        in_batch += 1;
        if in_batch == batch {
            handle.flush().await?;
            in_batch = 0;
        }
    }
    handle.flush().await?;
    let wall = start.elapsed();
    let cpu = thread_cpu_ns(&tid).ok_or("cannot read the writer's CPU time")? - cpu0;
    join.shutdown().await?;

    let size: u64 = std::fs::read_dir(&dir)?
        .filter_map(Result::ok)
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "events {events} batch {} wall {:.2}s writer_cpu {:.3}s = {:.2} us/event, files {:.1} MB",
        if batch == 0 {
            "max".into()
        } else {
            batch.to_string()
        },
        wall.as_secs_f64(),
        cpu as f64 / 1e9,
        cpu as f64 / 1e3 / events as f64,
        size as f64 / 1e6
    );

    let report = verify(&SqliteAuditLog::open(&dir)?)?;
    if !report.is_intact() || report.events != stored + events {
        return Err(format!("stored chain does not verify: {report:?}").into());
    }
    Ok(())
}

//! `gatehouse audit verify|tail`: reads the embedded audit log directly (the server may be
//! running; SQLite WAL lets readers proceed alongside the writer).

use crate::config::Config;
use clap::Subcommand;
use model::{AuditEvent, Outcome};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use store::AuditLog;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; exits 0 when intact, 1 naming the first bad event otherwise.
    Verify {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the most recent events.
    Tail {
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object per line, with the event's field names.
        #[arg(long)]
        json: bool,
        /// How many recent events to print first.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Keep printing new events as they are committed.
        #[arg(long)]
        follow: bool,
    },
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { config } => {
            let log = open(&config)?;
            let report = audit::verify(&log)?;
            match &report.first_bad {
                None => {
                    println!("audit chain intact: {} events", report.events);
                    Ok(ExitCode::SUCCESS)
                }
                Some(bad) => {
                    println!("audit chain BROKEN at event {}: {}", bad.id, bad.reason);
                    Ok(ExitCode::from(1))
                }
            }
        }
        AuditCommand::Tail {
            config,
            json,
            limit,
            follow,
        } => {
            let log = open(&config)?;
            let mut last = 0;
            for ev in log.read_last(limit)? {
                last = ev.id;
                print_event(&ev, json)?;
            }
            if !follow {
                return Ok(ExitCode::SUCCESS);
            }
            loop {
                std::thread::sleep(Duration::from_millis(250));
                for ev in log.read_after(last, 1000)? {
                    last = ev.id;
                    print_event(&ev, json)?;
                }
            }
        }
    }
}

fn open(config: &std::path::Path) -> anyhow::Result<store::SqliteAuditLog> {
    let c = Config::load_for_admin(config)?;
    Ok(store::SqliteStore::open_audit_log(&c.data_dir)?)
}

fn print_event(ev: &AuditEvent, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(ev)?);
        return Ok(());
    }
    let outcome = match &ev.outcome {
        Outcome::Ok => "ok".to_owned(),
        Outcome::Error { sqlstate, message } => format!("{sqlstate} {message}"),
        Outcome::Unknown { reason } => format!("unknown ({reason})"),
    };
    let what = ev.statement.as_deref().unwrap_or("");
    println!(
        "{:>6} {} {:<13} {:<14} {:<8} {} {}",
        ev.id,
        ev.time,
        ev.kind.as_str(),
        ev.identity.as_deref().unwrap_or("-"),
        ev.target.as_deref().unwrap_or("-"),
        outcome,
        what.replace('\n', " ")
    );
    Ok(())
}

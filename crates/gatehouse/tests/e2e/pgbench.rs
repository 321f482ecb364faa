//! pgbench through the proxy in each query mode: short runs, several clients, zero errors.
//! (Throughput is measured by the scripts in bench/, never asserted here.)

use crate::harness::{pg_tool, upstream, Gatehouse};
use std::process::Stdio;
use std::time::Duration;

async fn run(cmd: &mut tokio::process::Command, what: &str) -> (String, String) {
    cmd.stdin(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(90), cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} timed out"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// The number after `label` on its line of pgbench's report.
fn number_after(report: &str, label: &str) -> Option<u64> {
    let line = report.lines().find(|l| l.trim_start().starts_with(label))?;
    line[line.find(label)? + label.len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[tokio::test]
async fn pgbench_simple_extended_prepared() {
    let pgbench = pg_tool("pgbench");
    let gh = Gatehouse::start().await;
    let token = gh.issue("bench", "agent", &[]).await;

    // Initialise directly upstream (the data set is not what is being tested).
    let mut init = tokio::process::Command::new(&pgbench);
    init.args(["-i", "-s", "1", "-q"])
        .envs(upstream().libpq_env(&gh.db.name));
    run(&mut init, "pgbench -i").await;

    let mut total = 0;
    for mode in ["simple", "extended", "prepared"] {
        let mut cmd = tokio::process::Command::new(&pgbench);
        cmd.args(["-n", "-T", "3", "-c", "4", "-j", "2", "-M", mode])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &gh.port.to_string(),
                "-U",
                "bench",
                "app",
            ])
            .env("PGPASSWORD", &token)
            .env_remove("PGSERVICE")
            .env("PGSSLMODE", "prefer");
        let (stdout, stderr) = run(&mut cmd, &format!("pgbench -M {mode}")).await;
        let report = format!("{stdout}\n{stderr}");
        eprintln!(
            "pgbench -M {mode}: {}",
            report
                .lines()
                .filter(|l| l.starts_with("tps") || l.contains("processed"))
                .collect::<Vec<_>>()
                .join("; ")
        );
        let done = number_after(&report, "number of transactions actually processed:")
            .unwrap_or_else(|| panic!("no transaction count in:\n{report}"));
        if done == 0 {
            // Diagnose a stall: what the upstream sessions were doing when pgbench gave up.
            let direct = upstream().connect("postgres").await;
            let rows = direct
                .query(
                    "SELECT pid::text, application_name, state, wait_event_type, wait_event, \
                            backend_xid::text, left(query, 60) \
                       FROM pg_stat_activity WHERE datname = $1",
                    &[&gh.db.name],
                )
                .await
                .unwrap();
            let activity: Vec<String> = rows
                .iter()
                .map(|r| {
                    (0..7)
                        .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect();
            panic!(
                "-M {mode} processed no transactions:\n{report}\nupstream sessions:\n{}\nproxy log:\n{}",
                activity.join("\n"),
                gh.log()
            );
        }
        // PostgreSQL 15+ reports failures; older pgbench aborts (non-zero exit) on any error.
        if let Some(failed) = number_after(&report, "number of failed transactions:") {
            assert_eq!(failed, 0, "-M {mode}:\n{report}");
        }
        assert!(
            !stderr.to_lowercase().contains("error"),
            "-M {mode} printed errors:\n{stderr}"
        );
        total += done;
    }

    // Every pgbench statement ran audited: at least the 5 statements of each TPC-B-like
    // transaction, all ok. Counted in the store directly (far more events than `audit tail`
    // should print), polling while the group commits land.
    let db = gh.data_dir().join("gatehouse.db");
    let count = |sql: &str| -> i64 {
        let conn =
            rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                .unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    };
    let deadline = std::time::Instant::now() + crate::harness::WAIT;
    let statements = loop {
        let n = count("SELECT count(*) FROM audit_events WHERE kind = 'statement'");
        if n as u64 >= total * 5 || std::time::Instant::now() > deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        statements as u64 >= total * 5,
        "{statements} statement events for {total} transactions"
    );
    let failed = count(
        "SELECT count(*) FROM audit_events WHERE kind = 'statement' \
         AND json_extract(event_json, '$.outcome.status') <> 'ok'",
    );
    assert_eq!(failed, 0, "audited statements with an error outcome");
    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
}

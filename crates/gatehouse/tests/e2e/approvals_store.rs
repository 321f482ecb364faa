//! Approval state outlives the process: an agent's statement refused with state `pending`
//! after its short wait keeps its request across a restart of Gatehouse; a person approves it
//! after the restart, the agent's re-run of the same statement runs once, and the run after
//! that is held again (a new request). `gatehouse approvals watch --json` follows the admin
//! API's event stream meanwhile: `opened`, then `voted`.

use crate::harness::{db_error, gatehouse_cli, upstream, Gatehouse, Options, PASSWORD_ENV, WAIT};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

const SETUP: &str = "
CREATE TABLE orders (id int PRIMARY KEY, amount int);
INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);
";

const POLICIES: &str = r#"
@id("orders-writes-need-a-dba")
@reason("writes to orders need a DBA")
@approval("dba")
forbid(principal, action, resource)
when { context.tables_written.contains("public.orders") };
"#;

const SQL: &str = "DELETE FROM orders WHERE id = 1";

/// Runs `SQL` as the agent on a new connection; it must be refused with state `pending`
/// (after the agent's 1 s wait): the request id.
async fn refused_pending(gh: &Gatehouse, bot: &str) -> String {
    let c = gh.connect("deploy-bot", bot).await;
    let err = tokio::time::timeout(WAIT, c.batch_execute(SQL))
        .await
        .expect("the agent's wait is 1 s")
        .expect_err("held, then refused while pending");
    let (code, msg) = db_error(&err);
    assert_eq!(code, "42501", "{msg}");
    assert!(msg.contains("still pending"), "{msg}");
    let detail = err
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_owned();
    let id = detail
        .strip_prefix("request: ")
        .and_then(|d| d.strip_suffix("; state: pending"))
        .unwrap_or_else(|| panic!("unexpected DETAIL {detail:?}"));
    assert!(id.starts_with("ap_"), "{detail}");
    id.to_owned()
}

/// The pending requests bob sees (retried while the admin listener comes up).
async fn pending(gh: &Gatehouse, token: &str) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let out = gh
            .cli(&["approvals", "list", "--json", "--token", token])
            .await;
        if out.code == 0 {
            return out
                .stdout
                .lines()
                .filter(|l| !l.trim().is_empty())
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
                .collect();
        }
        assert!(tokio::time::Instant::now() < deadline, "{out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn approve(gh: &Gatehouse, token: &str, id: &str) {
    let out = gh
        .cli(&[
            "approvals",
            "approve",
            id,
            "--reason",
            "ticket 42",
            "--token",
            token,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
}

async fn count(gh: &Gatehouse) -> i64 {
    let c = upstream().connect(&gh.db.name).await;
    c.query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .get(0)
}

/// `gatehouse approvals watch --json` as bob; returns once it is connected (it says so on
/// stderr after the server answered, and the server subscribes before answering).
struct Watch {
    child: tokio::process::Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Watch {
    async fn start(gh: &Gatehouse, token: &str) -> Watch {
        let config = gh.config_path.to_string_lossy().into_owned();
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args(["approvals", "watch", "--json", "--config", &config])
            .env("GATEHOUSE_TOKEN", token)
            .env(
                PASSWORD_ENV,
                upstream().password.clone().unwrap_or_default(),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run approvals watch: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let mut err_lines = BufReader::new(stderr).lines();
        let line = tokio::time::timeout(WAIT, err_lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("approvals watch did not connect"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_default();
        assert!(line.contains("watching"), "approvals watch said: {line}");
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        Watch {
            child,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// The next event printed: its kind and request.
    async fn next(&mut self) -> (String, Value) {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no event from approvals watch"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|| panic!("approvals watch ended"));
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"));
        (
            v["event"].as_str().unwrap_or_default().to_owned(),
            v["data"].clone(),
        )
    }
}

#[tokio::test]
async fn a_pending_request_outlives_a_restart_and_its_approval_runs_once() {
    let mut gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: POLICIES.into(),
        extra_toml: "[approvals]\nagent_timeout_secs = 1\nrequest_ttl_secs = 120\n".into(),
    })
    .await;
    let bot = gh.issue("deploy-bot", "agent", &["deploy"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;

    let id = refused_pending(&gh, &bot).await;
    assert_eq!(count(&gh).await, 3, "nothing ran");

    gh.restart().await;
    // Still there for approvers, pending (its session is gone with the old process).
    let listed = pending(&gh, &bob).await;
    let ids: Vec<&str> = listed.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()], "{listed:?}");
    assert_eq!(listed[0]["state"], "pending");
    assert_eq!(listed[0]["identity"], "deploy-bot");
    assert_eq!(listed[0]["statement"], SQL);

    approve(&gh, &bob, &id).await;
    // The agent's re-run of the same statement uses the approval: it runs, once.
    let c = gh.connect("deploy-bot", &bot).await;
    let done = tokio::time::timeout(WAIT, c.execute(SQL, &[]))
        .await
        .unwrap_or_else(|_| panic!("the re-run waited"));
    let rows = done.unwrap_or_else(|e| panic!("the approved re-run was refused: {e:?}"));
    assert_eq!(rows, 1);
    assert_eq!(count(&gh).await, 2);

    // Once: the next run is held again, under a new request.
    let again = refused_pending(&gh, &bot).await;
    assert_ne!(again, id, "the used approval was offered again");
    let shown = gh.cli(&["approvals", "show", &id, "--token", &bob]).await;
    assert_eq!(shown.code, 0, "{shown:?}");
    let shown: Value = serde_json::from_str(&shown.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(shown["state"], "approved");
    assert!(shown["used_at_ms"].is_i64(), "{shown}");

    // A second restart: the used approval stays used; the new request is still pending,
    // and finished requests are in the history.
    gh.restart().await;
    let listed = pending(&gh, &bob).await;
    let ids: Vec<&str> = listed.iter().filter_map(|r| r["id"].as_str()).collect();
    assert_eq!(ids, [again.as_str()], "{listed:?}");
    let out = gh
        .cli(&["approvals", "history", "--json", "--token", &bob])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains(&id), "{out:?}");
    assert_eq!(count(&gh).await, 2);

    // The statement ran once, released by the grant, in the audit trail of both runs.
    let events = gh
        .wait_events("the grant's release", |ev| {
            ev.iter().any(|e| {
                e["approval"]["request"] == id.as_str() && e["approval"]["step"] == "released"
            })
        })
        .await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["approval"]["request"] == id.as_str())
        .filter_map(|e| e["approval"]["step"].as_str())
        .collect();
    assert_eq!(
        steps,
        [
            "requested",
            "wait_ended",
            "pending",
            "approve",
            "released",
            "executed"
        ],
        "{events:?}"
    );
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn the_event_stream_shows_opened_then_voted() {
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: POLICIES.into(),
        extra_toml: "[approvals]\nagent_timeout_secs = 1\nrequest_ttl_secs = 120\n".into(),
    })
    .await;
    let bot = gh.issue("deploy-bot", "agent", &["deploy"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;
    let carol = gh.issue("carol", "human", &["dev"]).await;
    let mut watch = Watch::start(&gh, &bob).await;
    let mut outsider = Watch::start(&gh, &carol).await;

    let id = refused_pending(&gh, &bot).await;
    let (kind, r) = watch.next().await;
    assert_eq!(kind, "opened");
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["state"], "pending");
    assert_eq!(r["statement"], SQL);
    approve(&gh, &bob, &id).await;
    let (kind, r) = watch.next().await;
    assert_eq!(kind, "voted");
    assert_eq!(r["id"], id.as_str());
    assert_eq!(r["state"], "approved");
    assert_eq!(r["votes"][0]["approver"], "bob");

    // Carol is neither the requester nor an approver: her stream shows nothing of it.
    let quiet = tokio::time::timeout(Duration::from_millis(500), outsider.lines.next_line()).await;
    assert!(quiet.is_err(), "shown to an outsider: {quiet:?}");
    // An agent cannot watch.
    let out = gatehouse_cli(&[
        "approvals",
        "watch",
        "--config",
        &gh.config_path.to_string_lossy(),
        "--token",
        &bot,
    ])
    .await;
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("agents"), "{out:?}");
    let _ = watch.child.start_kill();
    let _ = outsider.child.start_kill();
}

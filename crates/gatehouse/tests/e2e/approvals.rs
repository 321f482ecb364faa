//! Statements held in the live session until a person approves them: psql waits on a DELETE
//! while `gatehouse approvals approve` from another process releases it; deny, expiry, quorum,
//! who may not approve, cancel and disconnect withdrawing the request, and every step in the
//! audit chain.

use crate::harness::{connect_with_messages, db_error, pg_tool, Gatehouse, Options, WAIT};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio_postgres::AsyncMessage;

const SETUP: &str = "
CREATE TABLE orders (id int PRIMARY KEY, amount int);
INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);
CREATE TABLE ledger (id int PRIMARY KEY, amount int);
INSERT INTO ledger VALUES (1, 10), (2, 20);
";

const POLICIES: &str = r#"
@id("orders-writes-need-a-dba")
@reason("writes to orders need a DBA")
@approval("dba, oncall")
forbid(principal, action, resource)
when { context.tables_written.contains("public.orders") };

@id("ledger-writes-need-two")
@reason("writes to the ledger need two approvers")
@approval("dba")
@quorum("2")
forbid(principal, action, resource)
when { context.tables_written.contains("public.ledger") };
"#;

async fn start(timeout_secs: u32) -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: POLICIES.into(),
        extra_toml: format!(
            "[approvals]\ntimeout_secs = {timeout_secs}\nbreak_glass_group = \"breakglass\"\n"
        ),
    })
    .await
}

/// Pending requests as `approvals list --json` prints them.
async fn pending(gh: &Gatehouse, token: &str) -> Vec<Value> {
    let out = gh
        .cli(&["approvals", "list", "--json", "--token", token])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    out.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

/// Waits for the one pending request and returns it.
async fn one_pending(gh: &Gatehouse, token: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = pending(gh, token).await;
        if let [one] = p.as_slice() {
            return one.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pending request: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn decide(gh: &Gatehouse, token: &str, verb: &str, id: &str, reason: &str) -> (i32, String) {
    let out = gh
        .cli(&["approvals", verb, id, "--reason", reason, "--token", token])
        .await;
    (out.code, format!("{}{}", out.stdout, out.stderr))
}

async fn count(gh: &Gatehouse, table: &str) -> i64 {
    let c = crate::harness::upstream().connect(&gh.db.name).await;
    let row = c
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    row.get(0)
}

#[tokio::test]
async fn psql_waits_and_an_approver_releases_it() {
    let gh = start(30).await;
    let alice = gh.issue("alice", "human", &["dev"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;
    let bot = gh.issue("deploy-bot", "agent", &["dba"]).await;
    let carol = gh.issue("carol", "human", &["dev"]).await;

    let mut cmd = tokio::process::Command::new(pg_tool("psql"));
    cmd.arg(gh.conninfo("alice"))
        .args(["-X", "-c", "DELETE FROM orders WHERE id = 1"])
        .env("PGPASSWORD", &alice)
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGSERVICE")
        .stdin(Stdio::null());
    let psql = tokio::spawn(async move { cmd.output().await });

    let req = one_pending(&gh, &bob).await;
    let id = req["id"].as_str().unwrap_or_default().to_owned();
    assert!(id.starts_with("ap_"), "{req}");
    assert_eq!(req["identity"], "alice");
    assert_eq!(req["target"], "app");
    assert_eq!(req["statement"], "DELETE FROM orders WHERE id = 1");
    assert_eq!(req["approver_groups"], serde_json::json!(["dba", "oncall"]));
    assert!(
        req["expires_at"].as_str().is_some_and(|s| s.ends_with('Z')),
        "{req}"
    );
    assert_eq!(count(&gh, "orders").await, 3, "nothing ran while held");

    // Who may not decide.
    let (code, text) = decide(&gh, &alice, "approve", &id, "mine").await;
    assert_ne!(code, 0);
    assert!(text.contains("your own request"), "{text}");
    let (code, text) = decide(&gh, &bot, "approve", &id, "ok").await;
    assert_ne!(code, 0);
    assert!(text.contains("agents"), "{text}");
    let (code, text) = decide(&gh, &carol, "approve", &id, "ok").await;
    assert_ne!(code, 0);
    assert!(text.contains("not in an approver group"), "{text}");
    let (code, text) = decide(&gh, &bob, "approve", &id, " ").await;
    assert_ne!(code, 0);
    assert!(text.contains("reason"), "{text}");

    let (code, text) = decide(&gh, &bob, "approve", &id, "ticket 42").await;
    assert_eq!(code, 0, "{text}");
    let out = tokio::time::timeout(WAIT, psql)
        .await
        .unwrap_or_else(|_| panic!("psql still waiting"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("DELETE 1"), "{stdout}");
    assert!(
        stderr.contains("held for approval") && stderr.contains(&id),
        "{stderr}"
    );
    assert_eq!(count(&gh, "orders").await, 2);

    // The evidence, in order: requested, bob's approval, released, the statement itself.
    let events = gh
        .wait_events("approval steps", |ev| {
            ev.iter().any(|e| {
                e["kind"] == "statement" && e["statement"] == "DELETE FROM orders WHERE id = 1"
            })
        })
        .await;
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e["approval"]["request"] == id.as_str())
        .map(|e| {
            e["approval"]["step"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(
        steps,
        ["requested", "approve", "released", "executed"],
        "{events:?}"
    );
    let vote = events
        .iter()
        .find(|e| e["approval"]["step"] == "approve")
        .cloned()
        .unwrap_or_default();
    assert_eq!(vote["identity"], "bob");
    assert_eq!(vote["approval"]["reason"], "ticket 42");
    let released = events
        .iter()
        .position(|e| e["approval"]["step"] == "released");
    let ran = events.iter().position(|e| {
        e["kind"] == "statement" && e["statement"] == "DELETE FROM orders WHERE id = 1"
    });
    assert!(released < ran, "released before it ran: {events:?}");
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn denied_expired_and_quorum() {
    let gh = start(30).await;
    let alice = gh.issue("alice", "human", &["dev"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;
    let dan = gh.issue("dan", "human", &["dba"]).await;
    let c = gh.connect("alice", &alice).await;

    // Denied: refused with the approver's name and reason, nothing ran.
    let c2 = gh.connect("alice", &alice).await;
    let held = tokio::spawn(async move {
        c2.batch_execute("UPDATE orders SET amount = 0 WHERE id = 1")
            .await
    });
    let id = one_pending(&gh, &bob).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (code, text) = decide(&gh, &bob, "deny", &id, "not during the freeze").await;
    assert_eq!(code, 0, "{text}");
    let err = held
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect_err("denied");
    let (state, msg) = db_error(&err);
    assert_eq!(state, "42501");
    assert!(
        msg.contains("denied by bob: not during the freeze"),
        "{msg}"
    );
    let detail = err
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(detail, format!("request: {id}; state: denied"));
    assert_eq!(count(&gh, "orders").await, 3);
    let (code, text) = decide(&gh, &dan, "approve", &id, "late").await;
    assert_ne!(code, 0);
    assert!(text.contains("already denied"), "{text}");

    // Quorum of two: one approval is not enough.
    let c3 = gh.connect("alice", &alice).await;
    let held =
        tokio::spawn(async move { c3.simple_query("DELETE FROM ledger WHERE id = 1").await });
    let id = one_pending(&gh, &bob).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let (code, text) = decide(&gh, &bob, "approve", &id, "fine").await;
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("pending"), "{text}");
    let (code, text) = decide(&gh, &bob, "approve", &id, "fine again").await;
    assert_ne!(code, 0, "one vote per person: {text}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        count(&gh, "ledger").await,
        2,
        "one approval of two must not release it"
    );
    let (code, text) = decide(&gh, &dan, "approve", &id, "second pair of eyes").await;
    assert_eq!(code, 0, "{text}");
    held.await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&gh, "ledger").await, 1);

    // The session goes on normally afterwards.
    let rows = c
        .simple_query("SELECT count(*) FROM orders")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!rows.is_empty());
}

#[tokio::test]
async fn expiry() {
    let gh = start(2).await;
    let alice = gh.issue("alice", "human", &["dev"]).await;

    // Expired: refused with the request id; the notice came at once.
    let (c, mut messages) = connect_with_messages(gh.pg_config("alice", &alice)).await;
    let err = c
        .batch_execute("DELETE FROM orders WHERE id = 2")
        .await
        .expect_err("expires");
    let (state, msg) = db_error(&err);
    assert_eq!(state, "42501");
    assert!(msg.contains("expired"), "{msg}");
    let detail = err
        .as_db_error()
        .and_then(|d| d.detail())
        .unwrap_or_default()
        .to_owned();
    assert!(
        detail.starts_with("request: ap_") && detail.ends_with("state: expired"),
        "{detail}"
    );
    let notice = match messages.try_recv() {
        Ok(AsyncMessage::Notice(n)) => n,
        other => panic!("expected the hold notice, got {other:?}"),
    };
    assert!(
        notice
            .message()
            .contains("held for approval by dba, oncall"),
        "{notice:?}"
    );
    assert_eq!(
        Some(detail.split(';').next().unwrap_or_default()),
        notice.detail()
    );
    assert!(notice
        .hint()
        .is_some_and(|h| h.contains("gatehouse approvals approve")));
    assert_eq!(count(&gh, "orders").await, 3);
    // Inside a transaction the session is still usable after an expiry.
    c.batch_execute("BEGIN")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = c
        .batch_execute("DELETE FROM orders WHERE id = 2")
        .await
        .expect_err("expires");
    assert_eq!(db_error(&err).0, "42501");
    c.batch_execute("ROLLBACK")
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn cancel_and_disconnect_withdraw() {
    let gh = start(60).await;
    let alice = gh.issue("alice", "human", &["dev"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;

    // CancelRequest withdraws it.
    let c = gh.connect("alice", &alice).await;
    let cancel = c.cancel_token();
    let held =
        tokio::spawn(async move { c.batch_execute("DELETE FROM orders WHERE id = 3").await });
    let id = one_pending(&gh, &bob).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    cancel
        .cancel_query(tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = held
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .expect_err("withdrawn");
    assert_eq!(db_error(&err).0, "57014");
    let out = gh.cli(&["approvals", "show", &id, "--token", &bob]).await;
    assert!(out.stdout.contains("\"withdrawn\""), "{out:?}");

    // A client that goes away withdraws it too (psql killed while it waits).
    let mut psql = tokio::process::Command::new(pg_tool("psql"))
        .arg(gh.conninfo("alice"))
        .args(["-X", "-c", "DELETE FROM orders WHERE id = 3"])
        .env("PGPASSWORD", &alice)
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGSERVICE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    let id = one_pending(&gh, &bob).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    psql.kill().await.unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let out = gh.cli(&["approvals", "show", &id, "--token", &bob]).await;
        if out.stdout.contains("\"withdrawn\"") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&gh, "orders").await, 3);
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

/// A vote is counted only with its evidence: while the audit store fails, votes are refused
/// (503) and the statement stays held; once it recovers, the vote counts.
#[tokio::test]
async fn no_vote_without_its_audit_event() {
    let gh = start(60).await;
    let alice = gh.issue("alice", "human", &["dev"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;
    // Hold SQLite's write lock: the writer's next commit fails after its busy timeout.
    let lock = rusqlite::Connection::open(gh.data_dir().join("gatehouse.db"))
        .unwrap_or_else(|e| panic!("{e}"));
    lock.busy_timeout(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    lock.execute_batch("BEGIN EXCLUSIVE")
        .unwrap_or_else(|e| panic!("{e}"));
    let c = gh.connect("alice", &alice).await;
    let held =
        tokio::spawn(async move { c.batch_execute("DELETE FROM orders WHERE id = 1").await });
    let id = one_pending(&gh, &bob).await["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    // Wait for the writer to report the failure (its commit of the request's first step).
    let deadline = tokio::time::Instant::now() + WAIT;
    while healthz(&gh).await == 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the store never failed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, refused) = decide(&gh, &bob, "approve", &id, "ticket 7").await;
    assert_ne!(
        code, 0,
        "a vote was counted while the audit store fails: {refused}"
    );
    assert!(refused.contains("audit trail cannot record"), "{refused}");
    assert_eq!(one_pending(&gh, &bob).await["state"], "pending");
    lock.execute_batch("ROLLBACK")
        .unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (code, text) = decide(&gh, &bob, "approve", &id, "ticket 7").await;
        if code == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    held.await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(count(&gh, "orders").await, 2);
}

/// The admin listener's `/healthz` status.
async fn healthz(gh: &Gatehouse) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let port = gh.admin_port.unwrap_or_default();
    let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else {
        return 0;
    };
    let req = "GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut resp)).await;
    String::from_utf8_lossy(&resp)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

//! Fourth round: cancels during and after a hold (HeldCancel), sessions pinned to loops, and
//! shutdown (SIGTERM) with a statement in flight or held. Every test asserts the SAFE
//! behaviour: a failing test is a finding.

use super::round2::session::login_keyed;
use super::*;

async fn start4(extra: &str) -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: POLICIES.into(),
        extra_toml: format!(
            "[approvals]\ntimeout_secs = 30\nin_transaction_timeout_secs = 30\nagent_timeout_secs = 1\nrequest_ttl_secs = 60\ngrant_window_secs = 60\n{extra}"
        ),
    })
    .await
}

/// Two sessions of one person wait on one request (the second on the first's). The second
/// session's client cancels: that must withdraw only what *it* waits for, not the statement
/// of the first session, whose client never cancelled.
#[tokio::test]
async fn cancel_in_one_session_does_not_refuse_anothers_held_statement() {
    let gh = start4("").await;
    let who = cast(&gh).await;
    let sql = "UPDATE orders SET amount = amount + 1 WHERE id = 1";
    let (mut a, _, _) = login_keyed(&gh, "alice", &who.alice).await;
    let (mut b, bpid, bsecret) = login_keyed(&gh, "alice", &who.alice).await;
    let first = raw_hold(&mut a, sql).await;
    let second = raw_hold(&mut b, sql).await;
    assert_eq!(
        first, second,
        "the second session waits on the same request"
    );
    cancel_request(gh.port, bpid, bsecret).await;
    let rb = b.read_ready(1).await;
    assert_eq!(rb.sqlstate().as_deref(), Some("57014"), "{}", rb.describe());
    // Session a never cancelled: it should still be waiting.
    let ra = a.drain(Duration::from_millis(1500)).await;
    let (_, state) = show(&gh, &who.bob, &first).await;
    assert!(
        ra.msgs.is_empty() && state["state"] == "pending",
        "session b's CancelRequest ended session a's held statement: a got {}; request {}",
        ra.describe(),
        state
    );
    let (status, _) = vote(&gh, &who.bob, &first, "approve", "ok").await;
    assert_eq!(status, 200);
    let ra = a.read_ready(1).await;
    assert_eq!(command_tags(&ra), ["UPDATE 1"], "{}", ra.describe());
}

/// After a hold ends (approved), cancels are forwarded again: a cancel while the released
/// statement runs cancels it, and nothing changes.
#[tokio::test]
async fn cancel_after_release_reaches_the_running_statement() {
    let gh = start4("").await;
    let who = cast(&gh).await;
    let (mut c, pid, secret) = login_keyed(&gh, "alice", &who.alice).await;
    let sql = "UPDATE orders SET amount = 0 WHERE id = 1 AND pg_sleep(4) IS NOT NULL";
    let id = raw_hold(&mut c, sql).await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "ok").await;
    assert_eq!(status, 200);
    // Wait until the statement runs upstream.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = direct_one(
            &gh,
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'UPDATE orders SET amount = 0%'",
        )
        .await;
        if n == "1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the released statement never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cancel_request(gh.port, pid, secret).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    let r = c.simple("SELECT 3").await;
    assert_eq!(r.cells(), ["3"], "{}", r.describe());
}

/// SIGTERM while a write is in flight upstream (one loop): the client gets its answer, and
/// if the row was written its statement event is in the audit trail.
#[tokio::test]
async fn sigterm_with_a_statement_in_flight_keeps_its_event() {
    let mut gh = start4("[limits]\nsession_threads = 1\n").await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let sql = "INSERT INTO notes SELECT 77, 'inflight' FROM pg_sleep(2)";
    c.send(&[rawpg::query(sql)]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, r) = tokio::join!(gh.stop(), c.read_ready(1));
    let rows = direct_one(&gh, "SELECT count(*) FROM notes WHERE body = 'inflight'").await;
    let events = gh.audit_events().await;
    let ev: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "statement" && e["statement"] == sql)
        .collect();
    assert_eq!(
        rows,
        "1",
        "the in-flight INSERT did not run: {}",
        r.describe()
    );
    assert_eq!(
        command_tags(&r),
        ["INSERT 0 1"],
        "the client was not answered: {}",
        r.describe()
    );
    assert_eq!(
        ev.len(),
        1,
        "the INSERT ran but its statement event is missing"
    );
}

/// SIGTERM while a statement is held: the request must not be left without an outcome in the
/// audit trail (withdrawn / wait ended), and the client should be told (an ErrorResponse),
/// not just cut off. Nothing runs, before or after a restart.
#[tokio::test]
async fn sigterm_while_held_records_the_outcome() {
    let mut gh = start4("").await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    // A second session waits on the same request: shutting down withdraws it all the same.
    let mut d = RawPg::login(gh.port, "alice", &who.alice).await;
    let sql = "DELETE FROM orders WHERE id = 3";
    let id = raw_hold(&mut c, sql).await;
    assert_eq!(raw_hold(&mut d, sql).await, id);
    let (_, r, rd) = tokio::join!(gh.stop(), c.read_ready(1), d.read_ready(1));
    assert_eq!(rd.sqlstate().as_deref(), Some("57014"), "{}", rd.describe());
    let events = gh.audit_events().await;
    let steps: Vec<String> = events
        .iter()
        .filter(|e| e["approval"]["request"] == id.as_str())
        .map(|e| format!("{}:{}", e["kind"], e["approval"]["step"]))
        .collect();
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    gh.restart().await;
    let (_, after) = show(&gh, &who.bob, &id).await;
    // Ended before the restart: no longer pending, and no vote can revive it.
    assert_ne!(after["state"], "pending", "after restart: {after}");
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "after restart").await;
    assert_ne!(
        status, 200,
        "a request ended at shutdown was approved after the restart"
    );
    assert!(
        steps.iter().any(|s| !s.ends_with("\"requested\"")),
        "SIGTERM during a hold: the audit trail has only {steps:?} for {id}; the client got {}; after restart the request is {}",
        r.describe(),
        after["state"]
    );
    assert!(
        r.error().is_some(),
        "the held client was cut off without an error: {}",
        r.describe()
    );
}

/// A CancelRequest that races an approval (one loop, kept busy by a neighbour streaming a big
/// result). A cancel the hold counted is never lost: the statement does not run, even when
/// the approval won the race (`late_cancel` in `hold.rs`). A cancel that arrives after the
/// hold ended is forwarded, and, as with PostgreSQL itself, one that reaches the server
/// before the released statement does cancels nothing. So each round ends with 57014 or the
/// statement's result, never a hang or a desynchronised session.
#[tokio::test]
async fn cancel_racing_an_approval_ends_cleanly() {
    let gh = start4("[limits]\nsession_threads = 1\n").await;
    let who = cast(&gh).await;
    let (mut c, pid, secret) = login_keyed(&gh, "alice", &who.alice).await;
    let mut outcomes = Vec::new();
    for round in 0..4 {
        // The neighbour on the same loop.
        let mut n = RawPg::login(gh.port, "carol", &who.carol).await;
        n.send(&[rawpg::query(
            "SELECT repeat('x', 1000) FROM generate_series(1, 300000)",
        )])
        .await;
        let neighbour = tokio::spawn(async move {
            let _ = n.drain(Duration::from_secs(8)).await;
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sql = format!(
            "UPDATE orders SET amount = amount + 1 WHERE id = 1 AND {round} >= 0 AND pg_sleep(2) IS NOT NULL"
        );
        let id = raw_hold(&mut c, &sql).await;
        let port = gh.port;
        let ((status, _), ()) =
            tokio::join!(vote(&gh, &who.bob, &id, "approve", "race"), async move {
                cancel_request(port, pid, secret).await;
            });
        let r = c.read_ready(1).await;
        outcomes.push(format!(
            "round {round}: vote {status}, tags {:?}, sqlstate {:?}",
            command_tags(&r),
            r.sqlstate()
        ));
        neighbour.abort();
        assert!(
            command_tags(&r) == ["UPDATE 1"] || r.sqlstate().as_deref() == Some("57014"),
            "{outcomes:?}: {}",
            r.describe()
        );
        let r = c.simple("SELECT 1").await;
        assert_eq!(r.cells(), ["1"], "{outcomes:?}: {}", r.describe());
    }
    eprintln!("outcomes: {outcomes:?}");
}

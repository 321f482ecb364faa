//! Holds outside a simple Query and after the session stopped waiting: the extended protocol
//! held at Execute (pipelined messages behind it wait in order; parameters shown to the
//! approver), and one-time grants (an agent refused with state `pending` re-runs the same
//! statement once it is approved: it runs once, never twice, and only for that identity,
//! text, parameters and target).

use super::*;

/// Approvals with a short wait for agents and requests that outlive it.
async fn start_grants() -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: POLICIES.into(),
        extra_toml: "[approvals]\ntimeout_secs = 30\nagent_timeout_secs = 1\nrequest_ttl_secs = 60\ngrant_window_secs = 60\n".into(),
    })
    .await
}

/// The extended protocol: the Parse goes through, the Execute waits; the Execute and Sync
/// behind it wait in order; one request per Execute, each showing its parameters.
#[tokio::test]
async fn extended_protocol_holds_at_execute_in_order() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("s1", "DELETE FROM orders WHERE id = $1"),
        rawpg::sync(),
        rawpg::bind("", "s1", &[Some("2")], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let first = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (_, shown) = show(&gh, &who.bob, &first).await;
    assert_eq!(shown["statement"], "DELETE FROM orders WHERE id = 1");
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "nothing ran while held"
    );
    let (status, _) = vote(&gh, &who.bob, &first, "approve", "ticket 7").await;
    assert_eq!(status, 200);

    // Released: it runs, then the next Execute is held in its turn.
    let r = c.read_until_tag(b'N').await;
    assert_eq!(command_tags(&r), ["DELETE 1"], "{}", r.describe());
    let second = hold_id(&r).unwrap_or_else(|| panic!("second not held: {}", r.describe()));
    assert_ne!(first, second);
    let (_, shown) = show(&gh, &who.bob, &second).await;
    assert_eq!(shown["statement"], "DELETE FROM orders WHERE id = $1");
    assert_eq!(shown["params"], serde_json::json!(["2"]), "{shown}");
    assert_eq!(orders_state(&gh).await, "2:20,3:30");
    // Secrets in parameters reach the approver only through the value detectors.
    let mut c2 = RawPg::login(gh.port, "alice", &who.alice).await;
    c2.send(&[
        rawpg::parse("", "UPDATE orders SET amount = length($1) WHERE id = 3"),
        rawpg::bind("", "", &[Some("mail alice.smith@example.com now")], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c2.read_until_tag(b'N').await;
    let third = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (_, shown) = show(&gh, &who.bob, &third).await;
    let p = shown["params"][0].as_str().unwrap_or_default().to_owned();
    assert!(
        p.starts_with("mail ") && !p.contains("alice.smith@example.com"),
        "{shown}"
    );
    let _ = vote(&gh, &who.bob, &third, "deny", "no").await;
    let _ = c2.read_ready(1).await;
    let (status, _) = vote(&gh, &who.bob, &second, "deny", "not that one").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert!(r.describe().contains("denied by bob"), "{}", r.describe());
    assert_eq!(orders_state(&gh).await, "2:20,3:30");

    // The session goes on, and the evidence names the request the Execute ran under.
    let r = c.simple("SELECT count(*) FROM orders").await;
    assert_eq!(r.cells(), ["2"]);
    let events = gh
        .wait_events("the released Execute", |ev| {
            ev.iter()
                .any(|e| e["kind"] == "statement" && e["approval"]["request"] == first.as_str())
        })
        .await;
    let ran = events
        .iter()
        .find(|e| e["kind"] == "statement" && e["approval"]["request"] == first.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(ran["statement"], "DELETE FROM orders WHERE id = 1");
    assert_eq!(ran["approval"]["step"], "executed");
    assert_eq!(ran["decision"], "allow");
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

/// tokio-postgres' prepared statements (binary parameters) wait and run once approved; a
/// portal fetched in several Executes is approved once.
#[tokio::test]
async fn prepared_statements_of_a_driver_wait_and_run() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let pg = gh.connect("alice", &who.alice).await;
    let held = tokio::spawn(async move {
        let n = pg
            .execute(
                "UPDATE orders SET amount = $1 WHERE id = $2",
                &[&99i32, &3i32],
            )
            .await;
        (pg, n)
    });
    let req = wait_pending(&gh, &who.bob, "UPDATE orders SET amount = $1 WHERE id = $2").await;
    // Binary parameters are decoded by the types the server described.
    assert_eq!(req["params"], serde_json::json!(["99", "3"]), "{req}");
    let (status, _) = vote(&gh, &who.bob, &id_of(&req), "approve", "ok").await;
    assert_eq!(status, 200);
    let (pg, n) = held.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n.unwrap_or_else(|e| panic!("{e}")), 1);
    assert_eq!(orders_state(&gh).await, "1:10,2:20,3:99");

    // A portal read in pieces (max_rows) asks once.
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::query("BEGIN"),
        rawpg::parse("", "DELETE FROM orders WHERE id > 0 RETURNING id"),
        rawpg::bind("p", "", &[], &[]),
        rawpg::execute("p", 1),
        rawpg::execute("p", 1),
        rawpg::execute("p", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    assert!(
        hold_message(&r).is_some_and(|m| m.contains("transaction")),
        "the in-transaction wait is said: {}",
        r.describe()
    );
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "cleanup").await;
    assert_eq!(status, 200);
    // BEGIN's ReadyForQuery came before the notice.
    let r = c.read_ready(1).await;
    assert!(r.complete(), "{}", r.describe());
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    assert_eq!(r.rows().len(), 3, "{}", r.describe());
    assert!(hold_id(&r).is_none(), "asked again: {}", r.describe());
    let r = c.simple("ROLLBACK").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    assert_eq!(orders_state(&gh).await, "1:10,2:20,3:99");
    drop(pg);
}

/// An agent that cannot wait: refused with state `pending`, the request stays open; a re-run
/// while pending waits on the same request; once approved, the same statement runs once, and
/// a third run asks again. Another identity or another text is not covered by the grant.
#[tokio::test]
async fn an_agent_refused_while_pending_runs_it_once_after_approval() {
    let gh = start_grants().await;
    let who = cast(&gh).await;
    let bot = gh.issue("deploy-bot", "agent", &["deployers"]).await;
    let bot2 = gh.issue("other-bot", "agent", &["deployers"]).await;
    let sql = "DELETE FROM orders WHERE id = 1";
    let c = gh.connect("deploy-bot", &bot).await;

    let refused = |e: tokio_postgres::Error| {
        let db = e.as_db_error().cloned();
        let (state, _) = db_error(&e);
        (
            state,
            db.and_then(|d| d.detail().map(str::to_owned))
                .unwrap_or_default(),
        )
    };
    let started = std::time::Instant::now();
    let (state, detail) = refused(c.batch_execute(sql).await.expect_err("pending"));
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(state, "42501");
    assert!(detail.ends_with("; state: pending"), "{detail}");
    let id = detail
        .strip_prefix("request: ")
        .and_then(|d| d.split(';').next())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(
        wait_state(&gh, &who.bob, &id, "pending").await["id"],
        id.as_str()
    );

    // A re-run while pending joins the same request.
    let (_, detail) = refused(c.batch_execute(sql).await.expect_err("still pending"));
    assert_eq!(detail, format!("request: {id}; state: pending"));
    assert_eq!(pending(&gh, &who.bob).await.len(), 1);

    let (status, _) = vote(&gh, &who.bob, &id, "approve", "go ahead").await;
    assert_eq!(status, 200);
    // Another identity, or another statement, is not covered.
    let c2 = gh.connect("other-bot", &bot2).await;
    let (_, detail) = refused(c2.batch_execute(sql).await.expect_err("not granted"));
    assert!(!detail.contains(&id), "{detail}");
    let (_, detail) = refused(
        c.batch_execute("DELETE FROM orders WHERE id = 2")
            .await
            .expect_err("not granted"),
    );
    assert!(!detail.contains(&id), "{detail}");
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);

    // The same statement runs once.
    let rows = c.simple_query(sql).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        rows.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(1))),
        "{rows:?}"
    );
    assert_eq!(orders_state(&gh).await, "2:20,3:30");
    let (_, shown) = show(&gh, &who.bob, &id).await;
    assert!(shown["used_at_ms"].is_i64(), "{shown}");
    // And not twice: a new request.
    let (_, detail) = refused(c.batch_execute(sql).await.expect_err("asks again"));
    assert!(!detail.contains(&id), "{detail}");

    let events = gh
        .wait_events("the granted run", |ev| {
            ev.iter()
                .any(|e| e["kind"] == "statement" && e["approval"]["request"] == id.as_str())
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

/// Automatic approval: a rule approves a small, sized write at once (recorded as approved by
/// the rule); a larger one, or an agent's, goes to people; the request shows the estimate.
#[tokio::test]
async fn a_rule_approves_small_sized_writes_and_the_rest_wait() {
    let rules = format!(
        "{POLICIES}\n{}",
        r#"
@id("auto-single-row-order-fixes")
@reason("single-row fixes to orders are routine")
permit(principal, action == Gatehouse::Action::"approve", resource)
when {
  context.approval_policy == "orders-writes-need-a-dba" &&
  context has estimated_rows && context.estimated_rows <= 1
};
"#
    );
    let gh = start_with(&rules, 30, 30).await;
    let who = cast(&gh).await;
    let bot = gh.issue("deploy-bot", "agent", &["deployers"]).await;
    let c = gh.connect("alice", &who.alice).await;
    // Sized at one row (primary key): approved at once by the rule.
    let n = c
        .execute("UPDATE orders SET amount = 11 WHERE id = 1", &[])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(n, 1);
    assert_eq!(orders_state(&gh).await, "1:11,2:20,3:30");

    // More rows: a person must approve; the request carries the estimate.
    let c2 = gh.connect("alice", &who.alice).await;
    let held = tokio::spawn(async move {
        c2.batch_execute("UPDATE orders SET amount = 0 WHERE id > 0")
            .await
    });
    let req = wait_pending(&gh, &who.bob, "UPDATE orders SET amount = 0 WHERE id > 0").await;
    assert!(
        req["estimated_rows"].as_u64().is_some_and(|n| n > 1),
        "the planner's estimate is shown: {req}"
    );
    let (status, _) = vote(&gh, &who.bob, &id_of(&req), "deny", "too broad").await;
    assert_eq!(status, 200);
    assert!(held.await.unwrap_or_else(|e| panic!("{e}")).is_err());

    // An agent is not covered by a rule whose principal scope does not name agents.
    let cb = gh.connect("deploy-bot", &bot).await;
    let held = tokio::spawn(async move {
        cb.batch_execute("UPDATE orders SET amount = 12 WHERE id = 1")
            .await
    });
    let req = wait_pending(&gh, &who.bob, "UPDATE orders SET amount = 12 WHERE id = 1").await;
    assert_eq!(req["estimated_rows"], 1, "{req}");
    let (status, _) = vote(&gh, &who.bob, &id_of(&req), "deny", "agents ask a person").await;
    assert_eq!(status, 200);
    assert!(held.await.unwrap_or_else(|e| panic!("{e}")).is_err());
    assert_eq!(orders_state(&gh).await, "1:11,2:20,3:30");

    let events = gh
        .wait_events("the rule's approval", |ev| {
            ev.iter()
                .any(|e| e["approval"]["by"] == "policy:auto-single-row-order-fixes")
        })
        .await;
    let vote = events
        .iter()
        .find(|e| e["approval"]["by"] == "policy:auto-single-row-order-fixes")
        .cloned()
        .unwrap_or_default();
    assert_eq!(vote["approval"]["step"], "approve");
    assert_eq!(
        vote["approval"]["reason"],
        "single-row fixes to orders are routine"
    );
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

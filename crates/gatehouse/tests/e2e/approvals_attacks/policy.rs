//! Policies and statement forms: several approval requirements, reloads while held, PREPARE,
//! every way of writing a guarded table, messages that are refused rather than held.

use super::*;

/// A string whose statements hit two approval policies (orders: one of dba/oncall; ledger:
/// two DBAs) must need both. One on-call approval must not write the ledger.
/// Found: a string needing approvals of two policies with different approvers opened one
/// request for the first policy only, and one on-call approval released a ledger write that
/// wants two DBAs. Now such a string is refused: one request cannot satisfy both.
#[tokio::test]
async fn two_approval_policies_in_one_string_need_both() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let c = gh.connect("alice", &who.alice).await;
    for sql in [
        "DELETE FROM orders WHERE id = 1; DELETE FROM ledger WHERE id = 1",
        // One statement writing both tables (a data-modifying CTE): two forbids match it.
        "WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING id) \
         DELETE FROM ledger WHERE id IN (SELECT id FROM d)",
    ] {
        let err = tokio::time::timeout(WAIT, c.batch_execute(sql))
            .await
            .unwrap_or_else(|_| panic!("{sql}: still waiting"))
            .expect_err("refused");
        let (state, msg) = db_error(&err);
        assert_eq!(state, "42501", "{sql}: {msg}");
        assert!(msg.contains("several policies"), "{sql}: {msg}");
        assert!(pending(&gh, &who.bob).await.is_empty());
    }
    assert_eq!(count(&gh, "ledger").await, 2);
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

const RELOAD_BEFORE: &str = r#"
@id("orders-approval")
@reason("writes to orders need approval")
@approval("oncall")
forbid(principal, action == Gatehouse::Action::"write", resource)
when { context.tables_written.contains("public.orders") };
"#;

const RELOAD_STRICTER: &str = r#"
@id("orders-approval")
@reason("writes to orders need approval")
@approval("dba")
@quorum("2")
forbid(principal, action == Gatehouse::Action::"write", resource)
when { context.tables_written.contains("public.orders") };
"#;

const RELOAD_DENY: &str = r#"
@id("orders-approval")
@reason("writes to orders are frozen")
forbid(principal, action == Gatehouse::Action::"write", resource)
when { context.tables_written.contains("public.orders") };
"#;

/// The release decides the string again; when the policy (same id) now wants two DBAs, one
/// on-call approval given under the old policy must not release it.
#[tokio::test]
async fn reload_raising_the_bar_is_not_met_by_the_old_approval() {
    let gh = start_with(RELOAD_BEFORE, 60, 60).await;
    let who = cast(&gh).await;
    let sql = "DELETE FROM orders WHERE id = 1";
    let c = gh.connect("alice", &who.alice).await;
    let mut held = tokio::spawn(async move { c.batch_execute(sql).await });
    let id = id_of(&wait_pending(&gh, &who.carol, sql).await);
    reload_policies(&gh, RELOAD_BEFORE, RELOAD_STRICTER).await;
    let (status, body) = vote(&gh, &who.carol, &id, "approve", "on call").await;
    let outcome = tokio::time::timeout(Duration::from_secs(3), &mut held).await;
    let state = orders_state(&gh).await;
    deny_if_pending(&gh, &who.bob, &id).await;
    if outcome.is_err() {
        let _ = tokio::time::timeout(WAIT, held).await;
    }
    assert_eq!(
        state, ORDERS_AT_START,
        "after the policy was reloaded to need two DBAs, one on-call approval (vote: {status} \
         {body}) still released the DELETE; client: {outcome:?}"
    );
}

/// Reloaded to a plain forbid while held: the approval must not release it.
#[tokio::test]
async fn reload_to_a_plain_forbid_refuses_at_release() {
    let gh = start_with(RELOAD_BEFORE, 60, 60).await;
    let who = cast(&gh).await;
    let sql = "DELETE FROM orders WHERE id = 1";
    let c = gh.connect("alice", &who.alice).await;
    let held = tokio::spawn(async move { c.batch_execute(sql).await });
    let id = id_of(&wait_pending(&gh, &who.carol, sql).await);
    reload_policies(&gh, RELOAD_BEFORE, RELOAD_DENY).await;
    let (status, body) = vote(&gh, &who.carol, &id, "approve", "on call").await;
    assert_eq!(status, 200, "{body}");
    let res = tokio::time::timeout(WAIT, held)
        .await
        .unwrap_or_else(|_| panic!("client still waiting"))
        .unwrap_or_else(|e| panic!("{e}"));
    let err = res.expect_err("a frozen table must refuse at release");
    assert_eq!(db_error(&err).0, "42501");
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    gh.wait_events("refused_at_release step", |ev| {
        ev.iter().any(|e| {
            e["approval"]["request"] == id.as_str() && e["approval"]["step"] == "refused_at_release"
        })
    })
    .await;
}

/// Found: an approved SQL PREPARE of a DELETE with a parameter let Bind/Execute of it run
/// with any argument, any number of times, unapproved. Now a PREPARE of a statement that
/// needs approval is refused, not held: only a statement that runs once can be approved.
#[tokio::test]
async fn approved_prepare_is_not_a_blank_cheque_for_protocol_executes() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[rawpg::query(
        "PREPARE p AS DELETE FROM orders WHERE id = $1",
    )])
    .await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert!(pending(&gh, &who.bob).await.is_empty());
    c.send(&[
        rawpg::bind("", "p", &[Some("2")], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
        rawpg::query("EXECUTE p(3)"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(r.error().is_some(), "{}", r.describe());
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START, "{}", r.describe());
}

/// COPY … FROM STDIN writes orders as surely as INSERT does; under the documented policy it
/// must not go in without approval.
#[tokio::test]
async fn copy_from_stdin_into_a_guarded_table_needs_approval() {
    use futures_util::SinkExt;
    let gh = start(30).await;
    let who = cast(&gh).await;
    let c = gh.connect("alice", &who.alice).await;
    let mut task = tokio::spawn(async move {
        let sink = c
            .copy_in::<_, bytes::Bytes>("COPY orders FROM STDIN")
            .await?;
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(b"9\t90\n")).await?;
        sink.finish().await
    });
    let outcome = tokio::time::timeout(Duration::from_secs(3), &mut task).await;
    let state = orders_state(&gh).await;
    for r in pending(&gh, &who.bob).await {
        deny_if_pending(&gh, &who.bob, &id_of(&r)).await;
    }
    task.abort();
    assert_eq!(
        state, ORDERS_AT_START,
        "COPY FROM STDIN added rows to orders without approval: {outcome:?}"
    );
}

/// Runs `sql` as alice for a few seconds, denies whatever it opened, and asserts orders is
/// untouched: a write that must not go in without approval.
async fn write_needs_approval(sql: &'static str, what: &str) {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let c = gh.connect("alice", &who.alice).await;
    let mut task = tokio::spawn(async move { c.batch_execute(sql).await });
    let outcome = tokio::time::timeout(Duration::from_secs(3), &mut task).await;
    let state = orders_state(&gh).await;
    for r in pending(&gh, &who.bob).await {
        deny_if_pending(&gh, &who.bob, &id_of(&r)).await;
    }
    task.abort();
    assert_eq!(
        state, ORDERS_AT_START,
        "{what} changed orders without approval: {outcome:?}"
    );
}

/// CREATE TABLE AS with a data-modifying CTE deletes from orders (classified as DDL).
#[tokio::test]
async fn ctas_with_a_delete_cte_needs_approval() {
    write_needs_approval(
        "CREATE TABLE grabbed AS WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d",
        "CREATE TABLE AS WITH (DELETE FROM orders …)",
    )
    .await;
}

/// A DO block whose body deletes from orders (the analyser sees the write).
#[tokio::test]
async fn do_block_writing_a_guarded_table_needs_approval() {
    write_needs_approval(
        "DO $$ BEGIN DELETE FROM orders WHERE id = 2; END $$",
        "a DO block",
    )
    .await;
}

/// An auto-updatable view over orders (created by the administrator): deleting through it
/// deletes from orders. Known gap: statement facts name the view (`public.orders_v`), not the
/// base table it writes, so policies on the base table do not see it (the analyser does not
/// yet resolve writes through views to their base tables).
#[tokio::test]
#[ignore = "known gap: writes through updatable views are not resolved to their base tables"]
async fn writes_through_an_updatable_view_need_approval() {
    write_needs_approval(
        "DELETE FROM orders_v WHERE id = 3",
        "DELETE through the view orders_v",
    )
    .await;
}

/// Every way of writing orders the analyser sees as a write is held, and nothing of it runs
/// while pending (the session is then dropped, withdrawing it).
#[tokio::test]
async fn every_write_form_on_a_guarded_table_is_held() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let forms = [
        "EXPLAIN ANALYZE DELETE FROM orders WHERE id = 1",
        "EXPLAIN (ANALYZE, FORMAT JSON) UPDATE orders SET amount = 0 WHERE id = 1",
        "WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d",
        "MERGE INTO orders o USING (SELECT 1 AS id) s ON o.id = s.id WHEN MATCHED THEN DELETE",
        "INSERT INTO orders VALUES (1, 5) ON CONFLICT (id) DO UPDATE SET amount = 0",
        "DELETE FROM public.\"orders\" WHERE id = 1",
        "UPDATE ONLY ORDERS SET amount = 0 WHERE id = 1",
        "SELECT 1; DELETE FROM orders WHERE id = 1",
        "PREPARE px AS DELETE FROM orders WHERE id = 1; EXECUTE px",
        "BEGIN; DELETE FROM orders WHERE id = 1; COMMIT",
        "SET search_path = pg_catalog, public; DELETE FROM orders WHERE id = 1",
    ];
    let mut failures = Vec::new();
    for sql in forms {
        let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
        c.send(&[rawpg::query(sql)]).await;
        let r = c.read_until_tag(b'N').await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let state = orders_state(&gh).await;
        if hold_id(&r).is_none() && r.sqlstate().as_deref() != Some("42501") {
            failures.push(format!(
                "{sql:?}: neither held nor refused: {}",
                r.describe()
            ));
        }
        if state != ORDERS_AT_START {
            failures.push(format!("{sql:?}: orders changed while pending: {state}"));
            break;
        }
        c.vanish();
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A fastpath call (FunctionCall, by OID) that needs approval is refused, as docs/approvals.md
/// says; holding it would show the approver `SELECT pg_catalog.lo_unlink($1)` without the
/// argument (which large object) and then run it with whatever argument the client sent.
#[tokio::test]
async fn fastpath_call_needing_approval_is_refused_not_held() {
    let policy = r#"
@id("lo-unlink-needs-a-dba")
@reason("removing large objects needs a DBA")
@approval("dba")
forbid(principal, action, resource)
when { context.functions.contains("pg_catalog.lo_unlink") };
"#;
    let gh = start_with(policy, 3, 3).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[crate::wire_attacks::function_call(964, &[b"424242"])])
        .await;
    let r = c.read_until_tag(b'N').await;
    let held = hold_id(&r);
    let shown = match &held {
        Some(id) => show(&gh, &who.bob, id).await.1,
        None => Value::Null,
    };
    if let Some(id) = &held {
        deny_if_pending(&gh, &who.bob, id).await;
        let _ = c.read_ready(1).await;
    }
    let lo = direct_one(
        &gh,
        "SELECT count(*) FROM pg_largeobject_metadata WHERE oid = 424242",
    )
    .await;
    assert_eq!(lo, "1", "the large object was removed");
    assert!(
        held.is_none(),
        "the fastpath call was held, not refused; the approver sees statement={} params={}",
        shown["statement"],
        shown["params"]
    );
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
}

//! The session around a hold: cancel and disconnect, several sessions on one request,
//! pipelines behind a held Execute, audit attribution, functions of one's own.

use super::*;

/// A raw session after a real login, with the cancel key it was given.
pub(crate) async fn login_keyed(gh: &Gatehouse, user: &str, token: &str) -> (RawPg, i32, i32) {
    let startup = raw::startup(&[("user", user), ("database", "app")]);
    let (s, buf, seen) = raw::login_with(gh.port, startup, token).await;
    let k = seen
        .iter()
        .find(|m| m.tag == b'K')
        .unwrap_or_else(|| panic!("no BackendKeyData"));
    let pid = i32::from_be_bytes([k.body[0], k.body[1], k.body[2], k.body[3]]);
    let secret = i32::from_be_bytes([k.body[4], k.body[5], k.body[6], k.body[7]]);
    (RawPg::from_login(s, buf), pid, secret)
}

/// A CancelRequest during a hold at Execute withdraws it; what was pipelined behind it up to
/// Sync is skipped as after any error; the session goes on. A client that goes away while
/// its Execute is held runs nothing, even if an approver approves afterwards.
#[tokio::test]
async fn cancel_or_disconnect_during_execute_hold() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let (mut c, pid, secret) = login_keyed(&gh, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("", "SELECT 5"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
        rawpg::query("SELECT 6"),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    cancel_request(gh.port, pid, secret).await;
    let r = c.read_ready(2).await;
    assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
    assert_eq!(
        r.cells(),
        ["6"],
        "the pipelined SELECT 5 is skipped: {}",
        r.describe()
    );
    wait_state(&gh, &who.bob, &id, "withdrawn").await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "late").await;
    assert_eq!(status, 409);
    let r = c.simple("SELECT 7").await;
    assert_eq!(r.cells(), ["7"], "{}", r.describe());
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);

    // Gone while held.
    let mut d = RawPg::login(gh.port, "alice", &who.alice).await;
    d.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 2"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = d.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    d.vanish();
    wait_state(&gh, &who.bob, &id, "withdrawn").await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "late").await;
    assert_eq!(status, 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    assert_eq!(
        upstream_sessions(&gh, "alice").await,
        1,
        "only the first session is left"
    );
}

/// A CancelRequest or a disconnect while the COMMIT is held: rolled back, never committed.
#[tokio::test]
async fn cancel_or_disconnect_during_commit_hold_rolls_back() {
    let gh = start_grants(COMMIT_POLICY).await;
    let who = cast(&gh).await;
    let (mut c, pid, secret) = login_keyed(&gh, "alice", &who.alice).await;
    for sql in ["BEGIN", "UPDATE ledger SET amount = 999 WHERE id = 1"] {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    let id = raw_hold(&mut c, "COMMIT").await;
    cancel_request(gh.port, pid, secret).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
    assert_eq!(status_of(&r), Some(b'I'), "{}", r.describe());
    wait_state(&gh, &who.bob, &id, "withdrawn").await;
    assert_eq!(ledger(&gh).await, "1:10,2:20");
    // A COMMIT now has nothing to commit.
    let r = c.simple("COMMIT").await;
    assert!(hold_id(&r).is_none(), "{}", r.describe());
    assert_eq!(ledger(&gh).await, "1:10,2:20");

    let mut d = RawPg::login(gh.port, "alice", &who.alice).await;
    for sql in ["BEGIN", "UPDATE ledger SET amount = 998 WHERE id = 2"] {
        let r = d.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    let id = raw_hold(&mut d, "COMMIT").await;
    d.vanish();
    wait_state(&gh, &who.bob, &id, "withdrawn").await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "late").await;
    assert_eq!(status, 409);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(ledger(&gh).await, "1:10,2:20");
}

/// Two sessions of one person send the same statement: the second waits on the first's
/// request; one approval runs it once, not once per session.
#[tokio::test]
async fn two_sessions_on_one_request_run_it_once() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let sql = "UPDATE orders SET amount = amount + 1 WHERE id = 1";
    let mut a = RawPg::login(gh.port, "alice", &who.alice).await;
    let mut b = RawPg::login(gh.port, "alice", &who.alice).await;
    let first = raw_hold(&mut a, sql).await;
    let second = raw_hold(&mut b, sql).await;
    assert_eq!(
        first, second,
        "the second session waits on the same request"
    );
    let (status, _) = vote(&gh, &who.bob, &first, "approve", "once").await;
    assert_eq!(status, 200);
    let ra = a.read_ready(1).await;
    let rb = b.read_ready(1).await;
    let ran = [&ra, &rb]
        .iter()
        .filter(|r| command_tags(r) == ["UPDATE 1"])
        .count();
    assert_eq!(ran, 1, "a: {} b: {}", ra.describe(), rb.describe());
    assert_eq!(orders_state(&gh).await, "1:11,2:20,3:30");
}

/// tokio-postgres pipelines a held statement and a read behind it: the read waits, then both
/// answer in order (the Flush Gatehouse adds does not confuse the driver).
#[tokio::test]
async fn tokio_postgres_pipeline_behind_a_held_execute() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let pg = gh.connect("alice", &who.alice).await;
    let held = tokio::spawn(async move {
        // Prepared first, so the pipeline's order is the DELETE's Execute, then the read's.
        let d = pg
            .prepare("DELETE FROM orders WHERE id = $1")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let s = pg
            .prepare("SELECT count(*)::int FROM orders")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let del = pg.execute(&d, &[&1i32]);
        let count = pg.query_one(&s, &[]);
        let (d, n) = tokio::join!(del, count);
        let d = d.map_err(|e| e.to_string());
        let n = n.map(|r| r.get::<_, i32>(0)).map_err(|e| e.to_string());
        let after = pg
            .query_one("SELECT 9", &[])
            .await
            .map(|r| r.get::<_, i32>(0))
            .map_err(|e| e.to_string());
        (d, n, after)
    });
    let req = wait_pending(&gh, &who.bob, "DELETE FROM orders WHERE id = $1").await;
    let (status, _) = vote(&gh, &who.bob, &id_of(&req), "approve", "ok").await;
    assert_eq!(status, 200);
    let (d, n, after) = tokio::time::timeout(WAIT, held)
        .await
        .unwrap_or_else(|_| panic!("the pipeline hangs"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d, Ok(1));
    assert_eq!(n, Ok(2), "the read behind ran after the DELETE");
    assert_eq!(after, Ok(9));
}

/// A released portal is gone from the server at the end of its transaction; a SQL cursor of
/// the same name, executed by protocol Execute, must not be audited as the approved statement
/// (a second `executed` step of the request).
#[tokio::test]
async fn cursor_reusing_a_released_portal_name_is_not_attributed_to_the_approval() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c.simple("BEGIN").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1 RETURNING id"),
        rawpg::bind("p", "", &[], &[]),
        rawpg::execute("p", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "one").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["DELETE 1"], "{}", r.describe());
    for sql in ["CLOSE p", "DECLARE p CURSOR FOR SELECT 42"] {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    c.send(&[rawpg::execute("p", 0), rawpg::sync()]).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.cells(), ["42"], "{}", r.describe());
    let r = c.simple("COMMIT").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    let events = gh
        .wait_events("the cursor's Execute", |ev| {
            ev.iter()
                .filter(|e| e["kind"] == "statement")
                .any(|e| e["statement"] == "COMMIT")
        })
        .await;
    let executed: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "statement" && e["approval"]["request"] == id.as_str())
        .collect();
    assert_eq!(
        executed.len(),
        1,
        "the request's approval appears to run twice: {executed:?}"
    );
}

/// A function of the requester's own that writes `orders`: calling it is no way around the
/// approval (held or refused).
#[tokio::test]
async fn own_function_that_writes_orders_is_no_way_around() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c
        .simple("CREATE FUNCTION scratch.bump() RETURNS int LANGUAGE sql AS 'UPDATE public.orders SET amount = 0 WHERE id = 1 RETURNING 1'")
        .await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    for msgs in [
        vec![rawpg::query("SELECT scratch.bump()")],
        vec![
            rawpg::parse("", "SELECT scratch.bump()"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
    ] {
        c.send(&msgs).await;
        let r = c.read_ready(1).await;
        if let Some(id) = hold_id(&r) {
            let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
            let _ = c.read_ready(1).await;
        }
        assert_eq!(orders_state(&gh).await, ORDERS_AT_START, "{}", r.describe());
    }
}

/// The savepoint finding through a real client: psycopg's nested transaction blocks send
/// SAVEPOINT / ROLLBACK TO SAVEPOINT; an app that retries a ledger write after an error inside
/// the inner block gets its outer COMMIT through without approval.
/// A needing-approval Query pipelined behind a held Execute, with no Sync between: it must not
/// run on the Execute's approval.
#[tokio::test]
async fn query_pipelined_behind_a_held_execute_is_not_carried_by_its_approval() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::query("DELETE FROM orders WHERE id = 2"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "only id 1").await;
    assert_eq!(status, 200);
    let r = c.read_ready(2).await;
    if let Some(second) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &second, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    let after = orders_state(&gh).await;
    assert!(
        after == "2:20,3:30" || after == ORDERS_AT_START,
        "id 2 deleted on id 1's approval: {after}; {}",
        r.describe()
    );
    let r = c.simple("SELECT 1").await;
    assert_eq!(r.cells(), ["1"], "{}", r.describe());
}

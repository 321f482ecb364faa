//! The held session: pipelined and stray messages, transactions, cancellation, clients that
//! go away, unsynced batches.

use super::*;

// =============================================================================================
// Session state around a hold
// =============================================================================================

/// Two needing-approval queries pipelined: approving the first releases only the first; the
/// second is decided on its own (a new request).
#[tokio::test]
async fn pipelined_queries_are_decided_each_on_their_own() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::query("DELETE FROM orders WHERE id = 1"),
        rawpg::query("DELETE FROM orders WHERE id = 2"),
        rawpg::query("SELECT 'after'"),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id1 = hold_id(&r).unwrap_or_else(|| panic!("{}", r.describe()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    assert_eq!(vote(&gh, &who.bob, &id1, "approve", "one").await.0, 200);
    let r = c.read_until_tag(b'N').await;
    let id2 = hold_id(&r).unwrap_or_else(|| panic!("second not held: {}", r.describe()));
    assert_ne!(id1, id2);
    assert_eq!(command_tags(&r), ["DELETE 1"], "{}", r.describe());
    assert_eq!(orders_state(&gh).await, "2:20,3:30");
    let (_, second) = show(&gh, &who.bob, &id2).await;
    assert_eq!(second["statement"], "DELETE FROM orders WHERE id = 2");
    assert_eq!(vote(&gh, &who.bob, &id2, "deny", "no").await.0, 200);
    let r = c.read_ready(2).await;
    assert!(r.complete(), "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("42501"));
    assert!(r.cells().contains(&"after".to_owned()), "{}", r.describe());
    assert_eq!(orders_state(&gh).await, "2:20,3:30");
}

/// Nothing of a multi-statement string runs while held, nor after a denial, even the
/// statement that needed no approval.
#[tokio::test]
async fn nothing_of_a_held_multi_statement_string_runs() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let sql = "INSERT INTO notes VALUES (1, 'first'); DELETE FROM orders WHERE id = 1";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count(&gh, "notes").await, 0, "a part ran while held");
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert_eq!(count(&gh, "notes").await, 0);
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// Held inside a transaction block with COMMIT pipelined behind it: the COMMIT waits; after
/// the denial the transaction is failed, so COMMIT rolls back what ran before the hold.
#[tokio::test]
async fn held_in_a_transaction_then_commit_rolls_back() {
    let gh = start_with(POLICIES, 30, 10).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c
        .simple("BEGIN; INSERT INTO notes VALUES (2, 'in tx')")
        .await;
    assert!(r.error().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::query("DELETE FROM orders WHERE id = 1"),
        rawpg::query("COMMIT"),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("{}", r.describe()));
    let msg = hold_message(&r).unwrap_or_default();
    assert!(msg.contains("waiting up to 10 s"), "{msg}");
    assert!(msg.contains("transaction block"), "{msg}");
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let r = c.read_ready(2).await;
    assert!(r.complete(), "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("42501"));
    assert_eq!(command_tags(&r), ["ROLLBACK"], "{}", r.describe());
    let last_z = r
        .msgs
        .iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .map(|m| m.body[0]);
    assert_eq!(last_z, Some(b'I'));
    assert_eq!(count(&gh, "notes").await, 0);
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// A statement pipelined behind a string that fails the transaction: by the time it is held
/// the transaction is failed (it cannot run, and locks taken before the error stay held), so
/// it is refused at once or held no longer than the in-transaction maximum, not the long one.
#[tokio::test]
async fn failed_transaction_is_not_held_for_the_long_timeout() {
    let gh = start_with(POLICIES, 60, 2).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::query("BEGIN; LOCK TABLE notes IN ACCESS EXCLUSIVE MODE; SELECT 1/0"),
        rawpg::query("DELETE FROM orders WHERE id = 1"),
    ])
    .await;
    let r = c.read_ready(2).await;
    let msg = hold_message(&r);
    if let Some(id) = hold_id(&r) {
        deny_if_pending(&gh, &who.bob, &id).await;
    }
    assert!(
        r.complete(),
        "still held after {:?} in a failed transaction (locks held meanwhile); notice: {msg:?}; {}",
        rawpg::REPLY_WAIT,
        r.describe()
    );
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// Sync, Flush, stray CopyData and a Query sent while held are kept in order for after the
/// hold: the approved statement runs once, then each of them is answered as the server would.
#[tokio::test]
async fn stray_messages_while_held_keep_their_order() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    c.send(&[
        rawpg::sync(),
        rawpg::flush(),
        rawpg::copy_data(b"9\t90\n"),
        rawpg::copy_done(),
        rawpg::query("SELECT 42"),
        rawpg::parse("", "SELECT 43"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    assert_eq!(vote(&gh, &who.bob, &id, "approve", "ok").await.0, 200);
    let r = c.read_ready(4).await;
    assert!(r.complete(), "{}", r.describe());
    assert!(r.error().is_none(), "{}", r.describe());
    assert!(hold_id(&r).is_none(), "held twice: {}", r.describe());
    assert_eq!(
        command_tags(&r),
        ["DELETE 1", "SELECT 1", "SELECT 1"],
        "{}",
        r.describe()
    );
    assert_eq!(r.cells(), ["42", "43"]);
    assert_eq!(orders_state(&gh).await, "2:20,3:30");
    let r = c.simple("SELECT count(*) FROM orders").await;
    assert_eq!(r.cells(), ["2"], "{}", r.describe());
}

/// Terminate then close while held: withdrawn; a later approval changes nothing.
#[tokio::test]
async fn terminate_and_close_while_held_withdraws() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    c.send(&[raw::message(b'X', &[])]).await;
    c.vanish();
    wait_state(&gh, &who.bob, &id, "withdrawn").await;
    let (status, body) = vote(&gh, &who.bob, &id, "approve", "late").await;
    assert_eq!(status, 409, "{body}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// A client that goes away after filling the proxy's hold buffer (1 MiB) is gone all the
/// same: nothing may run for it, even if someone approves afterwards.
#[tokio::test]
async fn client_gone_after_filling_the_hold_buffer_runs_nothing() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    let chunk = vec![b'x'; 60_000];
    let frames: Vec<BytesMut> = (0..24).map(|_| rawpg::copy_data(&chunk)).collect();
    c.send(&frames).await;
    c.vanish();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = vote(&gh, &who.bob, &id, "approve", "fine").await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "the DELETE ran for a client that had disconnected (approval answered {status} {body})"
    );
}

/// A CancelRequest with a wrong secret, or with another of alice's sessions' key, does not
/// withdraw the request; the right key does.
#[tokio::test]
async fn cancel_with_a_wrong_or_foreign_key_does_not_withdraw() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let key = |seen: &[raw::Msg]| {
        let k = seen
            .iter()
            .find(|m| m.tag == b'K')
            .unwrap_or_else(|| panic!("no BackendKeyData"));
        let pid = i32::from_be_bytes([k.body[0], k.body[1], k.body[2], k.body[3]]);
        let secret = i32::from_be_bytes([k.body[4], k.body[5], k.body[6], k.body[7]]);
        (pid, secret)
    };
    let startup = || raw::startup(&[("user", "alice"), ("database", "app")]);
    let (s, buf, seen) = raw::login_with(gh.port, startup(), &who.alice).await;
    let (pid, secret) = key(&seen);
    let mut c = RawPg::from_login(s, buf);
    let (s2, buf2, seen2) = raw::login_with(gh.port, startup(), &who.alice).await;
    let (pid2, secret2) = key(&seen2);
    let _other = RawPg::from_login(s2, buf2);

    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    cancel_request(gh.port, pid, secret.wrapping_add(1)).await;
    cancel_request(gh.port, pid ^ 1, secret).await;
    cancel_request(gh.port, pid2, secret2).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, r) = show(&gh, &who.bob, &id).await;
    assert_eq!(r["state"], "pending", "{r}");

    cancel_request(gh.port, pid, secret).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
    wait_state(&gh, &who.bob, &id, "withdrawn").await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    // The session goes on.
    let r = c.simple("SELECT 7").await;
    assert_eq!(r.cells(), ["7"], "{}", r.describe());
}

/// A needing-approval Query sent after an unsynced extended-protocol batch (Parse/Bind/
/// Execute, no Sync, no Flush): the client must get an answer (a hold notice or an error), and
/// once it disconnects its upstream connection must end.
#[tokio::test]
async fn held_query_after_an_unsynced_batch_neither_hangs_nor_leaks() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "SELECT 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::query("DELETE FROM orders WHERE id = 1"),
    ])
    .await;
    let r = c.drain(rawpg::REPLY_WAIT).await;
    let answered = r.msgs.iter().any(|m| m.tag == b'N' || m.tag == b'E');
    for p in pending(&gh, &who.bob).await {
        deny_if_pending(&gh, &who.bob, &id_of(&p)).await;
    }
    c.vanish();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut left = upstream_sessions(&gh, "alice").await;
    while left > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        left = upstream_sessions(&gh, "alice").await;
    }
    assert!(
        answered && left == 0,
        "no hold notice nor error within {:?} (got {}); upstream backends still open 10 s \
         after the client left: {left}",
        rawpg::REPLY_WAIT,
        r.describe()
    );
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

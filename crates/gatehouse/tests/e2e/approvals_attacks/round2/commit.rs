//! Approval at COMMIT: no way to commit waiting writes unapproved, and what the approver sees.

use super::*;

// =============================================================================================
// Approval at COMMIT: committing writes that waited, without the approval
// =============================================================================================

/// BEGIN; a write (runs, its COMMIT will wait); SAVEPOINT; an error; another write that needs
/// approval (refused: the transaction failed); ROLLBACK TO SAVEPOINT; COMMIT. The first write
/// is still in the transaction: its COMMIT must wait.
#[tokio::test]
async fn failed_write_after_savepoint_does_not_forget_waiting_writes() {
    let gh = start_grants(COMMIT_POLICY).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    for sql in [
        "BEGIN",
        "UPDATE ledger SET amount = 999 WHERE id = 1",
        "SAVEPOINT a",
    ] {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    let r = c.simple("SELECT 1/0").await;
    assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
    let r = c.simple("UPDATE ledger SET amount = 1 WHERE id = 2").await;
    assert!(r.sqlstate().is_some(), "{}", r.describe());
    let r = c.simple("ROLLBACK TO SAVEPOINT a").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[rawpg::query("COMMIT")]).await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        ledger(&gh).await,
        "1:10,2:20",
        "committed without approval: {}",
        r.describe()
    );
}

/// A string whose ROLLBACK never runs (an error before it) must not forget the waiting writes.
#[tokio::test]
async fn rollback_that_never_ran_does_not_forget_waiting_writes() {
    let gh = start_grants(COMMIT_POLICY).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    for sql in [
        "BEGIN",
        "UPDATE ledger SET amount = 999 WHERE id = 1",
        "SAVEPOINT a",
    ] {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    let r = c.simple("SELECT 1/0; ROLLBACK").await;
    assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
    let r = c.simple("ROLLBACK TO SAVEPOINT a").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[rawpg::query("COMMIT")]).await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        ledger(&gh).await,
        "1:10,2:20",
        "committed without approval: {}",
        r.describe()
    );
}

/// The approver of a held COMMIT sees the writes' parameters, not only `$1`.
#[tokio::test]
async fn held_commit_shows_bound_values_of_its_writes() {
    let gh = start_grants(COMMIT_POLICY).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c.simple("BEGIN").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::parse("", "UPDATE ledger SET amount = $1 WHERE id = $2"),
        rawpg::bind("", "", &[Some("987654"), Some("1")], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
    let id = raw_hold(&mut c, "COMMIT").await;
    let (_, shown) = show(&gh, &who.bob, &id).await;
    let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
    let _ = c.read_ready(1).await;
    assert_eq!(ledger(&gh).await, "1:10,2:20");
    assert!(
        shown.to_string().contains("987654"),
        "the approver does not see the value committed: {shown}"
    );
}

/// Sends `msgs`, reads up to the hold notice, denies the request, reads the refusal.
async fn held_then_denied(
    gh: &Gatehouse,
    c: &mut RawPg,
    token: &str,
    msgs: &[bytes::BytesMut],
    what: &str,
) -> Reply {
    c.send(msgs).await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("{what}: not held: {}", r.describe()));
    assert!(
        !command_tags(&r).iter().any(|t| t == "COMMIT"),
        "{what}: {}",
        r.describe()
    );
    let (status, body) = vote(gh, token, &id, "deny", "no").await;
    assert_eq!(status, 200, "{what}: {body}");
    c.read_ready(1).await
}

/// Every spelling and route of a commit while writes wait: held (then denied: rolled back) or
/// refused; never committed.
#[tokio::test]
async fn commit_variants_wait_or_are_refused() {
    let gh = start_grants(COMMIT_POLICY).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let write = "UPDATE ledger SET amount = 999 WHERE id = 1";

    // Held, then denied: the client's COMMIT fails and the transaction is gone.
    for commit in [
        "COMMIT AND CHAIN",
        "END",
        "commit /* x */ ;",
        "END TRANSACTION",
    ] {
        for sql in ["BEGIN", write] {
            let r = c.simple(sql).await;
            assert!(r.sqlstate().is_none(), "{commit}: {sql}: {}", r.describe());
        }
        let r = held_then_denied(&gh, &mut c, &who.bob, &[rawpg::query(commit)], commit).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{commit}: {}",
            r.describe()
        );
        assert_eq!(status_of(&r), Some(b'I'), "{commit}: {}", r.describe());
        assert_eq!(ledger(&gh).await, "1:10,2:20", "{commit}");
    }

    // Refused by Execute: END, COMMIT AND CHAIN, PREPARE TRANSACTION.
    for commit in ["END", "COMMIT AND CHAIN", "PREPARE TRANSACTION 'gh_r2'"] {
        for sql in ["BEGIN", write] {
            let r = c.simple(sql).await;
            assert!(r.sqlstate().is_none(), "{commit}: {sql}: {}", r.describe());
        }
        c.send(&[
            rawpg::parse("", commit),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ])
        .await;
        let r = c.read_ready(1).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{commit}: {}",
            r.describe()
        );
        assert_eq!(ledger(&gh).await, "1:10,2:20", "{commit} by Execute");
        let r = c.simple("ROLLBACK").await;
        assert!(r.sqlstate().is_none(), "{}", r.describe());
    }
    assert_eq!(
        direct_one(&gh, "SELECT count(*) FROM pg_prepared_xacts").await,
        "0"
    );

    // ABORT drops the writes: nothing to commit after it.
    for sql in ["BEGIN", write, "ABORT", "COMMIT"] {
        let r = c.simple(sql).await;
        assert!(hold_id(&r).is_none(), "{sql}: {}", r.describe());
    }
    assert_eq!(ledger(&gh).await, "1:10,2:20");

    // Pipelined in one write (three Queries): the COMMIT is held all the same.
    let r = held_then_denied(
        &gh,
        &mut c,
        &who.bob,
        &[
            rawpg::query("BEGIN"),
            rawpg::query(write),
            rawpg::query("COMMIT"),
        ],
        "pipelined",
    )
    .await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert_eq!(ledger(&gh).await, "1:10,2:20");

    // One string from idle: held as a statement.
    let r = held_then_denied(
        &gh,
        &mut c,
        &who.bob,
        &[rawpg::query(&format!("BEGIN; {write}; COMMIT"))],
        "one string",
    )
    .await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert_eq!(ledger(&gh).await, "1:10,2:20");

    // One extended batch from idle (the status is not the server's word): held as a
    // statement; its COMMIT never runs.
    let r = held_then_denied(
        &gh,
        &mut c,
        &who.bob,
        &[
            rawpg::parse("", "BEGIN"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::parse("", write),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::parse("", "COMMIT"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        "one batch",
    )
    .await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    let _ = c.simple("ROLLBACK").await;
    assert_eq!(ledger(&gh).await, "1:10,2:20");
    let r = c.simple("SELECT 1").await;
    assert_eq!(r.cells(), ["1"], "{}", r.describe());
}

/// Logs in raw and returns the session with its cancel key.
const PSYCOPG_NESTED: &str = r#"
import json, sys, psycopg
host, port, user, dbname, cursor = sys.argv[1:6]
out = {"notices": []}
factory = psycopg.ClientCursor if cursor == "client" else psycopg.Cursor
with psycopg.connect(host=host, port=port, user=user, dbname=dbname, connect_timeout=10, cursor_factory=factory) as conn:
    conn.add_notice_handler(lambda d: out["notices"].append(d.message_primary))
    try:
        with conn.transaction():
            conn.execute("UPDATE ledger SET amount = %s WHERE id = %s", (999, 1))
            try:
                with conn.transaction():
                    try:
                        conn.execute("SELECT 1/0")
                    except psycopg.Error:
                        # A retry of another write in the failed savepoint: refused.
                        conn.execute("UPDATE ledger SET amount = %s WHERE id = %s", (1, 2))
            except psycopg.Error as e:
                out["inner"] = e.sqlstate
        out["committed"] = True
    except psycopg.Error as e:
        out["committed"] = False
        out["sqlstate"] = e.sqlstate
print(json.dumps(out))
"#;

/// Runs PSYCOPG_NESTED with `cursor` ("client": psycopg's ClientCursor, simple protocol;
/// "server": the default, extended protocol), denying a held COMMIT; the ledger after it.
async fn psycopg_nested(cursor: &str) -> String {
    let gh = start_grants(COMMIT_POLICY).await;
    let who = cast(&gh).await;
    let mut cmd = tokio::process::Command::new(crate::python::python());
    cmd.args(["-c", PSYCOPG_NESTED])
        .args(["127.0.0.1", &gh.port.to_string(), "alice", "app", cursor])
        .env("PGPASSWORD", &who.alice)
        .env_remove("PGHOST")
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null());
    let run = tokio::spawn(async move { cmd.output().await });
    // If the COMMIT is (rightly) held, deny it.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !run.is_finished() && tokio::time::Instant::now() < deadline {
        for r in pending(&gh, &who.bob).await {
            if r["statement"] == "COMMIT" {
                let _ = vote(&gh, &who.bob, &id_of(&r), "deny", "no").await;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = tokio::time::timeout(WAIT, run)
        .await
        .unwrap_or_else(|_| panic!("psycopg hangs"))
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}{stderr}");
    format!("{} {stdout}", ledger(&gh).await)
}

#[tokio::test]
async fn psycopg_nested_transaction_extended_protocol_does_not_commit_waiting_writes() {
    let got = psycopg_nested("server").await;
    assert!(
        got.starts_with("1:10,2:20 "),
        "committed without approval: {got}"
    );
}

#[tokio::test]
async fn psycopg_nested_transaction_client_cursor_does_not_commit_waiting_writes() {
    let got = psycopg_nested("client").await;
    assert!(
        got.starts_with("1:10,2:20 "),
        "committed without approval: {got}"
    );
}

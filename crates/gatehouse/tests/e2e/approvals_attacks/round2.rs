//! Second red-team round on approvals: the extended protocol held at Execute, one-time
//! grants, and approval at COMMIT. Every test asserts the SECURE behaviour: a failing test is a
//! finding (kept `#[ignore = "finding: ..."]` until the product is fixed).
//!
//! Findings when written (against 5e30873), all fixed since (the SQL EXECUTE ones by refusing
//! an SQL EXECUTE that needs approval; the stale re-decision by deciding a prepared statement
//! again at Bind whenever the search path or the policies changed; the commit-mode ones by
//! ending a hold only when the server reported the transaction idle):
//! - a one-time grant for `EXECUTE s` is keyed on that text only: re-Parse `s` as another
//!   statement (same policy) and the grant runs it (an unbounded DELETE ran on an approval of
//!   `DELETE … WHERE id = 1`); the approver of `EXECUTE s(…)` never sees what `s` is;
//! - without masking, a Parse is never decided again: parsed under `search_path = scratch`
//!   (or before a policy reload adding `@approval`), it runs after `SET search_path = public`
//!   (the server re-analyses it) or after the reload, against public.orders, unapproved;
//! - approval at COMMIT forgets the waiting writes (then COMMIT goes through unapproved) when a
//!   needing-approval simple-Query write is sent in a failed transaction, or when a string
//!   holds a ROLLBACK that never ran (`SELECT 1/0; ROLLBACK`); ROLLBACK TO SAVEPOINT then
//!   revives the transaction with the writes (psycopg's ClientCursor with nested transaction
//!   blocks does exactly this);
//! - a held COMMIT shows extended-protocol writes as `$1` text, without their values;
//! - a released portal closed by SQL CLOSE stays released: a cursor of the same name run by
//!   Execute is audited as the approved statement, a second `executed` step of the request.

#[allow(unused_imports)]
use super::*;

const COMMIT_POLICY: &str = r#"
@id("ledger-commit-review")
@reason("ledger changes are reviewed before they commit")
@approval("dba")
@approval_mode("commit")
forbid(principal, action, resource)
when { context.tables_written.contains("public.ledger") };
"#;

/// The suite's setup plus a schema of the attacker's own with a table named like the
/// protected one (writes to it need no approval).
const SETUP_SCRATCH: &str = "
CREATE SCHEMA scratch;
CREATE TABLE scratch.orders (id int PRIMARY KEY, amount int);
INSERT INTO scratch.orders VALUES (1, 1), (2, 2), (3, 3);
";

/// Approvals with a short wait for agents and requests (and grants) that outlive it.
async fn start_grants(policies: &str) -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{SETUP_SCRATCH}"),
        policies: policies.into(),
        extra_toml: "[approvals]\ntimeout_secs = 30\nin_transaction_timeout_secs = 30\nagent_timeout_secs = 1\nrequest_ttl_secs = 60\ngrant_window_secs = 60\n".into(),
    })
    .await
}

async fn ledger(gh: &Gatehouse) -> String {
    direct_one(
        gh,
        "SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM ledger",
    )
    .await
}

/// The request id and state of a refusal's DETAIL (`request: ID; state: S`).
fn refusal_of(r: &Reply) -> Option<(String, String)> {
    let d = r.error()?.field(b'D')?;
    let rest = d.strip_prefix("request: ")?;
    let (id, state) = rest.split_once("; state: ")?;
    Some((id.to_owned(), state.to_owned()))
}

/// An agent's statement: the notice, then (its wait being short) a refusal with state
/// `pending`; the request id.
async fn agent_pending(c: &mut RawPg, msgs: &[bytes::BytesMut]) -> String {
    c.send(msgs).await;
    let r = c.read_ready(1).await;
    let (id, state) = refusal_of(&r).unwrap_or_else(|| panic!("not pending: {}", r.describe()));
    assert_eq!(state, "pending", "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    id
}

fn binary_bind(portal: &str, statement: &str, params: &[Option<&[u8]>]) -> bytes::BytesMut {
    use bytes::BufMut;
    let mut body = BytesMut::new();
    body.put_slice(portal.as_bytes());
    body.put_u8(0);
    body.put_slice(statement.as_bytes());
    body.put_u8(0);
    body.put_i16(1);
    body.put_i16(1); // every parameter binary
    body.put_i16(params.len() as i16);
    for p in params {
        match p {
            None => body.put_i32(-1),
            Some(v) => {
                body.put_i32(v.len() as i32);
                body.put_slice(v);
            }
        }
    }
    body.put_i16(0);
    crate::raw::message(b'B', &body)
}

// =============================================================================================
// One-time grants: what a grant key does not pin down
// =============================================================================================

/// Findings of this round (fixed): a one-time grant for `EXECUTE s` ran whatever `s` meant
/// when the grant was used (the key was the text `EXECUTE s`), and the approver of `EXECUTE
/// s(1)` saw only the name. An SQL EXECUTE that needs approval is now refused, not held.
#[tokio::test]
async fn sql_execute_needing_approval_is_refused_not_held() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let bot = gh.issue("deploy-bot", "agent", &["deployers"]).await;
    for (user, token) in [("deploy-bot", bot.as_str()), ("alice", who.alice.as_str())] {
        let mut a = RawPg::login(gh.port, user, token).await;
        a.send(&[
            rawpg::parse("s", "DELETE FROM orders WHERE id >= $1"),
            rawpg::sync(),
        ])
        .await;
        let r = a.read_ready(1).await;
        assert!(r.sqlstate().is_none(), "{}", r.describe());
        a.send(&[rawpg::query("EXECUTE s(1)")]).await;
        let r = a.read_ready(1).await;
        assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
        assert!(hold_id(&r).is_none(), "held: {}", r.describe());
        assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    }
    assert!(pending(&gh, &who.bob).await.is_empty());
}

/// Same text, other parameters: a text-format grant does not cover the binary form, another
/// parameter count, NULL for an empty string, nor another target statement bound to a
/// re-parsed name; and the grant runs once, for the statement it was asked for.
#[tokio::test]
async fn grant_is_pinned_to_parameters_and_statement_text() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let bot = gh.issue("deploy-bot", "agent", &["deployers"]).await;
    let other = gh.issue("other-bot", "agent", &["deployers"]).await;
    let sql = "UPDATE orders SET amount = $1 WHERE id = $2";

    let mut c = RawPg::login(gh.port, "deploy-bot", &bot).await;
    let id = agent_pending(
        &mut c,
        &[
            rawpg::parse("s", sql),
            rawpg::bind("p", "s", &[Some("5"), Some("1")], &[]),
            rawpg::execute("p", 0),
            rawpg::sync(),
        ],
    )
    .await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "amount 5 on order 1").await;
    assert_eq!(status, 200);

    // Binary form of the same values; one parameter more; NULL; empty string; other values.
    let attempts: Vec<(&str, Vec<bytes::BytesMut>)> = vec![
        (
            "binary form",
            vec![
                binary_bind(
                    "p",
                    "s",
                    &[Some(&5i32.to_be_bytes()), Some(&1i32.to_be_bytes())],
                ),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "other amount",
            vec![
                rawpg::bind("p", "s", &[Some("500"), Some("1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "NULL amount",
            vec![
                rawpg::bind("p", "s", &[None, Some("1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "other id with spaces",
            vec![
                rawpg::bind("p", "s", &[Some("5"), Some(" 1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "re-parsed name",
            vec![
                rawpg::close(b'S', "s"),
                rawpg::parse("s", "UPDATE orders SET amount = $1 WHERE id >= $2"),
                rawpg::bind("p", "s", &[Some("5"), Some("1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
    ];
    for (what, msgs) in attempts {
        c.send(&msgs).await;
        let r = c.read_ready(1).await;
        let got = refusal_of(&r);
        assert!(
            got.as_ref().is_some_and(|(i, _)| i != &id) || r.sqlstate().is_some(),
            "{what}: {}",
            r.describe()
        );
        assert!(
            !command_tags(&r).iter().any(|t| t.starts_with("UPDATE")),
            "{what} ran under the grant: {}",
            r.describe()
        );
        assert_eq!(orders_state(&gh).await, ORDERS_AT_START, "{what}");
    }
    // Another agent, same text and parameters.
    let mut o = RawPg::login(gh.port, "other-bot", &other).await;
    o.send(&[
        rawpg::parse("s", sql),
        rawpg::bind("p", "s", &[Some("5"), Some("1")], &[]),
        rawpg::execute("p", 0),
        rawpg::sync(),
    ])
    .await;
    let r = o.read_ready(1).await;
    assert!(
        refusal_of(&r).is_some_and(|(i, _)| i != id),
        "{}",
        r.describe()
    );
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);

    // The exact re-run (a new statement name, same text) runs once, and not twice.
    for round in 0..2 {
        c.send(&[
            rawpg::parse(&format!("again{round}"), sql),
            rawpg::bind("p", &format!("again{round}"), &[Some("5"), Some("1")], &[]),
            rawpg::execute("p", 0),
            rawpg::sync(),
        ])
        .await;
        let r = c.read_ready(1).await;
        if round == 0 {
            assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
        } else {
            assert!(command_tags(&r).is_empty(), "ran twice: {}", r.describe());
        }
    }
    assert_eq!(orders_state(&gh).await, "1:5,2:20,3:30");
}

/// The unnamed statement replaced behind a bound portal, a portal re-bound after its release,
/// and Bind of another statement to the released portal's name: each Execute of something not
/// approved is held again.
#[tokio::test]
async fn released_portal_does_not_carry_over_to_other_statements() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1 RETURNING id"),
        rawpg::bind("", "", &[], &[]),
        // The unnamed statement is replaced; the portal still runs the DELETE.
        rawpg::parse("", "SELECT 1"),
        rawpg::execute("", 1),
        // The unnamed portal re-bound after its release to an unapproved statement.
        rawpg::parse("", "DELETE FROM orders WHERE id = 2"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let first = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (_, shown) = show(&gh, &who.bob, &first).await;
    assert_eq!(
        shown["statement"], "DELETE FROM orders WHERE id = 1 RETURNING id",
        "{shown}"
    );
    let (status, _) = vote(&gh, &who.bob, &first, "approve", "one").await;
    assert_eq!(status, 200);
    let r = c.read_until_tag(b'N').await;
    let second = hold_id(&r).unwrap_or_else(|| panic!("re-bound portal ran: {}", r.describe()));
    assert_ne!(first, second);
    let (_, shown) = show(&gh, &who.bob, &second).await;
    assert_eq!(
        shown["statement"], "DELETE FROM orders WHERE id = 2",
        "{shown}"
    );
    let (status, _) = vote(&gh, &who.bob, &second, "deny", "no").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    // The refusal ended the batch's implicit transaction: the approved DELETE went with it.
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    let r = c.simple("SELECT 1").await;
    assert_eq!(r.cells(), ["1"], "{}", r.describe());
}

// =============================================================================================
// A prepared statement decided once, run later under other circumstances
// =============================================================================================

/// A named statement parsed while `orders` means `scratch.orders` (no approval needed), then
/// the search path changed: the server re-analyses it at Bind against `public.orders`.
#[tokio::test]
async fn prepared_statement_reanalysed_under_new_search_path_is_held() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c.simple("SET search_path = scratch").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id = 1"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    let r = c.simple("SET search_path = public").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::bind("", "s", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed without approval: {}",
        r.describe()
    );
}

/// Same with a temporary table shadowing `orders`, dropped after the Parse.
#[tokio::test]
async fn prepared_statement_reanalysed_after_temp_table_dropped_is_held() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c
        .simple("CREATE TEMP TABLE orders (id int, amount int)")
        .await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id = 1"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    let r = c.simple("DROP TABLE pg_temp.orders").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::bind("", "s", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed without approval: {}",
        r.describe()
    );
}

/// A statement parsed before a policy reload that makes it need approval: its Execute after
/// the reload must wait for approval.
#[tokio::test]
async fn statement_parsed_before_reload_is_held_after_it() {
    let gh = start_grants("").await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id = 1"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    // The harness wrote the suite's permits and then our (empty) extra text.
    let path = gh.dir.path().join("test-permits.cedar");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let before = gh.log().matches("policies reloaded").count();
    std::fs::write(&path, format!("{text}\n{POLICIES}")).unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while gh.log().matches("policies reloaded").count() == before {
        assert!(tokio::time::Instant::now() < deadline, "{}", gh.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new statement needs approval now.
    c.send(&[rawpg::query("DELETE FROM orders WHERE id = 3")])
        .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("reload not in force: {}", r.describe()));
    let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
    let _ = c.read_ready(1).await;
    // The old one too.
    c.send(&[
        rawpg::bind("", "s", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "ran without approval: {}",
        r.describe()
    );
}

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

/// The status byte of the last ReadyForQuery in `r`.
fn status_of(r: &Reply) -> Option<u8> {
    r.msgs
        .iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .and_then(|m| m.body.first().copied())
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
async fn login_keyed(gh: &Gatehouse, user: &str, token: &str) -> (RawPg, i32, i32) {
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

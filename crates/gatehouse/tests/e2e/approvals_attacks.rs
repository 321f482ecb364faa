//! Attacks on approvals (statements held in the live session until a person approves them),
//! as a non-approver person (alice, group dev), an agent, and sometimes with an approver's
//! token. Every test asserts the SECURE behaviour: a failing test is a finding.
//!
//! Goals tried: run a statement that needs approval without a valid approval; run something
//! other than what was approved; approve one's own request; make approval evidence vanish;
//! confuse the session so later messages are misattributed; crash or hang the proxy.
//!
//! Findings when written (against 9140e0f), all fixed since except writes through updatable
//! views (an analyser gap; that test is ignored):
//! - only the first-loaded approval policy of a string is asked for: a string (or one
//!   statement) that also hits a stricter approval policy (other group, @quorum 2) is released
//!   by one approval of the weaker one;
//! - the release re-decision compares only the policy id: a reload that raises the policy's
//!   quorum or changes its group is met by the old approval;
//! - an approved SQL PREPARE is run any number of times, with any arguments, by protocol
//!   Bind/Execute, without further approval;
//! - a needing-approval Query after an unsynced extended batch hangs the session forever (no
//!   answer) and leaks its upstream connection after the client leaves;
//! - a client that filled the 1 MiB hold buffer and left is not noticed: a later approval runs
//!   the statement for nobody;
//! - a failed transaction's statement is held with the long (not the in-transaction) timeout;
//! - `gatehouse approvals list` prints the requester's statement raw: terminal control
//!   sequences rewrite what the approver sees;
//! - any person's token reads every pending request (statement literals, client address);
//! - a NUL or zero-width character counts as a reason;
//! - under the documented (write-scoped) policy, COPY FROM STDIN, CREATE TABLE AS with a
//!   DELETE CTE, DO blocks and writes through an updatable view change orders unapproved;
//! - (fixed in 1e1baee) fastpath calls needing approval were held with their arguments hidden
//!   from the approver; the released statement's own event did not name its request.

use crate::harness::{db_error, upstream, Gatehouse, Options, WAIT};
use crate::raw;
use crate::session_integrity::rawpg::{self, RawPg, Reply};
use bytes::BytesMut;
use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SETUP: &str = "
CREATE TABLE orders (id int PRIMARY KEY, amount int);
INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);
CREATE TABLE ledger (id int PRIMARY KEY, amount int);
INSERT INTO ledger VALUES (1, 10), (2, 20);
CREATE TABLE notes (id int, body text);
CREATE VIEW orders_v AS SELECT * FROM orders;
SELECT lo_create(424242);
";

/// The policies of docs/approvals.md, verbatim: action-agnostic, so every statement that
/// writes the table (COPY, CREATE TABLE AS with a DELETE CTE, DO blocks) is covered.
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

async fn start_with(policies: &str, timeout_secs: u32, in_tx_secs: u32) -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: policies.into(),
        extra_toml: format!(
            "[approvals]\ntimeout_secs = {timeout_secs}\nin_transaction_timeout_secs = {in_tx_secs}\nbreak_glass_group = \"breakglass\"\n"
        ),
    })
    .await
}

async fn start(timeout_secs: u32) -> Gatehouse {
    start_with(POLICIES, timeout_secs, timeout_secs).await
}

/// The usual cast: alice (dev, requester), bob and dan (dba), carol (oncall only).
struct Cast {
    alice: String,
    bob: String,
    dan: String,
    carol: String,
}

async fn cast(gh: &Gatehouse) -> Cast {
    Cast {
        alice: gh.issue("alice", "human", &["dev"]).await,
        bob: gh.issue("bob", "human", &["dba"]).await,
        dan: gh.issue("dan", "human", &["dba"]).await,
        carol: gh.issue("carol", "human", &["oncall"]).await,
    }
}

// ---------------------------------------------------------------------------------------------
// The admin API over a hand-written HTTP/1.1 exchange
// ---------------------------------------------------------------------------------------------

/// One HTTP request to the admin listener: status (0 if no answer could be read) and body.
async fn http(
    gh: &Gatehouse,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<(&str, &[u8])>,
) -> (u16, String) {
    let port = gh.admin_port.expect("admin endpoint configured");
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to the admin listener: {e}"));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(a) = authorization {
        head.push_str(&format!("Authorization: {a}\r\n"));
    }
    let mut bytes = Vec::new();
    match body {
        Some((ct, b)) => {
            head.push_str(&format!(
                "Content-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
                b.len()
            ));
            bytes.extend_from_slice(head.as_bytes());
            bytes.extend_from_slice(b);
        }
        None => {
            head.push_str("Content-Length: 0\r\n\r\n");
            bytes.extend_from_slice(head.as_bytes());
        }
    }
    // A server refusing a huge body may close before reading all of it.
    let _ = s.write_all(&bytes).await;
    let mut resp = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        loop {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => resp.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn json_of(body: &str) -> Value {
    let start = body.find(['{', '[']).unwrap_or(0);
    let end = body.rfind(['}', ']']).map_or(body.len(), |e| e + 1);
    serde_json::from_str(body.get(start..end).unwrap_or("")).unwrap_or(Value::Null)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// POST /api/approvals/ID/{approve,deny} with a JSON reason.
async fn vote(gh: &Gatehouse, token: &str, id: &str, verb: &str, reason: &str) -> (u16, Value) {
    let body = serde_json::json!({ "reason": reason }).to_string();
    let (status, text) = http(
        gh,
        "POST",
        &format!("/api/approvals/{id}/{verb}"),
        Some(&bearer(token)),
        Some(("application/json", body.as_bytes())),
    )
    .await;
    (status, json_of(&text))
}

async fn show(gh: &Gatehouse, token: &str, id: &str) -> (u16, Value) {
    let (status, text) = http(
        gh,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(&bearer(token)),
        None,
    )
    .await;
    (status, json_of(&text))
}

async fn pending(gh: &Gatehouse, token: &str) -> Vec<Value> {
    let (status, text) = http(gh, "GET", "/api/approvals", Some(&bearer(token)), None).await;
    assert_eq!(status, 200, "{text}");
    json_of(&text).as_array().cloned().unwrap_or_default()
}

/// Waits for a pending request whose statement is `sql` and returns it.
async fn wait_pending(gh: &Gatehouse, token: &str, sql: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = pending(gh, token).await;
        if let Some(r) = p.iter().find(|r| r["statement"] == sql) {
            return r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no pending request for {sql:?}: {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn id_of(r: &Value) -> String {
    r["id"].as_str().unwrap_or_default().to_owned()
}

/// Waits until request `id` is in `state`.
async fn wait_state(gh: &Gatehouse, token: &str, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, r) = show(gh, token, id).await;
        if r["state"] == state {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "request {id} never became {state}: {r}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Looking at the database directly, and at raw replies
// ---------------------------------------------------------------------------------------------

async fn direct_one(gh: &Gatehouse, sql: &str) -> String {
    let c = upstream().connect(&gh.db.name).await;
    let rows = c
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or("").to_owned()),
            _ => None,
        })
        .unwrap_or_default()
}

async fn count(gh: &Gatehouse, table: &str) -> i64 {
    direct_one(gh, &format!("SELECT count(*) FROM {table}"))
        .await
        .parse()
        .unwrap_or(-1)
}

/// Every row of orders, as one string (to see that nothing changed).
async fn orders_state(gh: &Gatehouse) -> String {
    direct_one(
        gh,
        "SELECT coalesce(string_agg(id || ':' || amount, ',' ORDER BY id), '') FROM orders",
    )
    .await
}

const ORDERS_AT_START: &str = "1:10,2:20,3:30";

/// Upstream backends serving `identity` through the proxy.
async fn upstream_sessions(gh: &Gatehouse, identity: &str) -> i64 {
    direct_one(
        gh,
        &format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND application_name LIKE 'gatehouse:{identity}%'"
        ),
    )
    .await
    .parse()
    .unwrap_or(-1)
}

/// The request id of the hold notice in `r`, if one arrived.
fn hold_id(r: &Reply) -> Option<String> {
    r.msgs
        .iter()
        .filter(|m| m.tag == b'N')
        .find(|m| {
            m.field(b'M')
                .is_some_and(|t| t.contains("held for approval"))
        })
        .and_then(|m| m.field(b'D'))
        .and_then(|d| d.strip_prefix("request: ").map(str::to_owned))
}

fn hold_message(r: &Reply) -> Option<String> {
    r.msgs
        .iter()
        .filter(|m| m.tag == b'N')
        .find_map(|m| m.field(b'M').filter(|t| t.contains("held for approval")))
}

/// Sends `sql` on a raw session and reads until its hold notice; the request id.
async fn raw_hold(c: &mut RawPg, sql: &str) -> String {
    c.send(&[rawpg::query(sql)]).await;
    let r = c.read_until_tag(b'N').await;
    hold_id(&r).unwrap_or_else(|| panic!("{sql:?} was not held: {}", r.describe()))
}

fn command_tags(r: &Reply) -> Vec<String> {
    r.msgs
        .iter()
        .filter(|m| m.tag == b'C')
        .map(|m| String::from_utf8_lossy(m.body.strip_suffix(&[0]).unwrap_or(&m.body)).into_owned())
        .collect()
}

/// Rewrites the policy file the harness wrote (suite permits + `old` policies) with `new`
/// in place of `old`, and waits for the proxy to load it.
async fn reload_policies(gh: &Gatehouse, old: &str, new: &str) {
    let path = gh.dir.path().join("test-permits.cedar");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        text.contains(old),
        "policy file does not hold the old policies"
    );
    let before = gh.log().matches("policies reloaded").count();
    std::fs::write(&path, text.replace(old, new)).unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = gh.log();
        if log.matches("policies reloaded").count() > before {
            return;
        }
        assert!(
            !log.contains("policy reload failed"),
            "the new policies did not load:\n{log}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "policies were not reloaded:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Ends a request that may still be pending (so the waiting client returns).
async fn deny_if_pending(gh: &Gatehouse, token: &str, id: &str) {
    let (_, r) = show(gh, token, id).await;
    if r["state"] == "pending" {
        let _ = vote(gh, token, id, "deny", "test cleanup").await;
    }
}

// =============================================================================================
// Getting a statement to run without the approval its policies require
// =============================================================================================

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

/// CREATE TABLE AS with a data-modifying CTE deletes from orders; classified as DDL it slips
/// past the write-scoped approval forbid.
#[tokio::test]
async fn ctas_with_a_delete_cte_needs_approval() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let c = gh.connect("alice", &who.alice).await;
    let mut task = tokio::spawn(async move {
        c.batch_execute(
            "CREATE TABLE grabbed AS WITH d AS (DELETE FROM orders WHERE id = 1 RETURNING *) SELECT * FROM d",
        )
        .await
    });
    let outcome = tokio::time::timeout(Duration::from_secs(3), &mut task).await;
    let state = orders_state(&gh).await;
    for r in pending(&gh, &who.bob).await {
        deny_if_pending(&gh, &who.bob, &id_of(&r)).await;
    }
    task.abort();
    assert_eq!(
        state, ORDERS_AT_START,
        "CREATE TABLE AS WITH (DELETE FROM orders …) ran without approval: {outcome:?}"
    );
}

/// A DO block whose body deletes from orders (the analyser sees the write).
#[tokio::test]
async fn do_block_writing_a_guarded_table_needs_approval() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let c = gh.connect("alice", &who.alice).await;
    let mut task = tokio::spawn(async move {
        c.batch_execute("DO $$ BEGIN DELETE FROM orders WHERE id = 2; END $$")
            .await
    });
    let outcome = tokio::time::timeout(Duration::from_secs(3), &mut task).await;
    let state = orders_state(&gh).await;
    for r in pending(&gh, &who.bob).await {
        deny_if_pending(&gh, &who.bob, &id_of(&r)).await;
    }
    task.abort();
    assert_eq!(
        state, ORDERS_AT_START,
        "a DO block deleted from orders without approval: {outcome:?}"
    );
}

/// An auto-updatable view over orders (created by the administrator): deleting through it
/// deletes from orders. Known gap: statement facts name the view (`public.orders_v`), not the
/// base table it writes, so policies on the base table do not see it (the analyser does not
/// yet resolve writes through views to their base tables).
#[tokio::test]
#[ignore = "known gap: writes through updatable views are not resolved to their base tables"]
async fn writes_through_an_updatable_view_need_approval() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let c = gh.connect("alice", &who.alice).await;
    let mut task =
        tokio::spawn(async move { c.batch_execute("DELETE FROM orders_v WHERE id = 3").await });
    let outcome = tokio::time::timeout(Duration::from_secs(3), &mut task).await;
    let state = orders_state(&gh).await;
    for r in pending(&gh, &who.bob).await {
        deny_if_pending(&gh, &who.bob, &id_of(&r)).await;
    }
    task.abort();
    assert_eq!(
        state, ORDERS_AT_START,
        "DELETE through the view orders_v removed a row of orders without approval: {outcome:?}"
    );
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

/// The extended protocol: a Parse needing approval is refused (not held, not run), for a raw
/// client and for tokio-postgres' prepared statements; no request is left pending.
#[tokio::test]
async fn extended_protocol_needing_approval_is_refused() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("s1", "DELETE FROM orders WHERE id = 2"),
        rawpg::sync(),
        rawpg::bind("", "s1", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(r.complete(), "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert!(hold_id(&r).is_none(), "{}", r.describe());
    let pg = gh.connect("alice", &who.alice).await;
    let err = tokio::time::timeout(
        WAIT,
        pg.execute("DELETE FROM orders WHERE id = $1", &[&1i32]),
    )
    .await
    .unwrap_or_else(|_| panic!("a prepared DELETE hangs"))
    .expect_err("refused");
    assert_eq!(db_error(&err).0, "42501");
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    assert!(pending(&gh, &who.bob).await.is_empty());
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

async fn cancel_request(port: u16, pid: i32, secret: i32) {
    let mut s = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut b = Vec::with_capacity(16);
    b.extend_from_slice(&16i32.to_be_bytes());
    b.extend_from_slice(&80_877_102i32.to_be_bytes());
    b.extend_from_slice(&pid.to_be_bytes());
    b.extend_from_slice(&secret.to_be_bytes());
    s.write_all(&b).await.unwrap_or_else(|e| panic!("{e}"));
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut sink)).await;
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

// =============================================================================================
// Deciding
// =============================================================================================

/// The requester cannot approve through another token of the same name (with other groups,
/// or in the break-glass group); a token of the other kind for the same name cannot even be
/// issued; nor can the namesake of an agent requester approve the agent's request.
#[tokio::test]
async fn no_self_approval_through_another_token_or_kind() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let alice_dba = gh.issue("alice", "human", &["dba"]).await;
    let alice_glass = gh.issue("alice", "human", &["breakglass"]).await;
    let out = gh
        .cli(&[
            "token",
            "issue",
            "--identity",
            "alice",
            "--kind",
            "agent",
            "--group",
            "dba",
        ])
        .await;
    assert_ne!(out.code, 0, "an agent token for the person alice: {out:?}");
    let bot = gh.issue("deploy-bot", "agent", &["dev"]).await;
    let out = gh
        .cli(&[
            "token",
            "issue",
            "--identity",
            "deploy-bot",
            "--kind",
            "human",
            "--group",
            "dba",
        ])
        .await;
    assert_ne!(
        out.code, 0,
        "a person's token for the agent deploy-bot: {out:?}"
    );

    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    for (what, t) in [
        ("alice's dba token", &alice_dba),
        ("alice's break-glass token", &alice_glass),
    ] {
        let (status, body) = vote(&gh, t, &id, "approve", "mine").await;
        assert_eq!(status, 403, "{what}: {body}");
    }
    let (_, r) = show(&gh, &who.bob, &id).await;
    assert_eq!(r["state"], "pending", "{r}");
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = c.read_ready(1).await;

    // An agent's request: the agent itself cannot decide (the API refuses agents).
    let mut b = RawPg::login(gh.port, "deploy-bot", &bot).await;
    let id = raw_hold(&mut b, "DELETE FROM orders WHERE id = 2").await;
    let (status, body) = vote(&gh, &bot, &id, "approve", "mine").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = b.read_ready(1).await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// "Every decision carries a reason": a reason made only of a NUL, a zero-width space, a
/// byte-order mark or control characters is no reason (it shows as nothing in the audit
/// trail and in the client's error).
#[tokio::test]
async fn invisible_reasons_are_not_reasons() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    let mut accepted = Vec::new();
    for reason in [
        "\u{0}",
        "\u{200b}",
        "\u{feff}",
        "\u{7}\u{8}",
        "\u{0}\u{0}\u{0}",
    ] {
        let (status, body) = vote(&gh, &who.bob, &id, "deny", reason).await;
        if status == 200 {
            accepted.push(format!("{reason:?}: {}", body["votes"]));
            break;
        }
    }
    deny_if_pending(&gh, &who.bob, &id).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert!(accepted.is_empty(), "accepted as a reason: {accepted:?}");
}

/// Votes after expiry, after a denial, after a withdrawal, and a second vote by the same
/// person are refused (409), and change nothing.
#[tokio::test]
async fn late_and_repeated_votes_are_refused() {
    let gh = start(3).await;
    let who = cast(&gh).await;

    // Expired.
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    let (status, body) = vote(&gh, &who.bob, &id, "approve", "late").await;
    assert_eq!(status, 409, "{body}");
    // The same text again is a new request; the expired approval attempt is not carried over.
    let id2 = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    assert_ne!(id, id2);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());

    // Quorum of two: the same person twice is one vote; then denied, late approvals fail.
    let id3 = raw_hold(&mut c, "DELETE FROM ledger WHERE id = 1").await;
    assert_eq!(vote(&gh, &who.bob, &id3, "approve", "one").await.0, 200);
    let (status, body) = vote(&gh, &who.bob, &id3, "approve", "two").await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = vote(&gh, &who.bob, &id3, "deny", "changed my mind").await;
    assert_eq!(
        status, 409,
        "a second vote (deny) by the same person: {body}"
    );
    let (status, body) = vote(&gh, &who.dan, &id3, "deny", "no").await;
    assert_eq!(status, 200, "{body}");
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    let (status, _) = vote(&gh, &who.dan, &id3, "approve", "late").await;
    assert_eq!(status, 409);
    let (status, _) = vote(&gh, &who.bob, &id3, "approve", "late").await;
    assert_eq!(status, 409);
    assert_eq!(count(&gh, "ledger").await, 2);
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// Approval and CancelRequest racing: whichever wins, the client's answer and the database
/// agree (ran ⇔ success), and the audit chain verifies.
#[tokio::test]
async fn approve_racing_cancel_is_consistent() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut ran = 0;
    for round in 0..6 {
        let (s, buf, seen) = raw::login_with(
            gh.port,
            raw::startup(&[("user", "alice"), ("database", "app")]),
            &who.alice,
        )
        .await;
        let k = seen
            .iter()
            .find(|m| m.tag == b'K')
            .cloned()
            .unwrap_or_else(|| panic!("no key"));
        let pid = i32::from_be_bytes([k.body[0], k.body[1], k.body[2], k.body[3]]);
        let secret = i32::from_be_bytes([k.body[4], k.body[5], k.body[6], k.body[7]]);
        let mut c = RawPg::from_login(s, buf);
        let id = raw_hold(&mut c, "UPDATE orders SET amount = amount + 1 WHERE id = 3").await;
        let delay = Duration::from_millis(round * 3);
        let port = gh.port;
        let ((status, _), ()) = tokio::join!(vote(&gh, &who.bob, &id, "approve", "race"), async {
            tokio::time::sleep(delay).await;
            cancel_request(port, pid, secret).await;
        });
        let r = c.read_ready(1).await;
        assert!(r.complete(), "{}", r.describe());
        let amount: i64 = direct_one(&gh, "SELECT amount FROM orders WHERE id = 3")
            .await
            .parse()
            .unwrap_or(-1);
        let ok = r.error().is_none();
        if ok {
            ran += 1;
        } else {
            // A cancel that arrived after the release may cancel the running UPDATE (57014
            // from the server, rolled back): either way the database agrees with the client.
            assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
        }
        assert_eq!(
            amount,
            30 + ran,
            "round {round}: client ok={ok}, vote {status}, database amount {amount}: {}",
            r.describe()
        );
        c.vanish();
    }
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

/// One abuse of the API: what, method, path, Authorization, body (content type, bytes), the
/// statuses acceptable.
type ApiCase<'a> = (
    &'a str,
    &'a str,
    String,
    Option<String>,
    Option<(&'a str, &'a [u8])>,
    &'a [u16],
);

/// The approvals API against bad callers and bad bodies: nothing approves, nothing crashes.
#[tokio::test]
async fn approvals_api_rejects_bad_callers_and_bodies() {
    let mut gh = start(60).await;
    let who = cast(&gh).await;
    let agent = gh.issue("deploy-bot", "agent", &["dba"]).await;
    let expiring = gh.issue_ttl("erin", "human", &["dba"], "1s").await;
    let revoked = gh.issue("frank", "human", &["dba"]).await;
    let mallory = gh.issue("mallory", "human", &["dev"]).await;
    let list = gh.cli(&["token", "list", "--json"]).await;
    let frank_id = list
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|t| t["identity"] == "frank")
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(gh.cli(&["token", "revoke", &frank_id]).await.code, 0);

    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // erin's token expires

    let approve = format!("/api/approvals/{id}/approve");
    let good = br#"{"reason":"ok"}"#.as_slice();
    let json = |b: &'static [u8]| Some(("application/json", b));
    let mut failures = Vec::new();
    let bob = Some(bearer(&who.bob));
    let post = "POST";
    let cases: Vec<ApiCase> = vec![
        ("no token", post, approve.clone(), None, json(good), &[401]),
        (
            "lower-case scheme",
            post,
            approve.clone(),
            Some(format!("bearer {}", who.bob)),
            json(good),
            &[401],
        ),
        (
            "basic scheme",
            post,
            approve.clone(),
            Some(format!("Basic {}", who.bob)),
            json(good),
            &[401],
        ),
        (
            "garbage token",
            post,
            approve.clone(),
            Some(bearer("gh_nope")),
            json(good),
            &[401],
        ),
        (
            "token with a suffix",
            post,
            approve.clone(),
            Some(format!("Bearer {}x", who.bob)),
            json(good),
            &[401],
        ),
        (
            "token with a NUL",
            post,
            approve.clone(),
            Some(format!("Bearer {}\u{0}x", who.bob)),
            json(good),
            &[400, 401],
        ),
        (
            "huge token",
            post,
            approve.clone(),
            Some(bearer(&"a".repeat(100_000))),
            json(good),
            &[400, 401, 413, 431, 0],
        ),
        (
            "agent",
            post,
            approve.clone(),
            Some(bearer(&agent)),
            json(good),
            &[403],
        ),
        (
            "expired",
            post,
            approve.clone(),
            Some(bearer(&expiring)),
            json(good),
            &[401],
        ),
        (
            "revoked",
            post,
            approve.clone(),
            Some(bearer(&revoked)),
            json(good),
            &[401],
        ),
        (
            "the requester",
            post,
            approve.clone(),
            Some(bearer(&who.alice)),
            json(good),
            &[403],
        ),
        (
            "not an approver",
            post,
            approve.clone(),
            Some(bearer(&mallory)),
            json(good),
            &[403],
        ),
        (
            "unknown id",
            post,
            "/api/approvals/ap_0000000000000000/approve".into(),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "upper-case id",
            post,
            format!("/api/approvals/{}/approve", id.to_uppercase()),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "id with a space",
            post,
            format!("/api/approvals/%20{id}/approve"),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "traversal",
            post,
            format!("/api/approvals/..%2F{id}/approve"),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "traversal 2",
            post,
            format!("/api/approvals/{id}%2F..%2F/approve"),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "dot segments",
            post,
            format!("/api/approvals/x/../{id}/approve"),
            bob.clone(),
            json(good),
            &[404, 400],
        ),
        (
            "id with NUL",
            post,
            format!("/api/approvals/{id}%00/approve"),
            bob.clone(),
            json(good),
            &[404, 400],
        ),
        (
            "GET approve",
            "GET",
            approve.clone(),
            bob.clone(),
            None,
            &[405],
        ),
        (
            "PUT approve",
            "PUT",
            approve.clone(),
            bob.clone(),
            json(good),
            &[405],
        ),
        (
            "no body",
            post,
            approve.clone(),
            bob.clone(),
            None,
            &[400, 415, 422],
        ),
        (
            "not JSON",
            post,
            approve.clone(),
            bob.clone(),
            json(b"reason=ok"),
            &[400, 415, 422],
        ),
        (
            "text/plain",
            post,
            approve.clone(),
            bob.clone(),
            Some(("text/plain", good)),
            &[400, 415, 422],
        ),
        (
            "reason a number",
            post,
            approve.clone(),
            bob.clone(),
            json(br#"{"reason":5}"#),
            &[400, 415, 422],
        ),
        (
            "blank reason",
            post,
            approve.clone(),
            bob.clone(),
            json(br#"{"reason":" \t\n"}"#),
            &[400],
        ),
        (
            "unicode blank reason",
            post,
            approve.clone(),
            bob.clone(),
            json("{\"reason\":\"\u{3000}\u{00a0}\"}".as_bytes()),
            &[400],
        ),
    ];
    for (what, method, path, auth, body, want) in cases {
        let (status, text) = http(&gh, method, &path, auth.as_deref(), body).await;
        if !want.contains(&status) {
            failures.push(format!("{what}: {status} {text}"));
        }
        let (_, r) = show(&gh, &who.dan, &id).await;
        if r["state"] != "pending" || r["votes"].as_array().is_some_and(|v| !v.is_empty()) {
            failures.push(format!("{what} changed the request: {r}"));
            break;
        }
    }
    // A body far over any sane size.
    let mut huge = br#"{"reason":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend_from_slice(br#""}"#);
    let (status, _) = http(
        &gh,
        "POST",
        &approve,
        Some(&bearer(&who.bob)),
        Some(("application/json", &huge)),
    )
    .await;
    if status == 200 {
        failures.push("a 5 MiB body was accepted".into());
    }
    let (_, r) = show(&gh, &who.dan, &id).await;
    if r["state"] != "pending" {
        failures.push(format!("the huge body decided the request: {r}"));
    }
    // Listing without a token or with an agent's.
    for (what, auth, want) in [
        ("list without token", None, 401),
        ("list as agent", Some(bearer(&agent)), 403),
        ("list expired", Some(bearer(&expiring)), 401),
    ] {
        let (status, text) = http(&gh, "GET", "/api/approvals", auth.as_deref(), None).await;
        if status != want {
            failures.push(format!("{what}: {status} {text}"));
        }
    }
    assert!(gh.is_running(), "the proxy died");
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "done").await.0, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
}

/// Pending requests carry the statement text with its literals, the client address and the
/// application name. A person who may not decide a request (not in its approver groups, not
/// break-glass) must not be able to read it through the API.
#[tokio::test]
async fn non_approvers_cannot_read_pending_requests() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mallory = gh.issue("mallory", "human", &["dev"]).await;
    let sql = "UPDATE orders SET amount = 271828 WHERE id = 1";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    let (_, listed) = http(&gh, "GET", "/api/approvals", Some(&bearer(&mallory)), None).await;
    let (_, shown) = http(
        &gh,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(&bearer(&mallory)),
        None,
    )
    .await;
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = c.read_ready(1).await;
    assert!(
        !listed.contains("271828") && !shown.contains("271828"),
        "mallory (group dev, may not decide) read alice's pending statement:\nlist: {listed}\nshow: {shown}"
    );
}

// =============================================================================================
// Evidence
// =============================================================================================

/// The statement event of a released statement names the request it ran under (as the
/// model's `approval` field documents), so the audit trail ties each execution to its
/// approval; the approval steps come in order and the chain verifies.
#[tokio::test]
async fn released_statement_event_names_its_request() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let sql = "DELETE FROM orders WHERE id = 2";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    assert_eq!(vote(&gh, &who.bob, &id, "approve", "ticket 7").await.0, 200);
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["DELETE 1"], "{}", r.describe());
    let events = gh
        .wait_events("the statement event", |ev| {
            ev.iter()
                .any(|e| e["kind"] == "statement" && e["statement"] == sql)
        })
        .await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "approval" && e["approval"]["request"] == id.as_str())
        .filter_map(|e| e["approval"]["step"].as_str())
        .collect();
    assert_eq!(steps, ["requested", "approve", "released"], "{events:?}");
    let stmt = events
        .iter()
        .find(|e| e["kind"] == "statement" && e["statement"] == sql)
        .cloned()
        .unwrap_or_default();
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        stmt["approval"]["request"],
        id.as_str(),
        "the released statement's own event does not name its approval request (decision \
         recorded: {}): {stmt}",
        stmt["decision"]
    );
}

/// A pending request is shown to approvers by `gatehouse approvals list` as plain text. The
/// requester controls the statement text: terminal control characters in it (inside an SQL
/// comment) must not reach the approver's terminal, where they can overwrite the statement
/// that will run with a harmless-looking one.
#[tokio::test]
async fn approvals_list_does_not_pass_terminal_controls_through() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let sql = "DELETE FROM orders WHERE id > 0 /*\r\x1b[2K    UPDATE orders SET amount = 11 WHERE id = 1;\x1b[8m*/";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    let out = gh.cli(&["approvals", "list", "--token", &who.bob]).await;
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = c.read_ready(1).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stdout.contains('\x1b') && !out.stdout.contains('\r'),
        "the approver's terminal receives raw control characters from the requester's \
         statement: {:?}",
        out.stdout
    );
}

const MASKED_SETUP: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text);
INSERT INTO users VALUES (1, 'ada.secret@example.com');
";

const MASKED_TOML: &str = r#"
[[sensitive]]
target = "app"
columns = ["public.users.email"]
tags = ["pii"]
mask = "email"
"#;

/// Masking around a hold: the held string's own SELECT (planned again at release), a
/// temporary view it creates, and reads pipelined behind it are all masked.
#[tokio::test]
async fn masking_holds_across_a_released_string_and_pipelined_reads() {
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{MASKED_SETUP}"),
        policies: POLICIES.into(),
        extra_toml: format!("[approvals]\ntimeout_secs = 30\n{MASKED_TOML}"),
    })
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c
        .simple("CREATE TEMP VIEW v AS SELECT email AS e FROM users")
        .await;
    assert!(r.error().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::query(
            "UPDATE orders SET amount = amount WHERE id = 1; SELECT email FROM users; SELECT e FROM v",
        ),
        rawpg::query("SELECT e FROM v"),
        rawpg::query("SELECT email FROM users"),
        rawpg::query("SET search_path = pg_temp, public"),
        rawpg::query("SELECT * FROM v"),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("{}", r.describe()));
    assert_eq!(vote(&gh, &who.bob, &id, "approve", "ok").await.0, 200);
    let r = c.read_ready(5).await;
    assert!(r.complete(), "{}", r.describe());
    let text = String::from_utf8_lossy(&r.bytes).into_owned();
    assert!(
        !text.contains("ada.secret"),
        "a clear value after the hold: {}",
        r.describe()
    );
    assert!(
        r.error().is_none() || r.sqlstate().as_deref() == Some("42501"),
        "{}",
        r.describe()
    );
}

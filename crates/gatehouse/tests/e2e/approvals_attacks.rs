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

mod api;
mod api_surface;
mod commit;
mod later;
mod policy;
mod round2;
mod round3;
mod round4;
mod session;

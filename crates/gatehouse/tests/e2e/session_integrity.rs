//! Session integrity (issue 7): enforcement that holds across a whole session, written as an
//! attacker would. A statement split over several messages (cursors, SQL PREPARE bound by the
//! protocol, COPY IN followed by more work), session state the server undid (search_path,
//! temporary tables), relations the proxy has not seen (partitions, inheritance children,
//! views created directly on the database) must never bring a clear sensitive value to the
//! client; ordinary work by a principal who may not unmask must not be refused; and a
//! statement whose outcome never arrived is still audited.
//!
//! Every check searches **every byte** the client received (raw protocol replies, or a byte
//! tap in front of the proxy for real clients) for recognisable fake secrets, and pairs it
//! with a non-sensitive equivalent that must still return the right values. The control test
//! at the bottom runs the same multi-message flows directly against PostgreSQL and shows the
//! secrets do appear there, so the detectors bite.
//!
//! Each test starts its own proxy over its own database (as the harness does) with the
//! sensitive columns below and the built-in policy pack on.

// The raw client lives next to the other e2e helpers; it is declared here so that this suite
// is registered with a single `mod` line in main.rs.
#[path = "rawpg.rs"]
pub mod rawpg;

mod copy_in;
mod cursors;
mod exfiltration;
mod fuzz;
mod interleave;
mod ordinary_work;
mod prepared;
mod redteam;
mod redteam2;
mod relations;
mod reload;
mod search_path;
mod temp_objects;
mod vanished;

use crate::harness::{upstream, Gatehouse, Options};
use rawpg::{RawPg, Reply};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Created directly on the test database before the proxy starts. `kids` inherits `users`
/// (so `users` shows 3 rows), `people` is partitioned, `shadow.users` holds DIFFERENT values
/// in a schema with nothing sensitive, `harmless` is a view without sensitive columns.
pub const SETUP: &str = "
CREATE TABLE users (id int PRIMARY KEY, name text, email text, ssn text, age int);
INSERT INTO users VALUES
  (1, 'Ada', 'ada.secret@example.com', '123-45-6789', 36),
  (2, 'Alan', 'alan.secret@example.org', '234-56-7890', 41);
CREATE TABLE orders (id int PRIMARY KEY, user_id int, total int);
INSERT INTO orders VALUES (10, 1, 500), (11, 2, 700);
CREATE TABLE pets (id int, name text);
INSERT INTO pets VALUES (1, 'Rex');
CREATE VIEW harmless AS SELECT id, name FROM users;
CREATE SCHEMA shadow;
CREATE TABLE shadow.users (id int, name text, email text, ssn text);
INSERT INTO shadow.users VALUES (1, 'Shade', 'shade.clear@example.net', '999-00-1111');
CREATE TABLE people (id int, ssn text) PARTITION BY RANGE (id);
CREATE TABLE people_1 PARTITION OF people FOR VALUES FROM (0) TO (100);
INSERT INTO people VALUES (1, '345-67-8901');
CREATE TABLE kids () INHERITS (users);
INSERT INTO kids VALUES (3, 'Kid', 'kid.secret@example.com', '456-78-9012', 9);
";

/// Sensitivity is configured on the parents only: `public.users` and `public.people`.
pub const SENSITIVE: &str = r#"
[[sensitive]]
target = "app"
columns = ["public.users.email"]
tags = ["pii", "contact"]
mask = "email"
[[sensitive]]
target = "app"
columns = ["public.users.ssn"]
tags = ["pii", "ssn"]
mask = "last4"
[[sensitive]]
target = "app"
columns = ["public.people.ssn"]
tags = ["pii", "ssn"]
mask = "last4"
"#;

/// Fragments of clear sensitive values (lower case; searched case-insensitively), including
/// rows added directly on the database by some tests and digit-only spellings of the SSNs.
pub const SECRETS: [&str; 15] = [
    "ada.secret",
    "alan.secret",
    "kid.secret",
    "grand.secret",
    "123-45-6789",
    "234-56-7890",
    "345-67-8901",
    "456-78-9012",
    "567-89-0123",
    "678-90-1234",
    "123456789",
    "234567890",
    "345678901",
    "456789012",
    "567890123",
];

/// A proxy with the suite's tables and sensitive columns, and a token for `alice`, a
/// principal no policy lets unmask anything.
pub async fn start() -> (Gatehouse, String) {
    let gh = Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    (gh, token)
}

/// A raw session as `alice`.
pub async fn raw(gh: &Gatehouse, token: &str) -> RawPg {
    RawPg::login(gh.port, "alice", token).await
}

/// The secrets found in `bytes` (case-insensitive).
pub fn leaked(bytes: &[u8]) -> Vec<&'static str> {
    let text = String::from_utf8_lossy(bytes).to_lowercase();
    SECRETS
        .iter()
        .copied()
        .filter(|s| text.contains(s))
        .collect()
}

/// Fails if any secret occurs anywhere in `bytes` (the message shows the bytes around the
/// first one).
pub fn assert_no_secrets(what: &str, bytes: &[u8]) {
    let found = leaked(bytes);
    if let Some(first) = found.first() {
        let text = String::from_utf8_lossy(bytes).to_lowercase();
        let at = text.find(first).unwrap_or(0);
        let window: String = text
            .chars()
            .skip(text[..at].chars().count().saturating_sub(120))
            .take(240)
            .collect();
        panic!(
            "{what}: clear sensitive values reached the client: {found:?}, e.g. in …{window:?}…"
        );
    }
}

/// Runs one case of a test with several, turning its failure into a message so that every
/// failing case is reported (see [`assert_all_passed`]), not only the first.
pub async fn attempt(what: &str, case: impl std::future::Future<Output = ()>) -> Option<String> {
    use futures_util::FutureExt;
    let outcome = std::panic::AssertUnwindSafe(case).catch_unwind().await;
    outcome
        .err()
        .map(|p| format!("[{what}] {}", panic_text(&*p)))
}

/// [`attempt`] for a check that needs no waiting.
pub fn check(what: &str, case: impl FnOnce()) -> Option<String> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(case));
    outcome
        .err()
        .map(|p| format!("[{what}] {}", panic_text(&*p)))
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

/// Fails with every collected case failure.
pub fn assert_all_passed(failures: Vec<Option<String>>) {
    let failed: Vec<String> = failures.into_iter().flatten().collect();
    assert!(
        failed.is_empty(),
        "{} case(s) failed:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

/// A reply that carries no secret and is either refused with an error or complete with
/// `rows` rows (masked). A session closed without an error is neither.
pub fn assert_masked_or_refused(what: &str, r: &Reply, rows: usize) {
    assert_no_secrets(what, &r.bytes);
    if r.error().is_some() {
        return;
    }
    assert!(r.complete(), "{what}: no error, but {}", r.describe());
    assert_eq!(r.rows().len(), rows, "{what}: {}", r.describe());
}

/// A reply that carries no secret and succeeded with `rows` rows: the statement is as
/// legitimate as the same SELECT sent directly, so it is masked, not refused.
pub fn assert_masked(what: &str, r: &Reply, rows: usize) {
    assert_no_secrets(what, &r.bytes);
    assert!(
        r.complete() && r.error().is_none(),
        "{what}: must run masked, not be refused: {}",
        r.describe()
    );
    assert_eq!(r.rows().len(), rows, "{what}: {}", r.describe());
}

/// A reply that must have succeeded (no error, complete).
pub fn assert_ok(what: &str, r: &Reply) {
    assert!(
        r.complete() && r.error().is_none(),
        "{what}: expected success, got {}",
        r.describe()
    );
}

/// A reply that must be a Gatehouse refusal (SQLSTATE 42501).
pub fn assert_refused(what: &str, r: &Reply) {
    assert_eq!(
        r.sqlstate().as_deref(),
        Some("42501"),
        "{what}: expected a refusal, got {}",
        r.describe()
    );
}

/// Sends each of `sqls` as its own simple Query; every reply must carry no secret.
pub async fn run_all(c: &mut RawPg, sqls: &[&str]) -> Vec<Reply> {
    let mut out = Vec::new();
    for sql in sqls {
        let r = c.simple(sql).await;
        assert_no_secrets(sql, &r.bytes);
        out.push(r);
    }
    out
}

/// A direct (not proxied) connection to the test database.
pub async fn direct(gh: &Gatehouse) -> tokio_postgres::Client {
    upstream().connect(&gh.db.name).await
}

/// Polls the audit trail until `done` holds or `wait` passes; returns the last events read.
pub async fn events_until(
    gh: &Gatehouse,
    wait: Duration,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    loop {
        let events = gh.audit_events().await;
        if done(&events) || Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

/// Statement events whose text contains `needle`.
pub fn statements_containing<'a>(events: &'a [Value], needle: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["kind"] == "statement")
        .filter(|e| e["statement"].as_str().is_some_and(|s| s.contains(needle)))
        .collect()
}

/// The same multi-message flows, run directly against PostgreSQL, DO return the clear values:
/// the detectors above recognise a leak in these replies.
#[tokio::test]
async fn control_the_same_flows_leak_without_the_proxy() {
    let (gh, _token) = start().await;
    let up = upstream();
    let mut c = RawPg::login_direct(
        &up.host,
        up.port,
        &up.user,
        up.password.as_deref().unwrap_or(""),
        &gh.db.name,
    )
    .await;
    assert_ok("BEGIN", &c.simple("BEGIN").await);
    assert_ok(
        "DECLARE",
        &c.simple("DECLARE c CURSOR FOR SELECT lower(ssn), email FROM users")
            .await,
    );
    let fetch = c.simple("FETCH ALL FROM c").await;
    assert!(!leaked(&fetch.bytes).is_empty(), "{}", fetch.describe());
    assert_ok("CLOSE", &c.simple("CLOSE c").await);
    // A cursor is a portal: Execute by its name, no Bind.
    assert_ok(
        "DECLARE",
        &c.simple("DECLARE d CURSOR FOR SELECT email FROM users")
            .await,
    );
    c.send(&[rawpg::execute("d", 0), rawpg::sync()]).await;
    let by_name = c.read_ready(1).await;
    assert_ok("Execute d", &by_name);
    assert!(!leaked(&by_name.bytes).is_empty(), "{}", by_name.describe());
    assert_ok("COMMIT", &c.simple("COMMIT").await);
    assert_ok(
        "PREPARE",
        &c.simple("PREPARE p AS SELECT email, ssn FROM users").await,
    );
    c.send(&[
        rawpg::bind("", "p", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let bound = c.read_ready(1).await;
    assert_ok("Bind of p", &bound);
    assert!(!leaked(&bound.bytes).is_empty(), "{}", bound.describe());
    let part = c.simple("SELECT ssn FROM people_1").await;
    assert!(!leaked(&part.bytes).is_empty(), "{}", part.describe());
}

/// Fails unless public.orders still exists with its two rows; if it was dropped, puts it
/// back first so that the next case of the same test starts from the same state.
pub async fn assert_orders_intact(gh: &Gatehouse, what: &str) {
    let db = direct(gh).await;
    let row = db
        .query_one("SELECT to_regclass('public.orders') IS NOT NULL", &[])
        .await
        .unwrap();
    if !row.get::<_, bool>(0) {
        db.batch_execute(
            "CREATE TABLE public.orders (id int PRIMARY KEY, user_id int, total int);
             INSERT INTO public.orders VALUES (10, 1, 500), (11, 2, 700);",
        )
        .await
        .unwrap();
        panic!("{what}: public.orders was dropped");
    }
    let n: i64 = db
        .query_one("SELECT count(*) FROM public.orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "{what}: public.orders lost rows");
}

//! Attacks on the facts cache's lexer-free quick key (`sql::quick_key`), which all sessions of a
//! proxy share: one statement primes an entry, a second one that differs only "inside a
//! constant" is answered with the first one's facts. Both tests assert the secure behaviour
//! (see `crates/sql/src/cache/quick_key_attacks.rs` for the unit-level pairs).

use crate::harness::{upstream, Gatehouse, Options};
use tokio_postgres::SimpleQueryMessage;

const SETUP: &str = "
CREATE TABLE users (id int PRIMARY KEY, name text, email text, ssn text);
INSERT INTO users VALUES
  (1, 'Ada', 'ada.secret@example.com', '123-45-6789'),
  (2, 'Alan', 'alan.secret@example.org', '234-56-7890');
CREATE TABLE accounts (id int PRIMARY KEY, balance int);
INSERT INTO accounts VALUES (1, 100), (2, 200), (3, 300);
";

const SENSITIVE: &str = r#"
[[sensitive]]
target = "app"
columns = ["public.users.email"]
tags = ["pii"]
mask = "email"
[[sensitive]]
target = "app"
columns = ["public.users.ssn"]
tags = ["pii"]
mask = "last4"
"#;

const SECRETS: [&str; 4] = ["ada.secret", "alan.secret", "123-45-6789", "234-56-7890"];

async fn start() -> Gatehouse {
    Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await
}

/// Every cell of a simple-protocol result, or the error's message.
async fn cells(c: &tokio_postgres::Client, sql: &str) -> Result<Vec<String>, String> {
    let rows = c.simple_query(sql).await.map_err(|e| format!("{e:?}"))?;
    Ok(rows
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL").to_owned())
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect())
}

/// `U&"…" UESCAPE '…'`: the escape character is a string constant to the quick key, but it
/// decides the identifier. A primes the cache with a read of the session's temporary table
/// `"!0075sers"` (no lineage needed); B, the same bytes but for the escape character, reads
/// `users` and is served A's facts: no mask plan, and derived columns carry no origin.
#[tokio::test]
async fn finding_uescape_character_is_not_a_constant() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let c = gh.connect("alice", &token).await;
    let derived = "SELECT email || '' AS e, ssn || '' AS s FROM";
    // Control: the same read, spelled plainly, is masked.
    let plain = cells(&c, &format!("{derived} users")).await.unwrap();
    assert!(!plain.is_empty());
    for s in SECRETS {
        assert!(!plain.iter().any(|v| v.contains(s)), "control leaked {s}");
    }
    cells(
        &c,
        "CREATE TEMP TABLE \"!0075sers\" (id int, name text, email text, ssn text)",
    )
    .await
    .unwrap();
    let a = format!("{derived} U&\"!0075sers\" UESCAPE '#'");
    assert_eq!(cells(&c, &a).await, Ok(vec![]), "{a}");
    let b = format!("{derived} U&\"!0075sers\" UESCAPE '!'");
    match cells(&c, &b).await {
        Err(_) => {}
        Ok(got) => {
            for s in SECRETS {
                assert!(
                    !got.iter().any(|v| v.contains(s)),
                    "{b}: {s} leaked in {got:?}"
                );
            }
        }
    }
}

async fn accounts(gh: &Gatehouse) -> i64 {
    upstream()
        .connect(&gh.db.name)
        .await
        .query_one("SELECT count(*) FROM accounts", &[])
        .await
        .unwrap()
        .get(0)
}

/// Found: `NOT ('a' < 'b')` was not folded (string order), so it was an unflagged "filter"
/// filed under the quick key; `NOT ('a' < 'a')` is always true and refused when analysed
/// fresh, but after A it was answered from A's entry and a DELETE of every row ran.
#[tokio::test]
async fn finding_unfolded_constant_under_not_primes_an_unfiltered_delete() {
    let gh = start().await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let c = gh.connect("alice", &token).await;
    // Control: fresh, the always-true condition is refused (literal-sensitive: exact key only).
    let control = "DELETE FROM accounts WHERE NOT ('x' < 'x')";
    assert!(c.batch_execute(control).await.is_err(), "{control}");
    assert_eq!(accounts(&gh).await, 3);
    // A: a condition that reads no row is all rows or none, whatever NOT does to it: refused
    // (it was allowed as a "filter" and primed the cache for B).
    let a = "DELETE FROM accounts WHERE NOT ('a' < 'b')";
    assert!(c.batch_execute(a).await.is_err(), "{a}");
    assert_eq!(accounts(&gh).await, 3);
    // B: must be refused like the control.
    let b = "DELETE FROM accounts WHERE NOT ('a' < 'a')";
    let r = c.batch_execute(b).await;
    let left = accounts(&gh).await;
    assert!(
        r.is_err() && left == 3,
        "{b}: ran = {}, rows left = {left}",
        r.is_ok()
    );
}

//! Sessions share event loops (`[limits] session_threads`): a statement that is slow to
//! analyse must not stall the other sessions of its loop.

use crate::harness::{Gatehouse, Options};
use std::time::{Duration, Instant};

/// A megabyte-long query string never seen before takes the parser a long while; another
/// session on the same (only) loop keeps being answered meanwhile.
#[tokio::test]
async fn a_large_new_statement_does_not_stall_other_sessions() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: "[limits]\nsession_threads = 1\n".into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &[]).await;
    let big_client = gh.connect("alice", &token).await;
    let other = gh.connect("alice", &token).await;
    other.simple_query("SELECT 1").await.unwrap();

    let list: Vec<String> = (0..40_000).map(|i| i.to_string()).collect();
    let big = format!("SELECT 1 WHERE 7 IN ({})", list.join(","));
    assert!(big.len() > 200_000);
    let started = Instant::now();
    let big_run = tokio::spawn(async move {
        let rows = big_client.simple_query(&big).await;
        (rows.map(|r| r.len()), started.elapsed())
    });
    // The longest wait for an answer of the other session: with the analysis on the loop,
    // about as long as the parse (most of the large statement's time); off it, a few
    // round trips.
    let mut answered = 0u32;
    let mut longest = Duration::ZERO;
    while !big_run.is_finished() {
        let t = Instant::now();
        other.simple_query("SELECT 1").await.unwrap();
        longest = longest.max(t.elapsed());
        answered += 1;
    }
    let (rows, took) = big_run.await.unwrap();
    eprintln!(
        "large statement answered in {took:?}; the other session ran {answered} statements \
         meanwhile, the slowest in {longest:?}"
    );
    // The row description, one row and the command completion.
    assert_eq!(rows.unwrap(), 3);
    assert!(
        longest < took / 4,
        "the other session waited {longest:?} for one answer while the large statement took {took:?}"
    );
}

//! COPY FROM STDIN followed by more work on the same connection. The server ignores Sync and
//! Flush during COPY IN, so a proxy that expects one ReadyForQuery per Sync falls behind and
//! matches every later result to the wrong request (masks included). After each COPY, results
//! of sensitive queries must still be masked and non-sensitive ones correct.

use super::rawpg::{
    bind, copy_data, copy_done, copy_fail, execute, flush, parse, query, sync, Tap,
};
use super::{
    assert_masked_or_refused, assert_no_secrets, assert_ok, events_until, raw, start,
    statements_containing,
};
use futures_util::SinkExt;
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn copy_in_as_tokio_postgres_sends_it_keeps_later_results_in_step() {
    let (gh, token) = start().await;
    let tap = Tap::start(gh.port).await;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(tap.port)
        .user("alice")
        .password(&token)
        .dbname("app");
    let c = crate::harness::connect(cfg).await;
    for round in 0..3i32 {
        let id = 100 + round;
        // tokio-postgres: Parse/Describe/Sync, then Bind/Execute/Sync, CopyData, CopyDone, Sync.
        let sink = c
            .copy_in("COPY pets (id, name) FROM STDIN")
            .await
            .unwrap_or_else(|e| panic!("round {round}: copy_in: {e}"));
        futures_util::pin_mut!(sink);
        sink.send(bytes::Bytes::from(format!("{id}\tCopied{round}\n")))
            .await
            .unwrap();
        let n = sink.finish().await.unwrap();
        assert_eq!(n, 1, "round {round}");

        // Alternate non-sensitive and sensitive results: one step of lag would hand a
        // sensitive result the plan (none) of the request before it.
        let rows = c
            .query("SELECT id, total FROM orders ORDER BY id", &[])
            .await
            .unwrap_or_else(|e| panic!("round {round}: orders: {e}"));
        let totals: Vec<i32> = rows.iter().map(|r| r.get(1)).collect();
        assert_eq!(totals, vec![500, 700], "round {round}");
        let rows = c
            .query("SELECT email, ssn FROM users ORDER BY id", &[])
            .await
            .unwrap_or_else(|e| panic!("round {round}: users: {e}"));
        assert_eq!(rows.len(), 3, "round {round}");
        let row = c
            .query_one("SELECT name FROM pets WHERE id = $1", &[&id])
            .await
            .unwrap_or_else(|e| panic!("round {round}: pets: {e}"));
        assert_eq!(row.get::<_, String>(0), format!("Copied{round}"));
        let rows = c
            .simple_query("SELECT lower(email) FROM users WHERE id = 1")
            .await
            .unwrap_or_else(|e| panic!("round {round}: simple users: {e}"));
        assert!(!rows.is_empty(), "round {round}");
        let rows = c
            .simple_query("SELECT name FROM users WHERE id = 2")
            .await
            .unwrap_or_else(|e| panic!("round {round}: simple name: {e}"));
        let name = rows.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_owned),
            _ => None,
        });
        assert_eq!(name.as_deref(), Some("Alan"), "round {round}");
        assert_no_secrets(&format!("round {round}"), &tap.received());
    }
    assert_no_secrets("the whole session", &tap.received());
}

#[tokio::test]
async fn raw_copy_in_with_syncs_and_copy_fail_keeps_later_results_in_step() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;

    // Extended protocol: the Sync after Execute is ignored by the server during COPY IN; the
    // one after CopyDone answers with the only ReadyForQuery.
    c.send(&[
        parse("", "COPY pets (id, name) FROM STDIN"),
        bind("", "", &[], &[]),
        execute("", 0),
        sync(),
    ])
    .await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "CopyInResponse: {}", r.describe());
    c.send(&[copy_data(b"7\tRaw\n"), copy_done(), sync()]).await;
    let r = c.read_ready(1).await;
    assert_ok("COPY via extended protocol", &r);
    assert_nothing_more(&mut c, "after extended COPY").await;
    check_in_step(&mut c, "after extended COPY", 7, "Raw").await;

    // CopyFail in the extended protocol.
    c.send(&[
        parse("", "COPY pets (id, name) FROM STDIN"),
        bind("", "", &[], &[]),
        execute("", 0),
        sync(),
    ])
    .await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "CopyInResponse: {}", r.describe());
    c.send(&[
        copy_data(b"8\tNever\n"),
        copy_fail("client gave up"),
        sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(
        r.complete() && r.error().is_some(),
        "CopyFail: {}",
        r.describe()
    );
    assert_nothing_more(&mut c, "after CopyFail").await;
    check_in_step(&mut c, "after CopyFail", 7, "Raw").await;

    // Simple protocol, with a stray Sync and Flush in the middle of the copy (ignored).
    c.send(&[query("COPY pets (id, name) FROM STDIN")]).await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "CopyInResponse: {}", r.describe());
    c.send(&[sync(), flush(), copy_data(b"9\tStray\n"), copy_done()])
        .await;
    let r = c.read_ready(1).await;
    assert_ok("simple COPY with a stray Sync", &r);
    assert_nothing_more(&mut c, "after simple COPY with a stray Sync").await;
    check_in_step(&mut c, "after simple COPY with stray Sync", 9, "Stray").await;

    // The audit trail matched each COPY to its own outcome: two copied one row, one failed.
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        statements_containing(evs, "COPY pets (id, name) FROM STDIN").len() >= 3
    })
    .await;
    let copies: Vec<(&serde_json::Value, &serde_json::Value)> =
        statements_containing(&events, "COPY pets (id, name) FROM STDIN")
            .iter()
            .map(|e| (&e["outcome"]["status"], &e["rows"]))
            .collect();
    assert_eq!(
        copies,
        vec![
            (&json!("ok"), &json!(1)),
            (&json!("error"), &json!(null)),
            (&json!("ok"), &json!(1)),
        ],
        "{events:#?}"
    );
}

/// The server answers the Syncs it ignored during COPY IN with nothing: neither must the
/// proxy (an extra ReadyForQuery would put the client one step behind).
async fn assert_nothing_more(c: &mut super::rawpg::RawPg, what: &str) {
    let extra = c.drain(std::time::Duration::from_millis(300)).await;
    assert!(
        extra.msgs.is_empty() && !extra.closed,
        "{what}: unexpected messages: {}",
        extra.describe()
    );
}

/// A sensitive query is masked and a non-sensitive one returns the right value.
async fn check_in_step(c: &mut super::rawpg::RawPg, what: &str, id: i32, name: &str) {
    let r = c.simple("SELECT email, ssn FROM users ORDER BY id").await;
    assert_masked_or_refused(&format!("{what}: users"), &r, 3);
    assert!(
        r.error().is_none(),
        "{what}: users refused: {}",
        r.describe()
    );
    let r = c
        .simple(&format!("SELECT name FROM pets WHERE id = {id}"))
        .await;
    assert_ok(&format!("{what}: pets"), &r);
    assert_eq!(r.cells(), vec![name.to_owned()], "{what}: {}", r.describe());
    c.send(&[
        parse("", "SELECT total, lower(ssn) FROM orders JOIN users ON users.id = orders.user_id ORDER BY orders.id"),
        bind("", "", &[], &[]),
        execute("", 0),
        sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_masked_or_refused(&format!("{what}: join"), &r, 2);
}

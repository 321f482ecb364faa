//! A statement whose outcome never arrived because the client vanished mid-statement still
//! has its audit event (outcome may be `unknown`), in the simple and the extended protocol.

use super::rawpg::{bind, execute, flush, parse, query};
use super::{events_until, raw, start, statements_containing};
use std::time::Duration;

#[tokio::test]
async fn statement_of_a_vanished_client_is_still_audited() {
    let (gh, token) = start().await;
    let mut a = raw(&gh, &token).await;
    a.send(&[query("SELECT pg_sleep(2), 'vanish-simple'")])
        .await;
    let mut b = raw(&gh, &token).await;
    // Extended protocol, no Sync: the server runs the Execute anyway.
    b.send(&[
        parse("", "SELECT pg_sleep(2), 'vanish-extended'"),
        bind("", "", &[], &[]),
        execute("", 0),
        flush(),
    ])
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.vanish();
    b.vanish();

    let done = |evs: &[serde_json::Value]| {
        !statements_containing(evs, "vanish-simple").is_empty()
            && !statements_containing(evs, "vanish-extended").is_empty()
    };
    let events = events_until(&gh, Duration::from_secs(8), done).await;
    let summary: Vec<_> = events
        .iter()
        .map(|e| (&e["kind"], &e["statement"], &e["outcome"]))
        .collect();
    for marker in ["vanish-simple", "vanish-extended"] {
        let found = statements_containing(&events, marker);
        assert!(
            !found.is_empty(),
            "no audit event for the statement of a vanished client ({marker}); have {summary:#?}"
        );
        let ev = found[0];
        assert!(ev["outcome"].is_object(), "{marker}: no outcome: {ev}");
    }
}

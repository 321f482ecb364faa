//! SQL PREPARE/EXECUTE and the namespace it shares with the protocol's Parse/Bind: EXECUTE
//! and a protocol Bind of a SQL-prepared name are masked with the prepared statement's plan
//! and audited with its text; a PREPARE of a refused statement is refused; a name whose
//! server-side meaning differs from the latest PREPARE text (a failed PREPARE, DEALLOCATE,
//! a PREPARE that outlives ROLLBACK, Parse vs PREPARE collisions) never unmasks.

use super::rawpg::{bind, close, describe, execute, parse, sync};
use super::{
    assert_all_passed, assert_masked, assert_masked_or_refused, assert_no_secrets, assert_ok,
    assert_refused, attempt, direct, events_until, raw, run_all, start, statements_containing,
};
use std::time::Duration;

#[tokio::test]
async fn sql_prepare_and_execute_are_masked() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &["PREPARE p AS SELECT id, email, ssn FROM users ORDER BY id"],
    )
    .await;
    let r = c.simple("EXECUTE p").await;
    assert_masked("EXECUTE p", &r, 3);
    run_all(
        &mut c,
        &["PREPARE p2 AS SELECT lower(email), upper(ssn) FROM users WHERE id = $1"],
    )
    .await;
    let r = c.simple("EXECUTE p2(1)").await;
    assert_masked("EXECUTE p2(1)", &r, 1);
}

#[tokio::test]
async fn protocol_bind_of_a_sql_prepared_statement_is_masked_and_audited() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let text = "SELECT email, ssn FROM users ORDER BY id";
    assert_ok("PREPARE", &c.simple(&format!("PREPARE p AS {text}")).await);
    // Bind the SQL-prepared name with Describe (text results) ...
    c.send(&[
        bind("", "p", &[], &[]),
        describe(b'P', ""),
        execute("", 0),
        sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_masked("Bind p + Describe + Execute", &r, 3);
    // ... without Describe, binary results ...
    c.send(&[bind("", "p", &[], &[1]), execute("", 0), sync()])
        .await;
    let r = c.read_ready(1).await;
    assert_masked("Bind p (binary) + Execute", &r, 3);
    // ... and into a named portal fetched in two steps.
    c.send(&[
        bind("bp", "p", &[], &[]),
        execute("bp", 1),
        execute("bp", 0),
        sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_no_secrets("Bind p into portal bp", &r.bytes);
    assert!(r.complete(), "{}", r.describe());

    // The other way round: a protocol-parsed name run with SQL EXECUTE.
    c.send(&[parse("q", "SELECT lower(ssn), email FROM users"), sync()])
        .await;
    let r = c.read_ready(1).await;
    assert_no_secrets("Parse q", &r.bytes);
    let r = c.simple("EXECUTE q").await;
    assert_masked("EXECUTE q (protocol-parsed)", &r, 3);

    // Audit: the three executions carry the prepared text, and no statement event is empty.
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        statements_containing(evs, text).len() >= 4
    })
    .await;
    let with_text = statements_containing(&events, text);
    assert!(
        with_text.len() >= 4,
        "PREPARE plus three Binds of p must each have an event with the statement text; have {:#?}",
        events
            .iter()
            .filter(|e| e["kind"] == "statement")
            .map(|e| (&e["statement"], &e["outcome"]))
            .collect::<Vec<_>>()
    );
    for e in events.iter().filter(|e| e["kind"] == "statement") {
        assert!(
            e["statement"]
                .as_str()
                .is_some_and(|s| !s.trim().is_empty()),
            "a statement event without its text: {e}"
        );
    }
}

#[tokio::test]
async fn prepare_of_a_refused_statement_is_refused() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let r = c.simple("PREPARE d AS DELETE FROM users").await;
    assert_refused("PREPARE d AS DELETE FROM users", &r);
    let r = c.simple("PREPARE u AS UPDATE users SET age = 0").await;
    assert_refused("PREPARE u AS UPDATE users SET age = 0", &r);
    // Whatever the proxy decided about the PREPARE, EXECUTE and a protocol Bind must not run
    // them.
    for sql in ["EXECUTE d", "EXECUTE u"] {
        let r = c.simple(sql).await;
        assert!(r.error().is_some(), "{sql}: {}", r.describe());
    }
    c.send(&[bind("", "d", &[], &[]), execute("", 0), sync()])
        .await;
    let r = c.read_ready(1).await;
    assert!(r.error().is_some(), "Bind d: {}", r.describe());
    // Refused at Parse, then tried through SQL EXECUTE.
    c.send(&[parse("d2", "DELETE FROM users"), sync()]).await;
    let r = c.read_ready(1).await;
    assert_refused("Parse d2", &r);
    let r = c.simple("EXECUTE d2").await;
    assert!(r.error().is_some(), "EXECUTE d2: {}", r.describe());

    let db = direct(&gh).await;
    let row = db
        .query_one("SELECT count(*), sum(age)::int8 FROM users", &[])
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i64>(1)),
        (3, 86),
        "nothing was deleted or updated"
    );
    // A write the pack allows may still be prepared and executed.
    run_all(
        &mut c,
        &["PREPARE w AS UPDATE orders SET total = total + 1 WHERE id = $1"],
    )
    .await;
    let r = c.simple("EXECUTE w(10)").await;
    assert_ok("EXECUTE w(10)", &r);
    let row = db
        .query_one("SELECT total FROM orders WHERE id = 10", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 501);
}

#[tokio::test]
async fn prepared_name_collisions_cannot_swap_the_plan() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();

    // A second PREPARE of the name fails on the server (42P05): p is still the ssn query.
    failures.push(
        attempt("failed re-PREPARE", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "PREPARE p AS SELECT ssn || '' FROM users",
                    "PREPARE p AS SELECT 'x'::text",
                ],
            )
            .await;
            let r = c.simple("EXECUTE p").await;
            assert_masked_or_refused("EXECUTE p", &r, 3);
            c.send(&[bind("", "p", &[], &[]), execute("", 0), sync()])
                .await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("Bind p", &r, 3);
        })
        .await,
    );

    // A harmless PREPARE that failed (aborted transaction) never existed on the server.
    failures.push(
        attempt("PREPARE in an aborted transaction", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "BEGIN",
                    "SELECT 1/0",
                    "PREPARE p AS SELECT 'x'::text",
                    "ROLLBACK",
                    "PREPARE p AS SELECT email FROM users",
                ],
            )
            .await;
            let r = c.simple("EXECUTE p").await;
            assert_masked_or_refused("EXECUTE p", &r, 3);
        })
        .await,
    );

    // DEALLOCATE (or a protocol Close of the shared name), then the name again.
    for dealloc in ["DEALLOCATE p", "DEALLOCATE ALL", "DISCARD ALL", "Close"] {
        failures.push(
            attempt(dealloc, async {
                let mut c = raw(gh, token).await;
                run_all(&mut c, &["PREPARE p AS SELECT 'x'::text"]).await;
                if dealloc == "Close" {
                    c.send(&[close(b'S', "p"), sync()]).await;
                    assert_ok("Close p", &c.read_ready(1).await);
                } else {
                    run_all(&mut c, &[dealloc]).await;
                }
                run_all(&mut c, &["PREPARE p AS SELECT ssn FROM users"]).await;
                let r = c.simple("EXECUTE p").await;
                // (If the pack refuses DISCARD ALL, p stays the harmless one: any row count.)
                assert_no_secrets("EXECUTE p", &r.bytes);
                assert!(r.complete(), "EXECUTE p: {}", r.describe());
            })
            .await,
        );
    }

    // PREPARE is not transactional: it outlives a ROLLBACK.
    failures.push(
        attempt("PREPARE outlives ROLLBACK", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "BEGIN",
                    "PREPARE p AS SELECT lower(email) FROM users",
                    "ROLLBACK",
                ],
            )
            .await;
            let r = c.simple("EXECUTE p").await;
            assert_masked_or_refused("EXECUTE p", &r, 3);
        })
        .await,
    );

    // Protocol Parse and SQL PREPARE share one namespace, both ways.
    failures.push(
        attempt("Parse over a SQL-prepared name", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["PREPARE p AS SELECT ssn FROM users"]).await;
            c.send(&[parse("p", "SELECT 'x'::text"), sync()]).await;
            let r = c.read_ready(1).await;
            assert_no_secrets("Parse p", &r.bytes);
            c.send(&[bind("", "p", &[], &[]), execute("", 0), sync()])
                .await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("Bind p", &r, 3);
            let r = c.simple("EXECUTE p").await;
            assert_masked_or_refused("EXECUTE p", &r, 3);
        })
        .await,
    );
    failures.push(
        attempt("PREPARE over a protocol-parsed name", async {
            let mut c = raw(gh, token).await;
            c.send(&[parse("p", "SELECT email FROM users"), sync()])
                .await;
            assert_ok("Parse p", &c.read_ready(1).await);
            run_all(&mut c, &["PREPARE p AS SELECT 'x'::text"]).await;
            let r = c.simple("EXECUTE p").await;
            assert_masked_or_refused("EXECUTE p", &r, 3);
        })
        .await,
    );
    assert_all_passed(failures);
}

/// SQL folds unquoted names (`PREPARE P` prepares `p`); the protocol never does (`Parse "P"`
/// is another statement). Each name keeps its own plan.
#[tokio::test]
async fn prepared_names_differing_only_in_case_keep_their_own_plans() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("Parse \"P\" then PREPARE P", async {
            let mut c = raw(gh, token).await;
            c.send(&[parse("P", "SELECT 'x'::text"), sync()]).await;
            assert_ok("Parse P", &c.read_ready(1).await);
            // The server stores this one as "p": no collision with "P".
            let r = c.simple("PREPARE P AS SELECT ssn FROM users").await;
            assert_no_secrets("PREPARE P", &r.bytes);
            let r = c.simple("EXECUTE P").await;
            assert_masked_or_refused("EXECUTE P (= p, the ssn query)", &r, 3);
            c.send(&[bind("", "p", &[], &[]), execute("", 0), sync()])
                .await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("Bind p (the ssn query)", &r, 3);
            c.send(&[bind("", "P", &[], &[]), execute("", 0), sync()])
                .await;
            let r = c.read_ready(1).await;
            assert_ok("Bind P (the harmless one)", &r);
            assert_eq!(r.cells(), vec!["x"], "{}", r.describe());
        })
        .await,
    );
    failures.push(
        attempt("PREPARE \"Q\" and PREPARE q", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "PREPARE \"Q\" AS SELECT email FROM users",
                    "PREPARE q AS SELECT 'x'::text",
                ],
            )
            .await;
            let r = c.simple("EXECUTE \"Q\"").await;
            assert_masked_or_refused("EXECUTE \"Q\"", &r, 3);
            c.send(&[bind("", "Q", &[], &[]), execute("", 0), sync()])
                .await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("Bind Q", &r, 3);
            let r = c.simple("EXECUTE Q").await;
            assert_ok("EXECUTE Q (= q, the harmless one)", &r);
            assert_eq!(r.cells(), vec!["x"], "{}", r.describe());
        })
        .await,
    );
    assert_all_passed(failures);
}

//! Cursors: declared in one message, fetched in later ones (FETCH, MOVE, WITH HOLD past
//! COMMIT, SCROLL backwards, an expression over a sensitive column, name reuse) and executed
//! as a protocol portal by name. Every fetch is masked with the plan decided at DECLARE, or
//! refused; a cursor over a non-sensitive table returns clear values.

use super::rawpg::{bind, describe, execute, parse, sync};
use super::{
    assert_all_passed, assert_masked_or_refused, assert_no_secrets, assert_ok, attempt, check,
    events_until, raw, run_all, start, statements_containing,
};
use std::time::Duration;

#[tokio::test]
async fn cursor_fetched_in_a_later_message_is_masked() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok("BEGIN", &c.simple("BEGIN").await);
    let declare = c
        .simple("DECLARE c CURSOR FOR SELECT id, name, email, ssn FROM users ORDER BY id")
        .await;
    assert_no_secrets("DECLARE", &declare.bytes);
    let fetch = c.simple("FETCH ALL FROM c").await;
    assert_masked_or_refused("FETCH ALL FROM c", &fetch, 3);
    c.simple("ROLLBACK").await;

    // The same cursor read piece by piece, with a MOVE in between.
    let replies = run_all(
        &mut c,
        &[
            "BEGIN",
            "DECLARE c2 CURSOR FOR SELECT email, ssn FROM users ORDER BY id",
            "FETCH 1 FROM c2",
            "MOVE 0 IN c2",
            "FETCH NEXT FROM c2",
            "FETCH FORWARD ALL FROM c2",
            "CLOSE c2",
            "COMMIT",
        ],
    )
    .await;
    for r in &replies {
        assert!(r.complete(), "{}", r.describe());
    }

    // The audit trail names the FETCH and what it read.
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "FETCH ALL FROM c").is_empty()
    })
    .await;
    let fetches = statements_containing(&events, "FETCH ALL FROM c");
    let ev = fetches
        .first()
        .unwrap_or_else(|| panic!("no audit event for FETCH ALL FROM c: {events:#?}"));
    assert!(
        ev["tables"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t == "public.users")),
        "the FETCH's event must name the cursor's table: {ev}"
    );
}

#[tokio::test]
async fn cursor_with_hold_is_masked_after_commit() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let replies = run_all(
        &mut c,
        &[
            "BEGIN",
            "DECLARE h CURSOR WITH HOLD FOR SELECT email, ssn FROM users ORDER BY id",
            "COMMIT",
        ],
    )
    .await;
    for r in &replies {
        assert!(r.complete(), "{}", r.describe());
    }
    let fetch = c.simple("FETCH ALL FROM h").await;
    assert_masked_or_refused("FETCH ALL FROM h (after COMMIT)", &fetch, 3);
    c.simple("CLOSE h").await;

    // Declared outside any transaction block (its own implicit transaction).
    run_all(
        &mut c,
        &["DECLARE h2 CURSOR WITH HOLD FOR SELECT lower(email), ssn FROM users ORDER BY id"],
    )
    .await;
    let first = c.simple("FETCH 2 FROM h2").await;
    assert_masked_or_refused("FETCH 2 FROM h2", &first, 2);
    let rest = c.simple("FETCH ALL FROM h2").await;
    assert_masked_or_refused("FETCH ALL FROM h2", &rest, 1);
}

#[tokio::test]
async fn scroll_cursor_moves_and_backward_fetches_are_masked() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &[
            "BEGIN",
            "DECLARE s SCROLL CURSOR FOR SELECT ssn, email FROM users ORDER BY id",
        ],
    )
    .await;
    let mut failures = Vec::new();
    for (sql, rows) in [
        ("FETCH FORWARD 1 FROM s", 1),
        ("MOVE LAST IN s", 0),
        ("FETCH BACKWARD 2 FROM s", 2),
        ("FETCH ABSOLUTE 1 FROM s", 1),
        ("FETCH LAST FROM s", 1),
        ("FETCH PRIOR FROM s", 1),
        ("FETCH RELATIVE 0 FROM s", 1),
        ("MOVE ABSOLUTE 0 IN s", 0),
        ("FETCH ALL IN s", 3),
        ("FETCH BACKWARD ALL IN s", 3),
    ] {
        let r = c.simple(sql).await;
        failures.push(check(sql, || assert_masked_or_refused(sql, &r, rows)));
    }
    c.simple("COMMIT").await;
    assert_all_passed(failures);
}

#[tokio::test]
async fn cursor_over_an_expression_is_masked_by_lineage() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &[
            "BEGIN",
            "DECLARE e CURSOR FOR SELECT lower(ssn), email || '', upper(email), \
             replace(ssn, '-', ''), upper(name) FROM users ORDER BY id",
        ],
    )
    .await;
    let fetch = c.simple("FETCH ALL FROM e").await;
    assert_masked_or_refused("FETCH ALL FROM e", &fetch, 3);
    if fetch.error().is_none() {
        // Only the sensitive expressions are masked: upper(name) is clear.
        assert!(
            fetch.cells().iter().any(|v| v == "ADA"),
            "upper(name) must be clear: {}",
            fetch.describe()
        );
    }
    c.simple("COMMIT").await;
}

#[tokio::test]
async fn cursor_name_reuse_cannot_swap_the_plan() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let cases: [(&str, &[&str]); 3] = [
        // A second DECLARE of the same name fails on the server (42P03) and is undone by the
        // savepoint: the cursor is still the sensitive one.
        (
            "failed re-DECLARE",
            &[
                "BEGIN",
                "DECLARE c CURSOR FOR SELECT ssn FROM users ORDER BY id",
                "SAVEPOINT a",
                "DECLARE c CURSOR FOR SELECT 'x'::text",
                "ROLLBACK TO SAVEPOINT a",
            ],
        ),
        // A harmless cursor declared in a savepoint that is rolled back no longer exists, so
        // the next DECLARE of the name succeeds on the server.
        (
            "DECLARE rolled back to a savepoint",
            &[
                "BEGIN",
                "SAVEPOINT a",
                "DECLARE c CURSOR FOR SELECT 'x'::text",
                "ROLLBACK TO SAVEPOINT a",
                "DECLARE c CURSOR FOR SELECT email FROM users ORDER BY id",
            ],
        ),
        // CLOSE and DECLARE again under the same name, harmless first.
        (
            "CLOSE and re-DECLARE",
            &[
                "BEGIN",
                "DECLARE c CURSOR FOR SELECT total FROM orders",
                "FETCH 1 FROM c",
                "CLOSE c",
                "DECLARE c CURSOR FOR SELECT lower(ssn) FROM users ORDER BY id",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (what, steps) in cases {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                run_all(&mut c, steps).await;
                let fetch = c.simple("FETCH ALL FROM c").await;
                assert_masked_or_refused("FETCH ALL FROM c", &fetch, 3);
            })
            .await,
        );
    }
    assert_all_passed(failures);
}

#[tokio::test]
async fn cursor_portal_executed_by_name_is_masked() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &[
            "BEGIN",
            "DECLARE c CURSOR FOR SELECT id, email, ssn FROM users ORDER BY id",
        ],
    )
    .await;
    // No Bind: the cursor is already a portal on the server.
    c.send(&[execute("c", 0), sync()]).await;
    let r = c.read_ready(1).await;
    assert_masked_or_refused("Execute portal c", &r, 3);
    c.simple("ROLLBACK").await;

    run_all(
        &mut c,
        &[
            "BEGIN",
            "DECLARE d CURSOR FOR SELECT lower(email), ssn FROM users ORDER BY id",
        ],
    )
    .await;
    c.send(&[
        describe(b'P', "d"),
        execute("d", 1),
        execute("d", 0),
        sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_no_secrets("Describe + Execute portal d", &r.bytes);
    assert!(r.complete(), "{}", r.describe());
    c.simple("ROLLBACK").await;
}

#[tokio::test]
async fn cursor_over_a_non_sensitive_table_returns_clear_values() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok("BEGIN", &c.simple("BEGIN").await);
    let r = c
        .simple("DECLARE o CURSOR FOR SELECT id, total FROM orders ORDER BY id")
        .await;
    assert_ok("DECLARE o", &r);
    let r = c.simple("FETCH 1 FROM o").await;
    assert_ok("FETCH 1 FROM o", &r);
    assert_eq!(r.cells(), vec!["10", "500"], "{}", r.describe());
    let r = c.simple("FETCH ALL FROM o").await;
    assert_ok("FETCH ALL FROM o", &r);
    assert_eq!(r.cells(), vec!["11", "700"], "{}", r.describe());
    // The non-sensitive columns of the sensitive table are clear through a cursor too.
    let r = c
        .simple("DECLARE n CURSOR FOR SELECT name FROM users ORDER BY id")
        .await;
    assert_ok("DECLARE n", &r);
    let r = c.simple("FETCH ALL FROM n").await;
    assert_ok("FETCH ALL FROM n", &r);
    assert_eq!(r.cells(), vec!["Ada", "Alan", "Kid"], "{}", r.describe());
    // And by portal name in the extended protocol.
    let r = c
        .simple("DECLARE p CURSOR FOR SELECT total FROM orders ORDER BY id")
        .await;
    assert_ok("DECLARE p", &r);
    c.send(&[execute("p", 0), sync()]).await;
    let r = c.read_ready(1).await;
    assert_ok("Execute portal p", &r);
    assert_eq!(r.cells(), vec!["500", "700"], "{}", r.describe());
    assert_ok("COMMIT", &c.simple("COMMIT").await);
}

#[tokio::test]
async fn cursors_declared_or_resumed_by_other_routes_are_masked() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    // DECLARE sent through the extended protocol, FETCH through the simple one.
    failures.push(
        attempt("DECLARE via Parse/Bind/Execute", async {
            let mut c = raw(gh, token).await;
            assert_ok("BEGIN", &c.simple("BEGIN").await);
            c.send(&[
                parse(
                    "",
                    "DECLARE c CURSOR FOR SELECT email, ssn FROM users ORDER BY id",
                ),
                bind("", "", &[], &[]),
                execute("", 0),
                sync(),
            ])
            .await;
            let r = c.read_ready(1).await;
            assert_no_secrets("DECLARE via extended protocol", &r.bytes);
            let fetch = c.simple("FETCH ALL FROM c").await;
            assert_masked_or_refused("FETCH ALL FROM c", &fetch, 3);
        })
        .await,
    );
    // DECLARE, FETCH and COMMIT in one string (one message, several statements).
    failures.push(
        attempt("one string", async {
            let mut c = raw(gh, token).await;
            let r = c
                .simple(
                    "BEGIN; DECLARE c CURSOR FOR SELECT lower(ssn) FROM users; \
                     FETCH 1 FROM c; FETCH ALL FROM c; COMMIT",
                )
                .await;
            assert_no_secrets("one string", &r.bytes);
            assert!(r.complete(), "{}", r.describe());
        })
        .await,
    );
    // A cursor over a partition read by its own name.
    failures.push(
        attempt("cursor over a partition", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &["BEGIN", "DECLARE c CURSOR FOR SELECT ssn FROM people_1"],
            )
            .await;
            let fetch = c.simple("FETCH ALL FROM c").await;
            assert_masked_or_refused("FETCH ALL FROM c", &fetch, 1);
        })
        .await,
    );
    // A protocol portal suspended by a row limit and resumed after a Sync (inside a
    // transaction the portal survives the Sync).
    failures.push(
        attempt("portal resumed after Sync", async {
            let mut c = raw(gh, token).await;
            assert_ok("BEGIN", &c.simple("BEGIN").await);
            c.send(&[
                parse("s1", "SELECT email, ssn FROM users ORDER BY id"),
                bind("x", "s1", &[], &[]),
                execute("x", 1),
                sync(),
            ])
            .await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("first row", &r, 1);
            c.send(&[execute("x", 0), sync()]).await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("the rest", &r, 2);
        })
        .await,
    );
    assert_all_passed(failures);
}

/// Names are case-folded by SQL unless quoted, and never by the protocol: `"Cur"` and `cur`
/// are two cursors. A proxy that folds (or does not fold) where the server does not would map
/// one name's plan onto the other. Each probe runs in a session of its own (a refusal aborts
/// the transaction, which would make the next probe vacuous).
#[tokio::test]
async fn cursor_names_differing_only_in_case_keep_their_own_plans() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let declare = [
        "BEGIN",
        "DECLARE \"Cur\" CURSOR FOR SELECT ssn FROM users ORDER BY id",
        "DECLARE cur CURSOR FOR SELECT 'x'::text",
        "DECLARE \"cur2\" CURSOR FOR SELECT email FROM users ORDER BY id",
    ];
    let mut failures = Vec::new();
    for (what, fetch) in [
        ("FETCH \"Cur\"", "FETCH ALL FROM \"Cur\""),
        // Unquoted names are folded: CUR2 is "cur2" (the email cursor).
        ("FETCH CUR2", "FETCH ALL FROM CUR2"),
    ] {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                run_all(&mut c, &declare).await;
                let r = c.simple(fetch).await;
                assert_masked_or_refused(fetch, &r, 3);
            })
            .await,
        );
    }
    // The protocol uses the name as is.
    failures.push(
        attempt("Execute portal Cur", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &declare).await;
            c.send(&[execute("Cur", 0), sync()]).await;
            let r = c.read_ready(1).await;
            assert_masked_or_refused("Execute portal Cur", &r, 3);
        })
        .await,
    );
    // The harmless one (CUR folds to cur) is clear, by SQL and by portal name.
    failures.push(
        attempt("FETCH CUR", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &declare).await;
            let r = c.simple("FETCH 1 FROM CUR").await;
            assert_ok("FETCH 1 FROM CUR", &r);
            assert_eq!(r.cells(), vec!["x"], "{}", r.describe());
        })
        .await,
    );
    assert_all_passed(failures);
}

//! Round one: the defences confirmed, and Execute without Describe.

use super::*;

/// Name reuse and portal juggling that the confirmed state follows correctly.
#[tokio::test]
async fn defence_portal_and_cursor_juggling_stays_masked() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    let fetch_cases: [(&str, &[&str], &str); 4] = [
        (
            "holdable cursor survives a later failed transaction",
            &[
                "BEGIN",
                "DECLARE h CURSOR WITH HOLD FOR SELECT lower(ssn) FROM users",
                "COMMIT",
                "BEGIN",
                "SELECT 1/0",
                "ROLLBACK",
            ],
            "FETCH ALL FROM h",
        ),
        (
            "holdable cursor of a failed transaction is gone, the name redeclared",
            &[
                "BEGIN",
                "DECLARE h CURSOR WITH HOLD FOR SELECT 'x'::text",
                "SELECT 1/0",
                "ROLLBACK",
                "BEGIN",
                "DECLARE h CURSOR FOR SELECT email || '' FROM users",
            ],
            "FETCH ALL FROM h",
        ),
        (
            "CLOSE ALL, then the name redeclared",
            &[
                "BEGIN",
                "DECLARE a CURSOR FOR SELECT 'x'::text",
                "CLOSE ALL",
                "DECLARE a CURSOR FOR SELECT ssn || '' FROM users",
            ],
            "FETCH ALL FROM a",
        ),
        (
            "cursor redeclared after ROLLBACK TO SAVEPOINT, in one string",
            &[],
            "BEGIN; SAVEPOINT s; DECLARE c CURSOR FOR SELECT 'x'::text; \
             ROLLBACK TO SAVEPOINT s; DECLARE c CURSOR FOR SELECT ssn || '' FROM users; \
             FETCH ALL FROM c",
        ),
    ];
    for (what, setup, fetch) in fetch_cases {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                run_all(&mut c, setup).await;
                let r = c.simple(fetch).await;
                assert_masked_or_refused(fetch, &r, 3);
            })
            .await,
        );
    }
    failures.push(
        attempt("unnamed portal rebound to a sensitive statement", async {
            let mut c = raw(gh, token).await;
            let r = ext(
                &mut c,
                &[
                    parse("", "SELECT 'x'::text"),
                    bind("", "", &[], &[]),
                    parse("s", "SELECT ssn || '' FROM users"),
                    bind("", "s", &[], &[]),
                    execute("", 0),
                    sync(),
                ],
                1,
            )
            .await;
            assert_masked("Execute unnamed", &r, 3);
        })
        .await,
    );
    failures.push(
        attempt(
            "Bind to an existing named portal fails; the old one runs",
            async {
                let mut c = raw(gh, token).await;
                assert_ok("BEGIN", &c.simple("BEGIN").await);
                let r = ext(
                    &mut c,
                    &[
                        parse("s1", "SELECT email || '' FROM users"),
                        bind("p", "s1", &[], &[]),
                        sync(),
                    ],
                    1,
                )
                .await;
                assert_ok("Bind p", &r);
                let r = ext(
                    &mut c,
                    &[
                        parse("s2", "SELECT 'x'::text"),
                        bind("p", "s2", &[], &[]),
                        sync(),
                    ],
                    1,
                )
                .await;
                assert_eq!(r.sqlstate().as_deref(), Some("42P03"), "{}", r.describe());
                // The failed Bind aborted the transaction; a fresh one with the same name.
                run_all(&mut c, &["ROLLBACK", "BEGIN"]).await;
                let r = ext(
                    &mut c,
                    &[bind("p", "s1", &[], &[]), execute("p", 0), sync()],
                    1,
                )
                .await;
                assert_masked("Execute p", &r, 3);
            },
        )
        .await,
    );
    failures.push(
        attempt(
            "suspended portal, another portal described and run, resumed",
            async {
                let mut c = raw(gh, token).await;
                assert_ok("BEGIN", &c.simple("BEGIN").await);
                let r = ext(
                    &mut c,
                    &[
                        parse("a", "SELECT ssn || '' FROM users"),
                        parse("b", "SELECT total FROM orders ORDER BY id"),
                        bind("pa", "a", &[], &[]),
                        bind("pb", "b", &[], &[]),
                        execute("pa", 1),
                        describe(b'P', "pb"),
                        execute("pb", 0),
                        describe(b'P', "pa"),
                        execute("pa", 0),
                        sync(),
                    ],
                    1,
                )
                .await;
                assert_no_secrets("interleaved portals", &r.bytes);
                assert!(r.complete() && r.error().is_none(), "{}", r.describe());
                assert!(r.cells().contains(&"700".to_owned()), "{}", r.describe());
            },
        )
        .await,
    );
    failures.push(
        attempt("BINARY cursor executed by portal name", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "BEGIN",
                    "DECLARE bc BINARY CURSOR FOR SELECT email || '' FROM users",
                    "DECLARE bd BINARY CURSOR FOR SELECT ssn FROM users",
                ],
            )
            .await;
            let r = ext(&mut c, &[execute("bc", 0), sync()], 1).await;
            assert_masked_or_refused("Execute bc", &r, 3);
            let r = ext(&mut c, &[describe(b'P', "bd"), execute("bd", 0), sync()], 1).await;
            assert_masked_or_refused("Describe + Execute bd", &r, 3);
        })
        .await,
    );
    failures.push(
        attempt("Close of unknown names, then DISCARD ALL", async {
            let mut c = raw(gh, token).await;
            let r = ext(
                &mut c,
                &[close(b'P', "nope"), close(b'S', "nope"), sync()],
                1,
            )
            .await;
            assert_ok("Close unknown", &r);
            run_all(&mut c, &["PREPARE p AS SELECT ssn || '' FROM users"]).await;
            run_all(&mut c, &["DISCARD ALL"]).await;
            let r = c.simple("EXECUTE p").await;
            assert_no_secrets("EXECUTE p after DISCARD ALL", &r.bytes);
            let r = c.simple(EXPR_READ).await;
            assert_masked("expressions after all that", &r, 3);
        })
        .await,
    );
    assert_all_passed(failures);
}

/// Stray COPY messages, Flush, and Sync floods during COPY IN keep every later result matched
/// to its own request.
#[tokio::test]
async fn defence_stray_copy_messages_and_sync_floods_keep_results_in_step() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    // CopyData, CopyDone and CopyFail without a COPY (the server ignores them), Flush.
    c.send(&[
        copy_data(b"junk\n"),
        copy_done(),
        copy_fail("nothing"),
        flush(),
        sync(),
        query("SELECT total FROM orders ORDER BY id"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert_ok("after stray COPY messages", &r);
    assert_eq!(r.cells(), vec!["500", "700"], "{}", r.describe());
    let r = c.simple(EXPR_READ).await;
    assert_masked("after stray COPY messages", &r, 3);

    // A flood of Syncs and Flushes during COPY IN: ignored by the server.
    c.send(&[query("COPY pets (id, name) FROM STDIN")]).await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "{}", r.describe());
    let mut frames = Vec::new();
    for _ in 0..50 {
        frames.push(sync());
        frames.push(flush());
    }
    frames.push(copy_data(b"77\tFlood\n"));
    frames.push(copy_done());
    c.send(&frames).await;
    assert_ok("COPY with a Sync flood", &c.read_ready(1).await);
    let extra = c.drain(Duration::from_millis(300)).await;
    assert!(extra.msgs.is_empty(), "{}", extra.describe());
    let r = c.simple("SELECT name FROM pets WHERE id = 77").await;
    assert_eq!(r.cells(), vec!["Flood"], "{}", r.describe());
    let r = c.simple(EXPR_READ).await;
    assert_masked("after the Sync flood", &r, 3);
    // Extended COPY with Syncs sent before the CopyInResponse could arrive.
    let r = ext(
        &mut c,
        &[
            parse("", "COPY pets (id, name) FROM STDIN"),
            bind("", "", &[], &[]),
            execute("", 0),
            sync(),
            sync(),
            copy_data(b"78\tEarly\n"),
            copy_done(),
            sync(),
        ],
        1,
    )
    .await;
    assert_ok("extended COPY with early Syncs", &r);
    let extra = c.drain(Duration::from_millis(300)).await;
    assert!(extra.msgs.is_empty(), "{}", extra.describe());
    let r = c.simple(EXPR_READ).await;
    assert_masked("after the extended COPY", &r, 3);
}

/// Guardrails hold whatever route the statement takes.
#[tokio::test]
async fn defence_refused_statements_stay_refused_through_other_routes() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let mut failures = Vec::new();
    let r = ext(
        &mut c,
        &[
            parse("x", "DROP TABLE orders"),
            bind("", "x", &[], &[]),
            execute("", 0),
            sync(),
        ],
        1,
    )
    .await;
    failures.push(super::super::check("Parse DROP TABLE", || {
        assert_refused("Parse DROP TABLE", &r)
    }));
    let r = ext(
        &mut c,
        &[bind("", "x", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    failures.push(super::super::check("Bind of the refused name", || {
        assert!(r.error().is_some(), "{}", r.describe())
    }));
    // Pipelined without Sync after a good statement.
    let r = ext(
        &mut c,
        &[
            parse("", "SELECT 1"),
            bind("", "", &[], &[]),
            execute("", 0),
            parse("", "DELETE FROM orders"),
            bind("", "", &[], &[]),
            execute("", 0),
            sync(),
        ],
        1,
    )
    .await;
    failures.push(super::super::check("pipelined DELETE", || {
        assert_refused("pipelined DELETE", &r)
    }));
    for sql in [
        "SELECT 1; DELETE FROM orders",
        "EXPLAIN ANALYZE DELETE FROM orders",
        "EXPLAIN ANALYZE UPDATE orders SET total = 0",
        "GRANT ALL ON users TO PUBLIC",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d",
        "DO $$ BEGIN EXECUTE 'DROP TABLE ' || 'orders'; END $$",
        "PREPARE z AS DELETE FROM orders WHERE id = id",
        "SET search_path = pg_temp, public; DROP TABLE orders",
    ] {
        let r = c.simple(sql).await;
        failures.push(super::super::check(sql, || assert_refused(sql, &r)));
    }
    // A fastpath FunctionCall (by OID) is refused.
    let mut body = BytesMut::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    let r = ext(&mut c, &[crate::raw::message(b'F', &body)], 1).await;
    failures.push(super::super::check("FunctionCall", || {
        assert_refused("FunctionCall", &r)
    }));
    assert_orders_intact(&gh, "after the refused statements").await;
    let r = c.simple("SELECT 1").await;
    failures.push(super::super::check("session alive", || {
        assert_ok("SELECT 1", &r)
    }));
    assert_all_passed(failures);
}

/// Multi-statement strings and pipelines that change the search path before a read are
/// refused or masked (never resolved against the path the proxy last saw).
#[tokio::test]
async fn defence_search_path_changes_inside_a_string_or_pipeline() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    for sql in [
        "SET search_path = shadow, public; ROLLBACK; SELECT email || '' AS e, ssn || '' AS s FROM users",
        "BEGIN; SET LOCAL search_path = shadow, public; COMMIT; SELECT email || '' AS e, ssn || '' AS s FROM users",
        "SET search_path = shadow, public; SELECT set_config('search_path', 'public', false); SELECT email || '' AS e, ssn || '' AS s FROM users",
        "SET search_path = \"Shadow\", public; SELECT email || '' AS e, ssn || '' AS s FROM users",
    ] {
        failures.push(
            attempt(sql, async {
                let mut c = raw(gh, token).await;
                let r = c.simple(sql).await;
                assert_no_secrets(sql, &r.bytes);
            })
            .await,
        );
    }
    failures.push(
        attempt("extended SET then SELECT without Sync", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["SET search_path = shadow, public"]).await;
            let r = ext(
                &mut c,
                &[
                    parse("", "SET search_path = public"),
                    bind("", "", &[], &[]),
                    execute("", 0),
                    parse("", EXPR_READ),
                    bind("", "", &[], &[]),
                    execute("", 0),
                    sync(),
                ],
                1,
            )
            .await;
            assert_no_secrets("pipelined SET + SELECT", &r.bytes);
        })
        .await,
    );
    assert_all_passed(failures);
}

/// The second net: wherever lineage was fooled above, plain column references (text or binary,
/// described or not) are still masked by their RowDescription origin.
#[tokio::test]
async fn defence_origins_mask_plain_columns_when_lineage_is_fooled() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &[
            "CREATE TEMP TABLE users (id int, email text, ssn text)",
            "DROP TABLE users",
        ],
    )
    .await;
    let r = c.simple("SELECT email, ssn FROM users").await;
    assert_masked("plain columns, text", &r, 3);
    let r = ext(
        &mut c,
        &[
            parse("", "SELECT u.email, u.ssn FROM (SELECT * FROM users) u"),
            bind("", "", &[], &[0, 1]),
            describe(b'P', ""),
            execute("", 0),
            sync(),
        ],
        1,
    )
    .await;
    assert_masked("through a subquery, mixed formats", &r, 3);
}

/// The second net needs a RowDescription: an extended-protocol Execute without Describe (what
/// many drivers send for a statement they described once, and any raw client) carries no
/// column origins, so where lineage was fooled even plain column references leave in clear.
#[tokio::test]
async fn finding_execute_without_describe_has_no_origin_net() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &[
            "CREATE TEMP TABLE users (id int, email text, ssn text)",
            "DROP TABLE users",
        ],
    )
    .await;
    let mut failures = Vec::new();
    for formats in [&[][..], &[1][..]] {
        let r = ext(
            &mut c,
            &[
                parse("", "SELECT email, ssn FROM users"),
                bind("", "", &[], formats),
                execute("", 0),
                sync(),
            ],
            1,
        )
        .await;
        let what = format!("plain columns, formats {formats:?}, no Describe");
        failures.push(super::super::check(&what, || {
            assert_masked_or_refused(&what, &r, 3)
        }));
    }
    assert_all_passed(failures);
}

/// A client that vanishes while a large result streams: the statement is still audited.
#[tokio::test]
async fn defence_client_vanishing_mid_result_is_audited() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    c.send(&[query(
        "SELECT g, repeat('vanish-stream', 50) FROM generate_series(1, 200000) g",
    )])
    .await;
    let _ = c.read_until_tag(b'D').await;
    c.vanish();
    let events = events_until(&gh, Duration::from_secs(8), |evs| {
        !statements_containing(evs, "vanish-stream").is_empty()
    })
    .await;
    let found = statements_containing(&events, "vanish-stream");
    assert!(!found.is_empty(), "no event for the vanished stream");
    assert!(found[0]["outcome"].is_object(), "{}", found[0]);
}

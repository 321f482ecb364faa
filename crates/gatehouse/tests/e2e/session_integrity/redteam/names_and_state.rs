//! Round one: temporary objects, prepared statements re-analysed by the server, partitions,
//! error texts, audit attribution, savepoints.

use super::*;

/// A temporary `users` learnt by a probe is dropped (or discarded); lineage still resolves
/// `users` to it, while the server reads public.users.
#[tokio::test]
async fn finding_dropped_temp_table_still_hides_the_sensitive_table() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let create = "CREATE TEMP TABLE users (id int, email text, ssn text)";
    let cases: [(&str, &[&str], &str); 4] = [
        // COPY has no RowDescription, so not even plain column references are caught by
        // their origin; and with no plan, CSV is not refused either.
        (
            "COPY … CSV after DROP TABLE",
            &[create, "DROP TABLE users"],
            "COPY (SELECT email, ssn FROM users) TO STDOUT (FORMAT csv)",
        ),
        // The DROP itself makes the proxy probe (its temporary tables were stale), so the
        // probe learns `users`; the DROP then removes the name but not its columns.
        ("DROP TABLE", &[create, "DROP TABLE users"], EXPR_READ),
        // Any probe learns it (here: a search_path change); DISCARD TEMP drops it.
        (
            "DISCARD TEMP",
            &[
                create,
                "SET search_path = public",
                "SELECT 1",
                "DISCARD TEMP",
            ],
            EXPR_READ,
        ),
        // Dropped earlier in the same string.
        (
            "DROP earlier in the same string",
            &[create, "SET search_path = public", "SELECT 1"],
            "DROP TABLE users; SELECT email || '' AS e, ssn || '' AS s FROM users",
        ),
    ];
    let mut failures = Vec::new();
    for (what, setup, read) in cases {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                for r in steps(&mut c, setup).await {
                    assert_ok(what, &r);
                }
                let r = c.simple(read).await;
                if read.starts_with("COPY") {
                    assert_no_secrets(read, &r.bytes);
                } else {
                    assert_masked_or_refused(read, &r, 3);
                }
            })
            .await,
        );
    }
    assert_all_passed(failures);
}

/// `SET search_path = public, pg_temp` makes the server find public.users before a temporary
/// `users`; lineage follows (the probe reports the temporary schema where the path names it).
#[tokio::test]
async fn defence_pg_temp_listed_after_public_is_searched_where_listed() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    for r in steps(
        &mut c,
        &[
            "CREATE TEMP TABLE users (id int, email text, ssn text)",
            "INSERT INTO users VALUES (1, 'temp@example.net', '000')",
            "SET search_path = public, pg_temp",
        ],
    )
    .await
    {
        assert_ok("setup", &r);
    }
    let r = c.simple(EXPR_READ).await;
    assert_masked_or_refused("users after SET search_path = public, pg_temp", &r, 3);
}

/// The DROP guard reads the raw search_path for `pg_temp`; naming the temporary schema by its
/// real name (`pg_temp_N`) puts it after public without the proxy noticing, and DROP TABLE
/// of "our own temporary table" drops public.orders.
#[tokio::test]
async fn finding_pg_temp_n_after_public_lets_drop_reach_the_real_table() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "CREATE TEMP TABLE orders",
        &c.simple("CREATE TEMP TABLE orders (id int)").await,
    );
    let r = c
        .simple("SELECT pg_my_temp_schema()::regnamespace::text")
        .await;
    assert_ok("temp schema name", &r);
    let temp = r.cells().first().cloned().expect("temp schema name");
    assert_ok(
        "SET search_path",
        &c.simple(&format!("SET search_path = public, {temp}")).await,
    );
    // Refused, or it dropped the temporary table only.
    let _reply = c.simple("DROP TABLE orders").await;
    assert_orders_intact(
        &gh,
        &format!("DROP TABLE orders with search_path = public, {temp}"),
    )
    .await;
}

/// A temporary view learnt by a probe is replaced (temporary DDL the built-in pack allows); the
/// proxy keeps reading it with the old definition.
#[tokio::test]
async fn finding_replaced_temp_view_is_planned_with_its_old_definition() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let create = "CREATE TEMP VIEW tv AS SELECT id, name FROM users";
    let replace = "CREATE OR REPLACE TEMP VIEW tv AS SELECT id, ssn || '' AS name FROM users";
    let mut failures = Vec::new();
    failures.push(
        attempt("replaced in a later message", async {
            let mut c = raw(gh, token).await;
            assert_ok(create, &c.simple(create).await);
            // Unknown to the proxy: it probes and learns the definition.
            let r = c.simple("SELECT name FROM tv ORDER BY id").await;
            assert_ok("first read", &r);
            assert_eq!(r.cells(), vec!["Ada", "Alan", "Kid"]);
            assert_ok(replace, &c.simple(replace).await);
            let r = c.simple("SELECT name FROM tv").await;
            assert_masked_or_refused("second read", &r, 3);
        })
        .await,
    );
    failures.push(
        attempt("replaced earlier in the same string", async {
            let mut c = raw(gh, token).await;
            assert_ok(create, &c.simple(create).await);
            assert_ok("first read", &c.simple("SELECT name FROM tv").await);
            let r = c.simple(&format!("{replace}; SELECT name FROM tv")).await;
            assert_masked_or_refused("same string", &r, 3);
        })
        .await,
    );
    // The shared catalog's views are confirmed by a probe made before the string runs, so a
    // view the same string replaces (DDL this suite's policy permits) is not seen either.
    failures.push(
        attempt("shared view replaced earlier in the same string", async {
            let mut c = raw(gh, token).await;
            let r = c
                .simple(
                    "CREATE OR REPLACE VIEW harmless AS SELECT id, ssn || '' AS name FROM users; \
                     SELECT name FROM harmless",
                )
                .await;
            assert_masked_or_refused("same string, shared view", &r, 3);
        })
        .await,
    );
    assert_all_passed(failures);
}

/// PostgreSQL re-analyses a prepared statement when search_path changed since it was prepared
/// ("re-parsed using the new search_path", PREPARE docs), when a relation it depends on was
/// dropped, or when a view it reads was replaced; utility statements (COPY) are analysed at
/// every execution. The proxy keeps the mask plan it made at PREPARE/Parse time.
#[tokio::test]
async fn finding_prepared_statements_reanalysed_by_the_server_keep_the_stale_plan() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("SQL PREPARE, then search_path changed", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["SET search_path = shadow, public"]).await;
            run_all(&mut c, &[&format!("PREPARE p AS {EXPR_READ}")]).await;
            let r = c.simple("EXECUTE p").await;
            assert_ok("EXECUTE p (shadow)", &r);
            assert_eq!(r.cells(), vec!["shade.clear@example.net", "999-00-1111"]);
            run_all(&mut c, &["SET search_path = public"]).await;
            let r = c.simple("EXECUTE p").await;
            assert_masked_or_refused("EXECUTE p (public)", &r, 3);
        })
        .await,
    );
    failures.push(
        attempt("protocol Parse, then search_path changed", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["SET search_path = shadow, public"]).await;
            assert_ok(
                "Parse q",
                &ext(&mut c, &[parse("q", EXPR_READ), sync()], 1).await,
            );
            run_all(&mut c, &["RESET search_path"]).await;
            let r = ext(
                &mut c,
                &[bind("", "q", &[], &[]), execute("", 0), sync()],
                1,
            )
            .await;
            assert_masked_or_refused("Bind q (public)", &r, 3);
        })
        .await,
    );
    failures.push(
        attempt("protocol Parse of COPY, then search_path changed", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["SET search_path = shadow, public"]).await;
            let sql = "COPY (SELECT email, ssn FROM users) TO STDOUT";
            assert_ok(
                "Parse cp",
                &ext(&mut c, &[parse("cp", sql), sync()], 1).await,
            );
            run_all(&mut c, &["SET search_path = public"]).await;
            let r = ext(
                &mut c,
                &[bind("", "cp", &[], &[]), execute("", 0), sync()],
                1,
            )
            .await;
            assert_no_secrets("COPY cp (public)", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt(
            "SQL PREPARE over a temporary table, then it is dropped",
            async {
                let mut c = raw(gh, token).await;
                run_all(
                    &mut c,
                    &[
                        "CREATE TEMP TABLE users (id int, email text, ssn text)",
                        "SET search_path = public",
                        "SELECT 1",
                        &format!("PREPARE p AS {EXPR_READ}"),
                        "DROP TABLE pg_temp.users",
                    ],
                )
                .await;
                let r = c.simple("EXECUTE p").await;
                assert_masked_or_refused("EXECUTE p after the temp table is gone", &r, 3);
            },
        )
        .await,
    );
    failures.push(
        attempt(
            "tokio-postgres prepared statement, view replaced directly",
            async {
                let tap = Tap::start(gh.port).await;
                let mut cfg = tokio_postgres::Config::new();
                cfg.host("127.0.0.1")
                    .port(tap.port)
                    .user("alice")
                    .password(token)
                    .dbname("app");
                let client = crate::harness::connect(cfg).await;
                let stmt = client
                    .prepare("SELECT id, name FROM harmless ORDER BY id")
                    .await
                    .unwrap();
                let rows = client.query(&stmt, &[]).await.unwrap();
                let names: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
                assert_eq!(names, vec!["Ada", "Alan", "Kid"]);
                // A migration applied directly on the database.
                direct(gh)
                .await
                .batch_execute(
                    "CREATE OR REPLACE VIEW harmless AS SELECT id, ssn || '' AS name FROM users",
                )
                .await
                .unwrap();
                let _ = client.query(&stmt, &[]).await;
                assert_no_secrets("cached statement after the view changed", &tap.received());
            },
        )
        .await,
    );
    assert_all_passed(failures);
}

/// DROP of the session's own temporary table is decided once, at Parse. The server resolves a
/// prepared utility statement at every execution: the second run drops public.orders.
#[tokio::test]
async fn finding_prepared_drop_of_own_temp_table_drops_the_real_table_when_rerun() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "CREATE TEMP TABLE orders",
        &c.simple("CREATE TEMP TABLE orders (id int)").await,
    );
    let r = ext(&mut c, &[parse("d", "DROP TABLE orders"), sync()], 1).await;
    assert_ok("Parse d (our temporary table: allowed)", &r);
    let r = ext(
        &mut c,
        &[bind("", "d", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    assert_ok("first run drops the temporary table", &r);
    let _second = ext(
        &mut c,
        &[bind("", "d", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    assert_orders_intact(&gh, "second run of the prepared DROP TABLE orders").await;
}

/// COPY FROM STDIN, then a Query instead of CopyData. PostgreSQL fails the COPY after reading
/// only the message type, then reads the Query's length bytes as the next message type and
/// ends the connection: the proxy never gets to match a later result to the swallowed query.
/// Nothing clear arrives, and the swallowed query is audited (outcome unknown).
#[tokio::test]
async fn defence_query_sent_during_copy_in_ends_the_session() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok("warm-up", &c.simple("SELECT 1").await);
    c.send(&[query("COPY pets (id, name) FROM STDIN")]).await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "CopyInResponse: {}", r.describe());
    c.send(&[query("SELECT 'decoy-during-copy'::text AS d")])
        .await;
    let first = c.read_ready(1).await;
    c.send(&[query(EXPR_READ)]).await;
    let second = c.read_ready(1).await;
    let rest = c.drain(Duration::from_millis(300)).await;
    assert_no_secrets("reply to the decoy", &first.bytes);
    assert_no_secrets("reply to the users query", &second.bytes);
    assert_no_secrets("anything after", &rest.bytes);
    assert!(
        first.closed || second.closed || rest.closed,
        "the session should have ended: {} / {}",
        first.describe(),
        second.describe()
    );
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "decoy-during-copy").is_empty()
    })
    .await;
    let decoy = statements_containing(&events, "decoy-during-copy");
    assert!(!decoy.is_empty(), "the swallowed query has no event");
    assert!(decoy[0]["rows"] != serde_json::json!(3), "{}", decoy[0]);
}

/// The shared catalog is confirmed against the server only when a statement reads a view: a
/// table the proxy knows as plain, attached directly as a partition of a sensitive table, is
/// read in clear (the parent's sensitivity does not follow until the next timed reload).
#[tokio::test]
#[ignore = "known gap: a table attached as a partition directly on the database is seen at the next catalog refresh (at most 60 s); reads of plain tables do not confirm the catalog fingerprint"]
async fn finding_partition_attached_directly_is_read_in_clear() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let db = direct(&gh).await;
    db.batch_execute("CREATE TABLE people_9 (id int, ssn text)")
        .await
        .unwrap();
    // The proxy learns people_9 as a plain table (unknown relation: catalog reloaded).
    let r = c.simple("SELECT id FROM people_9").await;
    assert_ok("SELECT id FROM people_9", &r);
    // A migration on the database: attach it, and the application writes through the parent.
    db.batch_execute(
        "ALTER TABLE people ATTACH PARTITION people_9 FOR VALUES FROM (900) TO (1000);
         INSERT INTO people VALUES (950, '567-89-0123');",
    )
    .await
    .unwrap();
    let r = c.simple("SELECT ssn FROM people_9").await;
    assert_masked_or_refused("SELECT ssn FROM people_9 (attached directly)", &r, 1);
}

/// A failing cast quotes the value in its error message. Encoded (reversed, translated) it
/// passes the detectors, and the client decodes it.
#[tokio::test]
async fn finding_cast_errors_quote_sensitive_values() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let mut failures = Vec::new();
    for sql in [
        "SELECT ssn::int FROM users WHERE id = 1",
        "SELECT reverse(ssn)::int FROM users WHERE id = 1",
        "SELECT translate(ssn, '0123456789', 'abcdefghij')::int FROM users WHERE id = 1",
        "SELECT reverse(email)::int FROM users WHERE id = 1",
    ] {
        let r = c.simple(sql).await;
        let text: String = r
            .error()
            .map(|e| {
                [b'M', b'D', b'H', b'W']
                    .iter()
                    .filter_map(|f| e.field(*f))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let reversed: String = text.chars().rev().collect();
        let untranslated: String = text
            .chars()
            .map(|ch| match ch {
                'a'..='j' => char::from(b'0' + (ch as u8 - b'a')),
                other => other,
            })
            .collect();
        failures.push(super::super::check(sql, || {
            assert_no_secrets(sql, &r.bytes);
            for (how, t) in [("reversed", &reversed), ("translated", &untranslated)] {
                let found = leaked(t.as_bytes());
                assert!(
                    found.is_empty(),
                    "{sql}: the error text, {how} back, reveals {found:?}: {text:?}"
                );
            }
        }));
    }
    assert_all_passed(failures);
}

/// The audit event of an execution carries the statement the proxy *expected* to exist, not
/// the one the server ran: a failed re-Parse of a name leaves the old statement on the server
/// but the new text in the audit; a PREPARE run through the extended protocol is never
/// remembered, so its executions are audited without text or tables.
#[tokio::test]
async fn finding_audit_names_a_statement_the_server_did_not_run() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "Parse p",
        &ext(
            &mut c,
            &[parse("p", "SELECT lower(ssn) AS x FROM users"), sync()],
            1,
        )
        .await,
    );
    let r = ext(
        &mut c,
        &[parse("p", "SELECT 'decoy-reparse'::text AS x"), sync()],
        1,
    )
    .await;
    assert_eq!(r.sqlstate().as_deref(), Some("42P05"), "{}", r.describe());
    let r = ext(
        &mut c,
        &[bind("", "p", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    assert_masked("Bind p: the server runs the ssn query", &r, 3);

    let r = ext(
        &mut c,
        &[
            parse("", "PREPARE q AS SELECT lower(email) AS y FROM users"),
            bind("", "", &[], &[]),
            execute("", 0),
            sync(),
        ],
        1,
    )
    .await;
    assert_ok("PREPARE q through the extended protocol", &r);
    // (SQL EXECUTE of a name the proxy never saw PREPAREd is refused: fail closed.)
    let r = c.simple("EXECUTE q").await;
    assert_masked_or_refused("EXECUTE q", &r, 3);
    let r = ext(
        &mut c,
        &[bind("", "q", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    assert_masked("Bind q", &r, 3);
    assert_ok("marker", &c.simple("SELECT 'audit-marker'").await);

    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "audit-marker").is_empty()
    })
    .await;
    let stmts: Vec<&serde_json::Value> =
        events.iter().filter(|e| e["kind"] == "statement").collect();
    let mut failures = Vec::new();
    failures.push(super::super::check("failed re-Parse", || {
        for e in statements_containing(&events, "decoy-reparse") {
            assert!(
                e["rows"] != serde_json::json!(3),
                "the execution of the ssn query is audited as the decoy that never existed: {e}"
            );
        }
        assert!(
            statements_containing(&events, "lower(ssn) AS x")
                .iter()
                .any(|e| e["rows"] == serde_json::json!(3)),
            "no event records that the ssn query ran: {stmts:#?}"
        );
    }));
    failures.push(super::super::check(
        "Bind of an extended-protocol PREPARE",
        || {
            assert!(
            statements_containing(&events, "lower(email) AS y")
                .iter()
                .any(|e| e["rows"] == serde_json::json!(3)),
            "Bind q ran lower(email) over users, but no event with rows says so; events: {stmts:#?}"
        );
        },
    ));
    assert_all_passed(failures);
}

/// The proxy's "rolled back" flag is set by any ROLLBACK tag (ROLLBACK TO SAVEPOINT, ROLLBACK
/// AND CHAIN) or error, and only cleared at the next idle ReadyForQuery: the commit of the
/// transaction then removes a holdable cursor the server kept, and FETCH from it ends a
/// legitimate session (savepoint recovery is what psql's ON_ERROR_ROLLBACK and ORMs do).
#[tokio::test]
async fn finding_savepoint_rollback_forgets_a_committed_holdable_cursor() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let cases: [(&str, &[&str]); 3] = [
        (
            "ROLLBACK TO SAVEPOINT",
            &["BEGIN", "SAVEPOINT s", "ROLLBACK TO SAVEPOINT s"],
        ),
        (
            "error recovered by a savepoint",
            &[
                "BEGIN",
                "SAVEPOINT s",
                "SELECT 1/0",
                "ROLLBACK TO SAVEPOINT s",
            ],
        ),
        ("ROLLBACK AND CHAIN", &["BEGIN", "ROLLBACK AND CHAIN"]),
    ];
    let mut failures = Vec::new();
    for (what, before) in cases {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                steps(&mut c, before).await;
                for r in steps(
                    &mut c,
                    &[
                        "DECLARE h CURSOR WITH HOLD FOR SELECT total FROM orders ORDER BY id",
                        "COMMIT",
                    ],
                )
                .await
                {
                    assert_ok(what, &r);
                }
                let r = c.simple("FETCH ALL FROM h").await;
                assert_ok("FETCH ALL FROM h (legitimate)", &r);
                assert_eq!(r.cells(), vec!["500", "700"], "{}", r.describe());
            })
            .await,
        );
    }
    assert_all_passed(failures);
}

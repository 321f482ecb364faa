//! Red-team pass over the server-confirmed session model. Each `finding_*` test asserts the
//! SECURE behaviour and fails today because of a weakness; each `defence_*` test passes and
//! shows an attack the proxy (or PostgreSQL itself) already stops.
//!
//! Findings:
//! - the client's lexer settings are not the proxy's: with `client_encoding = SJIS` (BIG5, GBK,
//!   …) or `standard_conforming_strings = off`, text the proxy parses as a literal is SQL to
//!   the server (unmasked reads, unbounded DELETE, DROP TABLE), also through psycopg;
//! - the session's temporary-relation catalog (columns, view definitions) is refreshed only by
//!   a probe: a dropped or discarded temporary table, or a replaced temporary view (or a view
//!   replaced earlier in the same string), is still used by lineage while the server reads
//!   the real, sensitive relation;
//! - prepared statements are re-analysed by the server (search_path changed, a relation they
//!   read dropped, a view replaced), and prepared utility statements (COPY, DROP) are resolved
//!   at every execution, while the proxy keeps the plan and decision made at PREPARE/Parse;
//! - the DROP guard reads `pg_temp` in the raw search_path only: `pg_temp_N` after public
//!   lets DROP TABLE of "our temporary table" drop the real one;
//! - the RowDescription origin net does not exist for an Execute without Describe, nor for
//!   COPY;
//! - the shared catalog is confirmed against the server only for views: a partition attached
//!   directly is read in clear;
//! - cast errors quote sensitive values (encoded, past the detectors);
//! - the audit trail records the text the proxy expected (a failed re-Parse) or none (PREPARE
//!   through the extended protocol), not what the server ran;
//! - any ROLLBACK tag (ROLLBACK TO SAVEPOINT, AND CHAIN) or error leaves a "rolled back" flag
//!   that, at COMMIT, forgets a holdable cursor the server kept: legitimate sessions end;
//! - with DDL permitted: a function shadowing a built-in by a better argument match, triggers,
//!   column defaults and RENAME COLUMN move sensitive values past lineage.

use super::rawpg::{
    bind, close, copy_data, copy_done, copy_fail, describe, execute, flush, parse, query, sync,
    RawPg, Reply, Tap,
};
use super::{
    assert_all_passed, assert_masked, assert_masked_or_refused, assert_no_secrets, assert_ok,
    assert_orders_intact, assert_refused, attempt, direct, events_until, leaked, raw, run_all,
    start, statements_containing,
};
use bytes::BytesMut;
use std::time::Duration;

/// Expressions over both sensitive columns: RowDescription reports no origin for them, so only
/// the statement's own mask plan can mask them.
const EXPR_READ: &str = "SELECT email || '' AS e, ssn || '' AS s FROM users";

/// Runs `steps` one simple Query each without judging the replies (the check comes after).
async fn steps(c: &mut RawPg, sqls: &[&str]) -> Vec<Reply> {
    let mut out = Vec::new();
    for sql in sqls {
        out.push(c.simple(sql).await);
    }
    out
}

/// Sends `frames` and reads up to `n` ReadyForQuery.
async fn ext(c: &mut RawPg, frames: &[BytesMut], n: usize) -> Reply {
    c.send(frames).await;
    c.read_ready(n).await
}

// ---------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------

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
        failures.push(super::check(sql, || {
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
    failures.push(super::check("failed re-Parse", || {
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
    failures.push(super::check("Bind of an extended-protocol PREPARE", || {
        assert!(
            statements_containing(&events, "lower(email) AS y")
                .iter()
                .any(|e| e["rows"] == serde_json::json!(3)),
            "Bind q ran lower(email) over users, but no event with rows says so; events: {stmts:#?}"
        );
    }));
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

/// The proxy lexes every query as UTF-8; the server lexes it after converting from the
/// session's client_encoding, which a client may set (startup parameter or SET). In SJIS (also
/// BIG5, GBK, UHC, GB18030) 0x5C can be the second byte of a character: the bytes C3 81 5C are
/// "Á\" to the proxy (a backslash that escapes the next quote in an E'' literal) but a katakana
/// and one two-byte character to the server (no backslash, the quote ends the literal). What
/// the proxy takes for a literal, the server runs as SQL: unmasked columns, a DELETE without an
/// effective WHERE, a DROP TABLE nobody audited.
#[tokio::test]
async fn defence_client_encoding_sjis_cannot_make_the_server_run_what_the_proxy_saw_as_a_literal() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("raw: SELECT hidden in a literal", async {
            let mut c = raw(gh, token).await;
            // Secure outcomes: the SET refused, or the session ended before anything else ran.
            let _ = c.simple("SET client_encoding = 'SJIS'").await;
            let r = c
                .simple("SELECT E'Á\\', upper(email) AS e, upper(ssn) AS s FROM users -- '")
                .await;
            assert_no_secrets("SELECT E'Á\\', upper(email), upper(ssn) …", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("raw: DELETE whose WHERE hides in a literal", async {
            let mut c = raw(gh, token).await;
            // Secure outcomes: the SET refused, or the session ended before anything else ran.
            let _ = c.simple("SET client_encoding = 'SJIS'").await;
            let _ = c
                .simple("DELETE FROM orders WHERE E'Á\\' = '' OR true --' = 'x' AND id = 10")
                .await;
            let db = direct(gh).await;
            let n: i64 = db
                .query_one("SELECT count(*) FROM orders", &[])
                .await
                .unwrap()
                .get(0);
            if n != 2 {
                db.batch_execute(
                    "DELETE FROM orders; INSERT INTO orders VALUES (10, 1, 500), (11, 2, 700)",
                )
                .await
                .unwrap();
            }
            assert_eq!(n, 2, "the DELETE removed every row of orders");
        })
        .await,
    );
    failures.push(
        attempt("raw: DROP TABLE hidden in a literal", async {
            let mut c = raw(gh, token).await;
            // Secure outcomes: the SET refused, or the session ended before anything else ran.
            let _ = c.simple("SET client_encoding = 'SJIS'").await;
            let _ = c.simple("SELECT E'Á\\'; DROP TABLE orders; --'").await;
            assert_orders_intact(gh, "SELECT E'Á\\'; DROP TABLE orders; --'").await;
        })
        .await,
    );
    failures.push(
        attempt("psycopg with client_encoding=SJIS (startup parameter)", async {
            let tap = Tap::start(gh.port).await;
            let script = r#"
import sys, psycopg
port, token = sys.argv[1], sys.argv[2]
jp = b"\xc3\x81\x5c".decode("shift_jis")
try:
    conn = psycopg.connect(host="127.0.0.1", port=port, user="alice", password=token,
                           dbname="app", client_encoding="SJIS", autocommit=True)
except psycopg.OperationalError as e:
    print("refused at login", e)
    sys.exit(0)
with conn:
    try:
        rows = conn.execute("SELECT E'" + jp + "', upper(email) AS e, upper(ssn) AS s FROM users -- '").fetchall()
        print(len(rows))
    except Exception as e:
        print("error", e)
"#;
            let out = tokio::process::Command::new(python())
                .args(["-c", script, &tap.port.to_string(), token])
                .output()
                .await
                .expect("python runs");
            assert!(
                out.status.success(),
                "python: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_no_secrets("psycopg, SJIS", &tap.received());
        })
        .await,
    );
    assert_all_passed(failures);
}

/// The same split through `standard_conforming_strings = off` (a permitted SET and startup
/// parameter): the server then reads `\'` inside a plain literal as an escaped quote, while
/// the proxy's parser keeps the standard meaning. Both see two statements, so nothing is out
/// of step, but the second is a different statement on each side.
#[tokio::test]
async fn defence_standard_conforming_strings_off_cannot_make_the_server_run_a_different_statement()
{
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("SELECT of names (proxy) / of ssn (server)", async {
            let mut c = raw(gh, token).await;
            let _ = c.simple("SET standard_conforming_strings = off").await;
            let r = c
                .simple(
                    "SELECT 'a\\'; SELECT upper(name) AS n FROM users WHERE '' = '; \
                     SELECT upper(email) AS e, upper(ssn) AS s FROM users; --'",
                )
                .await;
            assert_no_secrets("scs off", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt(
            "bounded DELETE (proxy) / unbounded DELETE (server)",
            async {
                let mut c = raw(gh, token).await;
                let _ = c.simple("SET standard_conforming_strings = off").await;
                let _ = c
                    .simple(
                        "SELECT 'a\\'; DELETE FROM orders WHERE id = 10 AND '' = '; \
                     DELETE FROM orders; --'",
                    )
                    .await;
                let db = direct(gh).await;
                let n: i64 = db
                    .query_one("SELECT count(*) FROM orders", &[])
                    .await
                    .unwrap()
                    .get(0);
                if n != 2 {
                    db.batch_execute(
                        "DELETE FROM orders; INSERT INTO orders VALUES (10, 1, 500), (11, 2, 700)",
                    )
                    .await
                    .unwrap();
                }
                assert_eq!(n, 2, "the DELETE removed every row of orders");
            },
        )
        .await,
    );
    assert_all_passed(failures);
}

/// Python with psycopg: `$GATEHOUSE_TEST_PYTHON` or the repository's `.venv`.
fn python() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        return p.into();
    }
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python")
}

/// With DDL permitted (as this suite's policy does), objects that run code or rename columns
/// move sensitive values past lineage: a user function that shadows a built-in name (a better
/// argument match), a trigger, a column default, RENAME COLUMN.
#[tokio::test]
async fn finding_ddl_moves_sensitive_values_past_lineage() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("user lower(integer) shadows the built-in", async {
            let mut c = raw(gh, token).await;
            let r = c
                .simple(
                    "CREATE FUNCTION public.lower(integer) RETURNS text LANGUAGE sql \
                     AS $$ SELECT string_agg(ssn, ',') FROM public.users $$",
                )
                .await;
            assert_no_secrets("CREATE FUNCTION", &r.bytes);
            let r = c.simple("SELECT lower(1)").await;
            assert_no_secrets("SELECT lower(1)", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("trigger copies values into a non-sensitive column", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "CREATE FUNCTION steal() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                     NEW.name := (SELECT string_agg(email, ',') FROM public.users); \
                     RETURN NEW; END $$",
                    "CREATE TRIGGER steal BEFORE INSERT ON pets FOR EACH ROW EXECUTE FUNCTION steal()",
                ],
            )
            .await;
            let r = c
                .simple("INSERT INTO pets VALUES (42, 'x') RETURNING name")
                .await;
            assert_no_secrets("INSERT … RETURNING name", &r.bytes);
            let r = c.simple("SELECT name FROM pets WHERE id = 42").await;
            assert_no_secrets("SELECT name FROM pets", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("column default copies values", async {
            let mut c = raw(gh, token).await;
            run_all(
                &mut c,
                &[
                    "CREATE FUNCTION grab() RETURNS text LANGUAGE sql \
                     AS $$ SELECT string_agg(ssn, ',') FROM public.users $$",
                    "CREATE TABLE notes (id int, body text DEFAULT grab())",
                ],
            )
            .await;
            let r = c
                .simple("INSERT INTO notes (id) VALUES (1) RETURNING body")
                .await;
            assert_no_secrets("INSERT … DEFAULT RETURNING body", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("RENAME COLUMN sheds the configured name", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["ALTER TABLE users RENAME COLUMN ssn TO tax_id"]).await;
            // The proxy reloads its catalog after DDL.
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let r = c.simple("SELECT tax_id FROM users").await;
            assert_masked_or_refused("SELECT tax_id FROM users", &r, 3);
        })
        .await,
    );
    assert_all_passed(failures);
}

// ---------------------------------------------------------------------------------------------
// Defences that hold
// ---------------------------------------------------------------------------------------------

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
    failures.push(super::check("Parse DROP TABLE", || {
        assert_refused("Parse DROP TABLE", &r)
    }));
    let r = ext(
        &mut c,
        &[bind("", "x", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    failures.push(super::check("Bind of the refused name", || {
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
    failures.push(super::check("pipelined DELETE", || {
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
        failures.push(super::check(sql, || assert_refused(sql, &r)));
    }
    // A fastpath FunctionCall (by OID) is refused.
    let mut body = BytesMut::new();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    body.extend_from_slice(&0i16.to_be_bytes());
    let r = ext(&mut c, &[crate::raw::message(b'F', &body)], 1).await;
    failures.push(super::check("FunctionCall", || {
        assert_refused("FunctionCall", &r)
    }));
    assert_orders_intact(&gh, "after the refused statements").await;
    let r = c.simple("SELECT 1").await;
    failures.push(super::check("session alive", || assert_ok("SELECT 1", &r)));
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
        failures.push(super::check(&what, || {
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

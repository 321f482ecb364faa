//! Attacks on wire fidelity: client encodings followed by the proxy, the fastpath interface
//! (FunctionCall), the client-facing cancel key and protocol negotiation. Each `finding_*` test
//! is an attack that worked when it was written, kept asserting the secure behaviour now that
//! it is fixed; each `defence_*` test shows an attack that was stopped from the start.
//!
//! Findings (all fixed):
//! - names in Bind/Describe/Execute/Close are read in the encoding in force *before* a
//!   `SET client_encoding` executed earlier in the same unsynced batch, while the server reads
//!   them in the new one: one name, two prepared statements — an unmasked result;
//! - the proxy's converters disagree with PostgreSQL's for a few characters (KOI8U 0xAE/0xBE,
//!   EUC_CN 0xA1A4/0xA1AA, EUC_JP 0x8FA2C3): the same bytes name two different objects —
//!   an unmasked result, an audit event naming another statement than the one that ran, a
//!   DROP of a permanent table decided as the DROP of the session's temporary table;
//! - a setting changed by code the statement's own text does not show (a cursor's query run
//!   by FETCH, a temporary table's column default run by INSERT) does not make the proxy wait
//!   for the server's report: with `standard_conforming_strings` turned off that way, text
//!   the proxy reads as one SELECT of two literals runs as DROP TABLE on the server;
//! - the session probe's rows are read as UTF-8 whatever the client encoding: temporary
//!   relations with non-ASCII names drift from the server's (refused as unknown);
//! - fastpath calls Gatehouse refuses (any function but the large-object ones) leave no audit
//!   event and no log line;
//! - `SET application_name` replaces the `gatehouse:<identity>` prefix the server shows.

use crate::harness::{Gatehouse, Options};
use crate::raw;
use crate::session_integrity::rawpg::{self, RawPg, Reply};
use crate::session_integrity::{
    assert_no_secrets, assert_ok, direct, events_until, start, statements_containing, SENSITIVE,
    SETUP,
};
use bytes::{BufMut, BytesMut};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Raw messages with names and texts given as bytes (in whatever encoding the test needs)
// ---------------------------------------------------------------------------------------------

fn cstr(b: &mut BytesMut, s: &[u8]) {
    b.put_slice(s);
    b.put_u8(0);
}

pub(crate) fn parse_b(name: &[u8], sql: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, name);
    cstr(&mut b, sql);
    b.put_i16(0);
    raw::message(b'P', &b)
}

/// Bind of `statement` (given as bytes) to `portal`, text-format parameters, text results.
pub(crate) fn bind_b(portal: &[u8], statement: &[u8], params: &[&[u8]]) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, portal);
    cstr(&mut b, statement);
    b.put_i16(0);
    b.put_i16(params.len() as i16);
    for p in params {
        b.put_i32(p.len() as i32);
        b.put_slice(p);
    }
    b.put_i16(0);
    raw::message(b'B', &b)
}

pub(crate) fn query_b(sql: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    cstr(&mut b, sql);
    raw::message(b'Q', &b)
}

/// FunctionCall of `oid` with text-format arguments, text result.
pub(crate) fn function_call(oid: u32, args: &[&[u8]]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u32(oid);
    b.put_i16(1);
    b.put_i16(0);
    b.put_i16(args.len() as i16);
    for a in args {
        b.put_i32(a.len() as i32);
        b.put_slice(a);
    }
    b.put_i16(0);
    raw::message(b'F', &b)
}

/// Sends `frames` and reads up to `n` ReadyForQuery.
pub(crate) async fn ext(c: &mut RawPg, frames: &[BytesMut], n: usize) -> Reply {
    c.send(frames).await;
    c.read_ready(n).await
}

pub(crate) async fn ok(c: &mut RawPg, sql: &str) -> Reply {
    let r = c.simple(sql).await;
    assert_ok(sql, &r);
    assert_no_secrets(sql, &r.bytes);
    r
}

/// Guardrails only (no [[sensitive]] columns): where set_config and function calls are allowed.
pub(crate) async fn start_unmasked() -> (Gatehouse, String) {
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    (gh, token)
}

/// Whether public.orders still exists (checked directly on the database).
pub(crate) async fn orders_exist(gh: &Gatehouse) -> bool {
    direct(gh)
        .await
        .query_one("SELECT to_regclass('public.orders') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0)
}

// UTF-8 spellings of the look-alike names (the proxy decodes the KOI8U byte 0xAE as U+045E,
// PostgreSQL as U+255D).
const KOI8U_PROXY: &str = "s\u{045E}"; // what the proxy reads for b"s\xAE"
const KOI8U_SERVER: &str = "s\u{255D}"; // what PostgreSQL reads for b"s\xAE"

// ---------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------

/// `SET client_encoding` executed inside an unsynced batch changes how the server reads every
/// later message of the batch at once, but the proxy learns of it only at ReadyForQuery: the
/// Bind after it is read as UTF-8 by the proxy ("é", a harmless statement) and as LATIN1 by
/// the server ("Ã©", a statement reading ssn in an expression, which only its own plan masks).
#[tokio::test]
async fn finding_names_after_in_batch_encoding_change_are_read_in_the_old_encoding() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse("é", "SELECT 'nothing to see'::text AS v"),
            rawpg::parse("Ã©", "SELECT ssn || '' AS v FROM users ORDER BY id"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse both", &r);
    // Control: the sensitive statement by its own name is masked.
    let r = ext(
        &mut c,
        &[
            rawpg::bind("", "Ã©", &[], &[]),
            rawpg::describe(b'P', ""),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("control", &r);
    assert_no_secrets("control", &r.bytes);

    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SET client_encoding TO 'LATIN1'"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            // b"\xc3\xa9": "é" in UTF-8 (the proxy), "Ã©" in LATIN1 (the server).
            bind_b(b"", "é".as_bytes(), &[]),
            rawpg::describe(b'P', ""),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_no_secrets("Bind read in two encodings", &r.bytes);
}

/// PostgreSQL's KOI8U reads byte 0xAE as U+255D; the proxy's converter (WHATWG KOI8-U, which
/// is KOI8-RU) as U+045E. A statement name with that byte names one prepared statement to the
/// proxy and another to the server.
#[tokio::test]
async fn finding_koi8u_name_read_unlike_the_server_unmasks() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse(KOI8U_SERVER, "SELECT ssn || '' AS v FROM users ORDER BY id"),
            rawpg::parse(KOI8U_PROXY, "SELECT 'nothing to see'::text AS v"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse both", &r);
    ok(&mut c, "SET client_encoding TO 'KOI8U'").await;
    let r = ext(
        &mut c,
        &[
            bind_b(b"", b"s\xae", &[]),
            rawpg::describe(b'P', ""),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_no_secrets("Bind of s\\xAE under KOI8U", &r.bytes);
}

/// The same confusion in the audit trail: the server runs a DELETE, the trail records the
/// SELECT the proxy believed it ran.
#[tokio::test]
async fn finding_koi8u_name_confusion_records_another_statement() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse(KOI8U_SERVER, "DELETE FROM orders WHERE id = 10"),
            rawpg::parse(KOI8U_PROXY, "SELECT 'harmless' AS h"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse both", &r);
    ok(&mut c, "SET client_encoding TO 'KOI8U'").await;
    let r = ext(
        &mut c,
        &[
            bind_b(b"", b"s\xae", &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Execute", &r);
    let deleted: i64 = direct(&gh)
        .await
        .query_one("SELECT count(*) FROM orders WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 0, "the server ran the DELETE");
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "'harmless'").is_empty()
    })
    .await;
    assert!(
        statements_containing(&events, "DELETE FROM orders")
            .iter()
            .any(|e| e["outcome"]["status"] == "ok"),
        "the DELETE that ran is not in the audit trail as having run: {:#?}",
        statements_containing(&events, "harmless")
    );
}

/// PostgreSQL's EUC_CN reads 0xA1A4 as U+30FB (KATAKANA MIDDLE DOT), the proxy as U+00B7
/// (MIDDLE DOT). DROP of "the session's temporary table archive·2023" is allowed by the
/// built-in pack; the server drops the permanent table "archive・2023".
#[tokio::test]
async fn finding_euc_cn_drop_of_temporary_table_drops_permanent_table() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: format!(
            "{SETUP}\nCREATE TABLE \"archive\u{30FB}2023\" (id int); INSERT INTO \"archive\u{30FB}2023\" VALUES (1);"
        ),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "CREATE TEMP TABLE \"archive\u{B7}2023\" (id int)").await;
    // A refused DROP still has the proxy probe the session's temporary tables first.
    let r = c.simple("DROP TABLE orders").await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'EUC_CN'").await;
    c.send(&[query_b(b"DROP TABLE \"archive\xa1\xa42023\"")])
        .await;
    let r = c.read_ready(1).await;
    let exists: bool = direct(&gh)
        .await
        .query_one(
            "SELECT to_regclass('public.\"archive\u{30FB}2023\"') IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        exists,
        "the permanent table was dropped through the proxy: {}",
        r.describe()
    );
}

/// A setting changed by code the statement's text does not show — a cursor's query, run when
/// the cursor is fetched — is not followed by a wait for the server's report: the next query
/// string is analysed with standard_conforming_strings on while the server reads it with it
/// off. `SELECT 'a\' || ' ; DROP TABLE orders; COMMIT; -- '` is one SELECT of two literals to
/// the proxy, and SELECT; DROP TABLE; COMMIT to the server.
#[tokio::test]
async fn finding_setting_changed_by_a_fetched_cursor_smuggles_drop_table() {
    // Without [[sensitive]] columns (where any function call needs lineage, and set_config
    // has none), only the guardrails stand in the way.
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "BEGIN").await;
    ok(
        &mut c,
        "DECLARE c CURSOR FOR SELECT set_config('standard_conforming_strings', 'off', false)",
    )
    .await;
    // Text that is not plain ASCII has the proxy confirm the settings now (nothing changed
    // yet): the DECLARE's possible change is settled.
    ok(&mut c, "SELECT 'é'").await;
    c.send(&[
        rawpg::query("FETCH c"),
        rawpg::query("SELECT 'a\\' || ' ; DROP TABLE orders; COMMIT; -- '"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(
        orders_exist(&gh).await,
        "DROP TABLE orders ran on the server: {}",
        r.describe()
    );
}

/// The same through a column default of a temporary table (allowed DDL): INSERT … DEFAULT
/// VALUES runs set_config without showing it, no transaction needed.
#[tokio::test]
async fn finding_setting_changed_by_a_column_default_smuggles_drop_table() {
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE TEMP TABLE t (x text DEFAULT set_config('standard_conforming_strings', 'off', false))",
    )
    .await;
    ok(&mut c, "SELECT 'é'").await;
    c.send(&[
        rawpg::query("INSERT INTO t DEFAULT VALUES"),
        rawpg::query("SELECT 'a\\' || ' ; DROP TABLE orders; -- '"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(
        orders_exist(&gh).await,
        "DROP TABLE orders ran on the server: {}",
        r.describe()
    );
}

/// The session probe's rows arrive in the client encoding but are read as UTF-8: under LATIN1
/// a temporary view named "vé" is known to the proxy as "v\u{FFFD}", so the proxy's model of
/// the session's relations drifts from the server's and reading the view is refused as a
/// relation that does not exist (it works under UTF-8).
#[tokio::test]
async fn finding_probe_read_as_utf8_drifts_temporary_relations() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    // Control under UTF-8.
    ok(&mut c, "CREATE TEMP VIEW \"ué\" AS SELECT name FROM pets").await;
    let r = ok(&mut c, "SELECT name FROM \"ué\"").await;
    assert_eq!(r.cells(), vec!["Rex"], "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'LATIN1'").await;
    c.send(&[query_b(
        b"CREATE TEMP VIEW \"v\xe9\" AS SELECT name FROM pets",
    )])
    .await;
    assert_ok("CREATE TEMP VIEW under LATIN1", &c.read_ready(1).await);
    c.send(&[query_b(b"SELECT name FROM \"v\xe9\"")]).await;
    let r = c.read_ready(1).await;
    assert_ok("SELECT from the view under LATIN1", &r);
    assert_eq!(r.cells(), vec!["Rex"], "{}", r.describe());
}

/// A fastpath call Gatehouse refuses (here pg_read_file by OID) is refused without an audit
/// event or a log line, unlike the same call in SQL.
#[tokio::test]
async fn finding_refused_fastpath_calls_leave_no_trace() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "SELECT 'marker-before'").await;
    c.send(&[function_call(3826, &[b"/etc/passwd"])]).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    ok(&mut c, "SELECT 'marker-after'").await;
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "marker-after").is_empty()
    })
    .await;
    let before = events
        .iter()
        .position(|e| e["statement"] == "SELECT 'marker-before'")
        .unwrap();
    let after = events
        .iter()
        .position(|e| e["statement"] == "SELECT 'marker-after'")
        .unwrap();
    assert!(
        after > before + 1,
        "no audit event for the refused fastpath call between the markers: {:#?}",
        &events[before..=after]
    );
    assert!(
        gh.log().contains("3826"),
        "no log line for the refused fastpath call:\n{}",
        gh.log()
    );
}

// ---------------------------------------------------------------------------------------------
// Defences that hold
// ---------------------------------------------------------------------------------------------

/// Expressions over both sensitive columns: no RowDescription origin, only the plan masks them.
const EXPR_READ: &str = "SELECT email || '' AS e, ssn || '' AS s FROM users";

/// Text pipelined right after a SET client_encoding is read in the new encoding (the proxy
/// waits for the server's report; in an unsynced batch it asks the server in the batch).
#[tokio::test]
async fn defence_text_after_an_encoding_change_is_read_in_the_new_encoding() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[
        rawpg::query("SET client_encoding TO 'LATIN1'"),
        query_b(b"SELECT 'caf\xe9' AS v"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert_ok("pipelined LATIN1 text", &r);
    let row = r.msgs.iter().find(|m| m.tag == b'D').expect("a row");
    assert!(row.body.ends_with(b"caf\xe9"), "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'UTF8'").await;

    // In an unsynced batch: the Parse after the SET waits for Gatehouse's in-batch check of
    // the settings, then is read in LATIN1, as the server reads it.
    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SET client_encoding TO 'LATIN1'"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            parse_b(b"", b"SELECT 'caf\xe9' AS v"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert!(r.error().is_none() && r.complete(), "{}", r.describe());
    let row = r.msgs.iter().find(|m| m.tag == b'D').expect("a row");
    assert!(row.body.ends_with(b"caf\xe9"), "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'UTF8'").await;
    let r = c.simple(EXPR_READ).await;
    assert_no_secrets("after the batch", &r.bytes);
    assert_eq!(r.rows().len(), 3, "{}", r.describe());

    // A prepared SET run later (Bind/Execute) is followed the same way.
    ok(&mut c, "SET client_encoding TO 'UTF8'").await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse("setenc", "SET client_encoding TO 'LATIN1'"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse setenc", &r);
    c.send(&[
        rawpg::bind("", "setenc", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
        query_b(b"SELECT 'se\xf1or' AS v"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert_ok("prepared SET then LATIN1 text", &r);
    assert!(
        r.msgs
            .iter()
            .any(|m| m.tag == b'D' && m.body.ends_with(b"se\xf1or")),
        "{}",
        r.describe()
    );
}

/// Encoding changes undone by the server (ROLLBACK TO SAVEPOINT, ROLLBACK of SET LOCAL, a
/// rolled-back failed transaction) are followed before the next text is read. (RESET ALL and
/// DISCARD ALL are refused by the built-in pack as role switches.)
#[tokio::test]
async fn defence_encoding_changes_undone_by_the_server_are_followed() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let utf8_text = "SELECT 'café ☃' AS v";
    for (what, setup, undo) in [
        (
            "ROLLBACK TO SAVEPOINT",
            &["BEGIN", "SAVEPOINT s", "SET client_encoding TO 'LATIN1'"][..],
            "ROLLBACK TO SAVEPOINT s",
        ),
        (
            "ROLLBACK",
            &["BEGIN", "SET LOCAL client_encoding TO 'WIN1252'"][..],
            "ROLLBACK",
        ),
        (
            "an aborted transaction",
            &["BEGIN", "SET client_encoding TO 'KOI8R'"][..],
            "SELECT 1/0",
        ),
    ] {
        for s in setup {
            ok(&mut c, s).await;
        }
        c.send(&[rawpg::query(undo), rawpg::query(utf8_text)]).await;
        let r = c.read_ready(2).await;
        if undo == "SELECT 1/0" {
            // The failed transaction refuses the text; ROLLBACK undoes the change.
            assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
            c.send(&[rawpg::query("ROLLBACK"), rawpg::query(utf8_text)])
                .await;
            let r = c.read_ready(2).await;
            assert_ok(what, &r);
            assert!(
                r.cells().iter().any(|v| v == "café ☃"),
                "{what}: {}",
                r.describe()
            );
            continue;
        }
        assert_ok(what, &r);
        assert!(
            r.cells().iter().any(|v| v == "café ☃"),
            "{what}: {}",
            r.describe()
        );
        if c.simple("COMMIT").await.error().is_some() {
            panic!("{what}: session broken");
        }
    }
}

/// Masked columns, errors quoting sensitive values and COPY, read in single-byte and
/// multi-byte client encodings: nothing in clear (masked in the client's encoding, or
/// refused, or withheld).
#[tokio::test]
async fn defence_masking_holds_in_every_client_encoding() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for enc in [
        "LATIN1",
        "WIN1252",
        "EUC_JP",
        "KOI8U",
        "EUC_CN",
        "SQL_ASCII",
    ] {
        ok(&mut c, &format!("SET client_encoding TO '{enc}'")).await;
        for sql in [
            EXPR_READ,
            "SELECT email, ssn FROM users ORDER BY id",
            "SELECT ssn::int FROM users",
            "SELECT (ssn || 'é')::int FROM users",
            "COPY users TO STDOUT",
            "COPY users TO STDOUT (ENCODING 'LATIN1')",
            "COPY users TO STDOUT WITH ENCODING 'UTF8'",
            "COPY (SELECT ssn, email FROM users) TO STDOUT",
        ] {
            let r = c.simple(sql).await;
            assert!(r.complete(), "{enc}: {sql}: {}", r.describe());
            assert_no_secrets(&format!("{enc}: {sql}"), &r.bytes);
        }
        // Extended protocol with binary results.
        let r = ext(
            &mut c,
            &[
                rawpg::parse("", "SELECT email, ssn || '' FROM users"),
                rawpg::bind("", "", &[], &[1]),
                rawpg::execute("", 0),
                rawpg::sync(),
            ],
            1,
        )
        .await;
        assert_no_secrets(&format!("{enc}: binary"), &r.bytes);
    }
}

/// Under LATIN1 two temporary views whose names the probe reads alike ("xÀ" and "xÿ" both
/// become "x\u{FFFD}") collapse into one, but their column lists then disagree with the
/// surviving definition and lineage refuses: the collision is not a leak.
#[tokio::test]
async fn defence_colliding_temporary_view_names_are_refused_not_misread() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE TEMP VIEW \"x\u{C0}\" AS SELECT ssn || '' AS s FROM users",
    )
    .await;
    ok(
        &mut c,
        "CREATE TEMP VIEW \"x\u{FF}\" AS SELECT 'nothing to see'::text AS s",
    )
    .await;
    ok(&mut c, "CREATE TEMP VIEW v1 AS SELECT s FROM \"x\u{C0}\"").await;
    let r = ok(&mut c, "SELECT s FROM v1").await;
    assert_eq!(r.rows().len(), 3, "control: {}", r.describe());
    ok(&mut c, "SET client_encoding TO 'LATIN1'").await;
    // Temporary DDL has the proxy probe the session's temporary relations again, under LATIN1.
    ok(&mut c, "CREATE TEMP VIEW w AS SELECT 1 AS one").await;
    let r = c.simple("SELECT s FROM v1").await;
    assert!(r.complete(), "{}", r.describe());
    assert_no_secrets("v1 under LATIN1", &r.bytes);
}

/// Encodings whose multi-byte characters can hold ASCII bytes are never followed: however the
/// change is asked for, the session ends with an error before more text is analysed, and what
/// was pipelined behind it does not run.
#[tokio::test]
async fn defence_unsafe_encodings_end_the_session_before_more_text_runs() {
    let (gh, token) = start().await;
    for change in [
        "SET client_encoding TO 'SJIS'",
        "SET NAMES 'BIG5'",
        "SET client_encoding TO 'win936'",
        "SELECT set_config('client_encoding', 'GBK', false)",
        "UPDATE pg_settings SET setting = 'UHC' WHERE name = 'client_encoding'",
        "SET client_encoding TO 'EUC_TW'",
    ] {
        let mut c = RawPg::login(gh.port, "alice", &token).await;
        // 0x95 0x5C is one SJIS character: the backslash is no escape to the server.
        c.send(&[
            rawpg::query(change),
            query_b(b"SELECT E'\x95\\' ; DROP TABLE orders; --'"),
        ])
        .await;
        let r = c.read_ready(2).await;
        assert!(
            r.error().is_some() && !r.timed_out,
            "{change}: {}",
            r.describe()
        );
        assert!(orders_exist(&gh).await, "{change}: orders dropped");
        let after = c.simple("SELECT 1").await;
        assert!(
            after.closed || after.error().is_some() || after.cells() == vec!["1"],
            "{change}: {}",
            after.describe()
        );
    }
    // In the startup packet, directly or through options: refused at login.
    for params in [
        &[("client_encoding", "SJIS")][..],
        &[("options", "-c client_encoding=JOHAB")][..],
    ] {
        let mut all = vec![("user", "alice"), ("database", "app")];
        all.extend_from_slice(params);
        let mut s = raw::connect(gh.port).await;
        tokio::io::AsyncWriteExt::write_all(&mut s, &raw::startup(&all))
            .await
            .unwrap();
        let mut b = BytesMut::new();
        let msgs = raw::read_until_closed(&mut s, &mut b, Duration::from_secs(10)).await;
        assert!(
            msgs.iter().any(|m| m.tag == b'E') && !msgs.iter().any(|m| m.tag == b'Z'),
            "{params:?}: {msgs:?}"
        );
    }
}

/// FunctionCall misuse: inside a batch, with the wrong number of arguments, in a failed
/// transaction, pipelined with masked reads, and during COPY IN — each refused or answered by
/// the server, in order, with later results still masked and nothing hanging.
#[tokio::test]
async fn defence_fastpath_calls_stay_in_step() {
    // On a target with [[sensitive]] columns every large-object call is refused (lo_* have no
    // known lineage); the fastpath is exercised where it is allowed.
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let read = "SELECT total FROM orders ORDER BY id";
    // In an unsynced batch: refused (answered with its own ReadyForQuery, as the server answers
    // a FunctionCall); the rest of the batch then fails on the server, in order.
    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SELECT 1"),
            rawpg::bind("", "", &[], &[]),
            function_call(957, &[b"-1"]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        2,
    )
    .await;
    assert!(!r.timed_out && !r.closed, "{}", r.describe());
    assert!(r.error().is_some(), "{}", r.describe());
    assert!(!r.tags().contains('V'), "{}", r.describe());
    let extra = c.drain(Duration::from_millis(300)).await;
    let r = c.simple(read).await;
    assert_eq!(
        r.cells(),
        vec!["500", "700"],
        "after the batch (extra {}): {}",
        extra.describe(),
        r.describe()
    );

    // Wrong number of arguments for a known OID: refused, never sent.
    c.send(&[function_call(952, &[b"1"])]).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());

    // In a failed transaction: the server's error, in order.
    ok(&mut c, "BEGIN").await;
    let r = c.simple("SELECT 1/0").await;
    assert!(r.error().is_some(), "{}", r.describe());
    c.send(&[function_call(957, &[b"-1"]), rawpg::query(read)])
        .await;
    let r = c.read_ready(2).await;
    assert!(r.complete(), "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("25P02"), "{}", r.describe());
    assert!(
        !r.tags().contains('V') && !r.tags().contains('D'),
        "{}",
        r.describe()
    );
    ok(&mut c, "ROLLBACK").await;

    // Pipelined with masked reads: every answer matched to its request.
    c.send(&[
        function_call(957, &[b"-1"]),
        rawpg::query(read),
        function_call(957, &[b"-1"]),
        rawpg::query("SELECT name FROM pets"),
    ])
    .await;
    let r = c.read_ready(4).await;
    assert!(r.complete() && r.error().is_none(), "{}", r.describe());
    assert_eq!(r.msgs.iter().filter(|m| m.tag == b'V').count(), 2);
    assert_eq!(r.cells(), vec!["500", "700", "Rex"], "{}", r.describe());

    // During COPY IN the server takes a FunctionCall as a protocol violation (ERROR, then FATAL):
    // the session ends with the server's error and the proxy's FATAL, not silently, no hang.
    c.send(&[rawpg::query("COPY pets (id, name) FROM STDIN")])
        .await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "{}", r.describe());
    c.send(&[function_call(957, &[b"-1"]), rawpg::copy_done()])
        .await;
    let r = c.read_ready(2).await;
    assert!(!r.timed_out, "{}", r.describe());
    assert!(r.error().is_some(), "{}", r.describe());
}

/// Where columns are sensitive, a large object cannot be made from their values (in SQL) nor
/// read through the fastpath: large-object functions have no known lineage.
#[tokio::test]
async fn defence_large_objects_cannot_carry_sensitive_values() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for sql in [
        "SELECT lo_from_bytea(0, convert_to(ssn, 'UTF8')) FROM users",
        "SELECT lo_put(lo_create(0), 0, convert_to(email, 'UTF8')) FROM users",
        "SELECT lo_from_bytea(0, (SELECT convert_to(string_agg(ssn, ','), 'UTF8') FROM users))",
    ] {
        let r = c.simple(sql).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{sql}: {}",
            r.describe()
        );
    }
    for (oid, args) in [
        (3458u32, &[&b"1"[..]][..]),
        (954, &[&b"0"[..], &b"10"[..]][..]),
    ] {
        c.send(&[function_call(oid, args)]).await;
        let r = c.read_ready(1).await;
        assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    }
    assert_eq!(c.simple("SELECT 1").await.cells(), vec!["1"]);
}

/// The client is told the upstream's real PID with Gatehouse's own secret: a CancelRequest
/// with that PID and any other secret cancels nothing; the right pair cancels.
#[tokio::test]
async fn defence_cancel_needs_gatehouse_secret() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("can", "human", &[]).await;
    let (s, buf, seen) = raw::login_with(
        gh.port,
        raw::startup(&[("user", "can"), ("database", "app")]),
        &token,
    )
    .await;
    let key = seen.iter().find(|m| m.tag == b'K').expect("BackendKeyData");
    let pid = i32::from_be_bytes([key.body[0], key.body[1], key.body[2], key.body[3]]);
    let secret = i32::from_be_bytes([key.body[4], key.body[5], key.body[6], key.body[7]]);
    let mut c = RawPg::from_login(s, buf);
    let slow = "SELECT count(*) FROM generate_series(1, 8000000)";
    let cancel = |secret: i32| async move {
        let mut req = BytesMut::new();
        req.put_i32(16);
        req.put_i32(80_877_102);
        req.put_i32(pid);
        req.put_i32(secret);
        let mut s = raw::connect(gh.port).await;
        tokio::io::AsyncWriteExt::write_all(&mut s, &req)
            .await
            .unwrap();
        let mut b = BytesMut::new();
        raw::read_until_closed(&mut s, &mut b, Duration::from_secs(5)).await
    };
    for wrong in [secret.wrapping_add(1), secret ^ i32::MIN, 0] {
        c.send(&[rawpg::query(slow)]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = cancel(wrong).await;
        assert!(answer.is_empty(), "{answer:?}");
        let r = c.read_ready(1).await;
        assert!(
            r.complete() && r.error().is_none(),
            "wrong secret cancelled: {}",
            r.describe()
        );
    }
    c.send(&[rawpg::query(slow)]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel(secret).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
}

/// Protocol 3.2 startup: settings a client may not pass are refused as in 3.0, and `_pq_`
/// options never reach the server as settings.
#[tokio::test]
async fn defence_protocol_3_2_startup_is_filtered_like_3_0() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("neg", "human", &[]).await;
    let startup = |body: &[u8]| {
        let mut b = BytesMut::new();
        b.put_i32(8 + body.len() as i32);
        b.put_i32(3 << 16 | 2);
        b.put_slice(body);
        b
    };
    for body in [
        &b"user\0neg\0database\0app\0role\0postgres\0\0"[..],
        &b"user\0neg\0database\0app\0options\0-c session_replication_role=replica\0\0"[..],
        &b"user\0neg\0database\0app\0_PQ_.x\0y\0\0"[..],
    ] {
        let mut s = raw::connect(gh.port).await;
        tokio::io::AsyncWriteExt::write_all(&mut s, &startup(body))
            .await
            .unwrap();
        let mut b = BytesMut::new();
        let msgs = raw::read_until_closed(&mut s, &mut b, Duration::from_secs(10)).await;
        assert!(
            msgs.iter().any(|m| m.tag == b'E') && !msgs.iter().any(|m| m.tag == b'Z'),
            "{}: {msgs:?}",
            String::from_utf8_lossy(body)
        );
    }
    let (s, buf, _) = raw::login_with(
        gh.port,
        startup(b"user\0neg\0database\0app\0_pq_.gatehouse.identity\0bob\0\0"),
        &token,
    )
    .await;
    let mut c = RawPg::from_login(s, buf);
    let r = c
        .simple("SELECT current_setting('gatehouse.identity', true)")
        .await;
    assert_eq!(r.cells(), vec!["neg"], "{}", r.describe());
}

/// The server-side application_name is `gatehouse:<identity>/<client's>` so the server's own
/// views and logs show who is behind a session; a plain SET replaces it with anything,
/// another identity's prefix included, and pg_stat_activity (and `%a` in server logs) then
/// names that identity.
#[tokio::test]
async fn application_name_cannot_claim_another_identity() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let pid = ok(&mut c, "SELECT pg_backend_pid()").await.cells()[0].clone();
    // Claiming an identity is refused (in SET and set_config alike); a plain name is fine.
    for claim in [
        "SET application_name = 'gatehouse:bob/psql'",
        "SELECT set_config('application_name', 'GateHouse:bob', false)",
    ] {
        let r = c.simple(claim).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{claim}: {}",
            r.describe()
        );
    }
    let r = ok(&mut c, "SET application_name = 'report-job'").await;
    assert!(r.complete(), "{}", r.describe());
    ok(&mut c, "RESET application_name").await;
    let pid: i32 = pid.parse().unwrap();
    let seen: String = direct(&gh)
        .await
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        seen.starts_with("gatehouse:alice"),
        "the server attributes alice's session to: {seen:?}"
    );
}

//! Second round of attacks on wire fidelity, aimed at the fixes of the first
//! (`wire_attacks.rs`): text that could read differently is read only after the server answered
//! everything that *ran* (`Tracking::ran_unconfirmed`), the patched KOI8U/EUC_CN/EUC_JP
//! converters, and application_name that may not claim an identity. Each `finding_*` test is an
//! attack that worked when written, kept asserting the secure behaviour now that it is fixed
//! (Bind now counts as running code; text during COPY IN ends the session instead of waiting);
//! each `defence_*` test shows an attack that was stopped from the start.
//!
//! Findings (all fixed):
//! - Bind runs SQL too: a text parameter of a domain type is checked against the domain's CHECK
//!   constraint (and an unnamed statement is planned, folding immutable calls) while the Bind is
//!   processed. A temporary domain whose CHECK calls `set_config` changes client_encoding or
//!   standard_conforming_strings in the middle of an unsynced batch, yet `ran_unconfirmed` stays
//!   false (only Query/Execute/FunctionCall set it), so the next message's text is read with
//!   the old setting: a Bind naming another prepared statement (clear SSNs), or a Query that
//!   is a SELECT of two literals to the proxy and a DROP TABLE to the server.
//! - Text that is not plain ASCII sent while COPY FROM STDIN is in progress has the proxy wait
//!   for the COPY to end (`Up::settle`), which can only happen when the client's next message
//!   is read: the session hangs for good, and its upstream backend with it.

use super::{bind_b, ok, orders_exist, parse_b, start_unmasked};
use crate::raw;
use crate::session_integrity::rawpg::{self, RawPg, Reply};
use crate::session_integrity::{
    assert_no_secrets, assert_ok, direct, events_until, start, statements_containing,
};
use bytes::{BufMut, BytesMut};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Findings (helpers shared with the first round, in `wire_attacks`)
// ---------------------------------------------------------------------------------------------

/// A temporary domain whose CHECK runs `set_config('client_encoding', 'LATIN1')` is checked
/// when a Bind gives a parameter of that type: the server switches to LATIN1 during the Bind.
/// No Query/Execute/FunctionCall was sent since the proxy last settled (the batch's first
/// message is not plain ASCII), so the next Bind's statement name is read as UTF-8 by the
/// proxy ("é", a harmless statement) and as LATIN1 by the server ("Ã©", a statement reading
/// SSNs in an expression, which only its own plan masks): the SSNs arrive in clear.
#[tokio::test]
async fn finding_bind_runs_domain_check_that_changes_encoding_unmasks() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('client_encoding', 'LATIN1', false) IS NOT NULL)",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"é\" AS SELECT 'nothing to see'::text AS v",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"Ã©\" AS SELECT ssn || '' AS v FROM users ORDER BY id",
    )
    .await;
    c.send(&[
        // Not plain ASCII and first in the batch: the proxy settles here, then forgets that
        // anything ran.
        rawpg::parse("dé", "SELECT $1::pg_temp.d AS v"),
        // The domain's CHECK runs in the Bind: client_encoding is LATIN1 from here on.
        rawpg::bind("", "dé", &[Some("x")], &[]),
        // b"\xc3\xa9": "é" to the proxy, "Ã©" to the server.
        bind_b(b"", "é".as_bytes(), &[]),
        rawpg::describe(b'P', ""),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_no_secrets("Bind after a Bind that changed client_encoding", &r.bytes);
}

/// The same with standard_conforming_strings: the domain's CHECK turns it off during a Bind,
/// and a simple Query later in the same unsynced batch, `SELECT 'a\' || '; DROP TABLE orders;
/// -- '`, is a SELECT of two literals to the proxy and SELECT; DROP TABLE to the server. The
/// proxy ends the session when the server reports the setting, after the DROP ran.
#[tokio::test]
async fn finding_bind_runs_domain_check_that_turns_off_scs_smuggles_drop_table() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = c.simple("DROP TABLE orders").await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('standard_conforming_strings', 'off', false) IS NOT NULL)",
    )
    .await;
    c.send(&[
        rawpg::parse("dé", "SELECT $1::pg_temp.d AS v"),
        rawpg::bind("", "dé", &[Some("x")], &[]),
        rawpg::query("SELECT 'a\\' || '; DROP TABLE orders; -- '"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(
        orders_exist(&gh).await,
        "DROP TABLE orders ran on the server: {}",
        r.describe()
    );
}

/// `SELECT 'é'` while COPY FROM STDIN runs: the proxy waits for everything sent to be
/// answered before reading the text, but the COPY ends only with the client's next message,
/// which the proxy no longer reads. The server alone answers with a protocol-violation error;
/// through the proxy nothing comes back, and the upstream backend stays in COPY after the
/// client gave up. The same after an extended-protocol COPY whose Sync (ignored by the server
/// during COPY) let the proxy believe the batch ended.
#[tokio::test]
async fn finding_non_ascii_text_during_copy_in_hangs_the_session() {
    let (gh, token) = start_unmasked().await;
    // Simple protocol.
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let pid = ok(&mut c, "SELECT pg_backend_pid()").await.cells()[0].clone();
    c.send(&[rawpg::query("COPY pets (id, name) FROM STDIN")])
        .await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.tags().contains('G'), "{}", r.describe());
    c.send(&[rawpg::query("SELECT 'é'"), rawpg::copy_done()])
        .await;
    let r = c.read_ready(1).await;
    assert!(!r.timed_out, "simple protocol: no answer: {}", r.describe());
    drop(c);
    // Extended protocol, Sync sent during COPY.
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[
        rawpg::parse("", "COPY pets (id, name) FROM STDIN"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.tags().contains('G'), "{}", r.describe());
    c.send(&[
        rawpg::parse("é", "SELECT 1"),
        rawpg::copy_data(b"5\tZed\n"),
        rawpg::copy_done(),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(
        !r.timed_out,
        "extended protocol: no answer: {}",
        r.describe()
    );
    drop(c);
    // The first session's backend is gone once its client is.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pid: i32 = pid.parse().unwrap();
    let alive: bool = direct(&gh)
        .await
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!alive, "the upstream backend outlived its client");
}

// ---------------------------------------------------------------------------------------------
// Defences that hold
// ---------------------------------------------------------------------------------------------

/// A Parse pipelined right after a Query whose effect is hidden (a temporary table's column
/// default sets client_encoding) is read only after the Query was answered: the proxy reads
/// it in the new encoding, as the server does. The same for a Bind name after a FunctionCall.
#[tokio::test]
async fn defence_parse_after_a_query_in_flight_is_read_in_the_new_encoding() {
    let (gh, token) = start_unmasked().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE TEMP TABLE t (x text DEFAULT set_config('client_encoding', 'LATIN1', false))",
    )
    .await;
    ok(&mut c, "SELECT 'é'").await;
    c.send(&[
        rawpg::query("INSERT INTO t DEFAULT VALUES"),
        parse_b(b"", b"SELECT 'caf\xe9' AS v"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert_ok("Parse after the INSERT", &r);
    assert!(
        r.msgs
            .iter()
            .any(|m| m.tag == b'D' && m.body.ends_with(b"caf\xe9")),
        "{}",
        r.describe()
    );
}

/// Claims of another identity in application_name are refused however they are spelled:
/// Unicode and C-style escapes, adjacent literals, dollar quotes, identifiers, SET LOCAL and
/// SESSION, pg_settings, set_config with computed names or values, function SET clauses and
/// bodies, domain checks, column defaults, DO, ALTER ROLE; `options` in the startup packet
/// cannot override Gatehouse's own application_name (the server applies startup parameters
/// after `options`). pg_stat_activity names alice throughout.
#[tokio::test]
async fn defence_application_name_cannot_claim_an_identity_in_any_spelling() {
    let claims = [
        "SET application_name = U&'gatehouse\\003abob'",
        "SET application_name = U&'gatehouse!003abob' UESCAPE '!'",
        "SET application_name = E'gatehouse\\x3abob'",
        "SET application_name = 'gatehouse'\n':bob'",
        "SET application_name = \"gatehouse:bob\"",
        "SET application_name = $$gatehouse:bob$$",
        "SET LOCAL application_name = 'gatehouse:bob'",
        "SET SESSION application_name TO 'gatehouse:bob'",
        "UPDATE pg_settings SET setting = 'gatehouse:bob' WHERE name = 'application_name'",
        "SELECT set_config(n, 'gatehouse:bob', false) FROM (VALUES ('application_name')) v(n)",
        "SELECT set_config('application' || '_name', 'gatehouse:bob', false)",
        "SELECT set_config('APPLICATION_NAME', 'gatehouse:bob', false)",
        "SELECT set_config('application_name', 'gatehouse' || ':bob', false)",
        "SELECT set_config('application_name', upper('gatehouse:bob'), false)",
        "ALTER ROLE CURRENT_USER SET application_name = 'gatehouse:bob'",
        "CREATE FUNCTION pg_temp.h() RETURNS text LANGUAGE sql SET application_name = 'gatehouse:bob' AS $$ SELECT 1::text $$",
        "CREATE FUNCTION pg_temp.h2() RETURNS text LANGUAGE sql AS $$ SELECT set_config('application_name', 'gatehouse:bob', false) $$",
        "CREATE DOMAIN pg_temp.dd AS text CHECK (set_config('application_name', 'gatehouse:bob', false) IS NOT NULL)",
        "CREATE TEMP TABLE tdef (x text DEFAULT set_config('application_name', 'gatehouse:bob', false))",
        "DO $$ BEGIN PERFORM set_config('application_name', 'gatehouse:bob', false); END $$",
        "PREPARE p(text) AS SELECT set_config('application_name', $1, false)",
    ];
    for (gh, token) in [start().await, start_unmasked().await] {
        let mut c = RawPg::login(gh.port, "alice", &token).await;
        for claim in claims {
            let r = c.simple(claim).await;
            assert!(r.complete(), "{claim}: {}", r.describe());
            assert!(r.error().is_some(), "{claim}: {}", r.describe());
            ok(&mut c, "ROLLBACK").await;
            let r = ok(&mut c, "SHOW application_name").await;
            assert!(
                r.cells()[0].starts_with("gatehouse:alice"),
                "{claim}: {}",
                r.describe()
            );
        }
        for opts in [
            "-c application_name=gatehouse:bob",
            "--application_name=gatehouse:bob",
            "--application-name=gatehouse:bob",
            "-capplication_name=gatehouse:bob",
        ] {
            let (s, buf, _) = raw::login_with(
                gh.port,
                raw::startup(&[("user", "alice"), ("database", "app"), ("options", opts)]),
                &token,
            )
            .await;
            let mut c = RawPg::from_login(s, buf);
            let r = ok(
                &mut c,
                "SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            )
            .await;
            assert!(
                r.cells()[0].starts_with("gatehouse:alice"),
                "{opts}: {}",
                r.describe()
            );
        }
    }
}

/// Every one- and two-byte sequence PostgreSQL accepts in KOI8U, EUC_CN and EUC_JP (and
/// EUC_JP's three-byte JIS X 0212 forms) is read by the proxy as the server reads it: a query
/// holding all of them, sent through the proxy in that encoding, is audited with exactly the
/// text `convert_from` gives on the server.
#[tokio::test]
async fn defence_patched_converters_read_every_sequence_as_postgres_does() {
    let (gh, token) = start_unmasked().await;
    let db = direct(&gh).await;
    db.batch_execute(
        "CREATE OR REPLACE FUNCTION pg_temp.conv(enc text, b bytea) RETURNS text LANGUAGE plpgsql AS $$ \
         BEGIN RETURN convert_from(b, enc); EXCEPTION WHEN others THEN RETURN NULL; END $$",
    )
    .await
    .unwrap();
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let mut chunk_no = 0;
    let mut refused = Vec::new();
    for (enc, sql) in [
        (
            "KOI8U",
            "SELECT set_byte('\\x00'::bytea, 0, i) FROM generate_series(128, 255) i",
        ),
        (
            "EUC_CN",
            "SELECT set_byte(set_byte('\\x0000'::bytea, 0, i), 1, j) \
             FROM generate_series(161, 254) i, generate_series(161, 254) j",
        ),
        (
            "EUC_JP",
            "SELECT set_byte(set_byte('\\x0000'::bytea, 0, i), 1, j) \
             FROM generate_series(142, 254) i, generate_series(161, 254) j \
             UNION ALL SELECT set_byte(set_byte(set_byte('\\x000000'::bytea, 0, 143), 1, i), 2, j) \
             FROM generate_series(161, 254) i, generate_series(161, 254) j",
        ),
    ] {
        let rows = db
            .query(
                &format!("SELECT b, pg_temp.conv($1, b) FROM ({sql}) s(b)"),
                &[&enc],
            )
            .await
            .unwrap();
        let pairs: Vec<(Vec<u8>, String)> = rows
            .iter()
            .filter_map(|r| Some((r.get::<_, Vec<u8>>(0), r.get::<_, Option<String>>(1)?)))
            .collect();
        assert!(pairs.len() > 100, "{enc}: {}", pairs.len());
        ok(&mut c, &format!("SET client_encoding TO '{enc}'")).await;
        // Sequences the proxy refuses (22021) are refused whole, never misread: left out.
        let mut read: Vec<&(Vec<u8>, String)> = Vec::new();
        for chunk in pairs.chunks(1500) {
            let r = c
                .send_and_read(&[query_bytes(&literal_of(chunk.iter()))])
                .await;
            if r.error().is_none() {
                read.extend(chunk);
                continue;
            }
            assert_eq!(r.sqlstate().as_deref(), Some("22021"), "{}", r.describe());
            let singles: Vec<BytesMut> = chunk
                .iter()
                .map(|p| query_bytes(&literal_of(std::iter::once(p))))
                .collect();
            c.send(&singles).await;
            let r = c.read_ready(singles.len()).await;
            assert!(r.complete() && !r.timed_out, "{}", r.describe());
            let answers = r.msgs.iter().filter(|m| matches!(m.tag, b'C' | b'E'));
            for (p, a) in chunk.iter().zip(answers) {
                if a.tag == b'C' {
                    read.push(p);
                } else {
                    refused.push(format!("{enc} {}", hex(&p.0)));
                }
            }
        }
        for chunk in read.chunks(1500) {
            chunk_no += 1;
            let marker = format!("gh-cmp-{chunk_no}");
            let mut bytes = format!("SELECT '{marker}', ").into_bytes();
            bytes.extend_from_slice(&literal_of(chunk.iter().copied()));
            let mut expected = format!("SELECT '{marker}', '");
            for (_, text) in chunk.iter() {
                expected.push_str(text);
                expected.push(' ');
            }
            expected.push('\'');
            let r = c.send_and_read(&[query_bytes(&bytes)]).await;
            assert_ok(&format!("{enc} chunk {chunk_no}"), &r);
            let events = events_until(&gh, Duration::from_secs(10), |evs| {
                !statements_containing(evs, &marker).is_empty()
            })
            .await;
            let seen = statements_containing(&events, &marker);
            let seen = seen
                .first()
                .and_then(|e| e["statement"].as_str())
                .unwrap_or_default();
            if seen != expected {
                let diff: Vec<(char, char)> = seen
                    .chars()
                    .zip(expected.chars())
                    .filter(|(a, b)| a != b)
                    .take(10)
                    .collect();
                panic!("{enc}: the proxy reads differently from the server: {diff:?}");
            }
        }
        ok(&mut c, "SET client_encoding TO 'UTF8'").await;
    }
    // Refused by the proxy though the server reads them (an availability gap, not a misread).
    eprintln!("{} sequences refused: {refused:?}", refused.len());
}

/// A quoted literal of the sequences, each followed by a space.
fn literal_of<'a>(seqs: impl Iterator<Item = &'a (Vec<u8>, String)>) -> Vec<u8> {
    let mut b = vec![b'\''];
    for (bytes, _) in seqs {
        b.extend_from_slice(bytes);
        b.push(b' ');
    }
    b.push(b'\'');
    b
}

/// A simple Query message of `SELECT <sql bytes>`.
fn query_bytes(sql: &[u8]) -> BytesMut {
    let mut q = BytesMut::new();
    if !sql.starts_with(b"SELECT") {
        q.put_slice(b"SELECT ");
    }
    q.put_slice(sql);
    q.put_u8(0);
    raw::message(b'Q', &q)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

trait SendAndRead {
    async fn send_and_read(&mut self, frames: &[BytesMut]) -> Reply;
}

impl SendAndRead for RawPg {
    async fn send_and_read(&mut self, frames: &[BytesMut]) -> Reply {
        self.send(frames).await;
        self.read_ready(frames.len()).await
    }
}

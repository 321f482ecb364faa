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

// The rounds of attacks, each in a room of its own: the first round's findings and defences,
// then the second (Bind running code, COPY IN) and third (the in-batch settings check).
mod defences;
mod findings;
mod names;
mod quick_key;
mod round2;
mod round3;

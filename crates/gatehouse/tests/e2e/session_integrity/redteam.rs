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

mod defences;
mod names_and_state;
mod text_and_ddl;

//! The ordered queue that joins the session's two halves. For every client message that the
//! server answers, the client→upstream half pushes an `Expect` describing the answer it is
//! owed; the upstream→client half pops them as responses arrive. Refusals travel through the
//! same queue, so a client always sees responses in the order of its requests, however deep
//! its pipeline.
//!
//! A refused statement is replaced upstream by a *poison* message, a statement that fails to
//! parse, and the server's syntax error is swapped for Gatehouse's error on the way back. The
//! refused text never reaches the database, yet the server's own state machine does the rest:
//! inside a transaction block the transaction is failed exactly as for a server error (and
//! ROLLBACK recovers), and in the extended protocol everything up to Sync is skipped.

use bytes::Bytes;
use model::{AuditEvent, Outcome};
use std::collections::VecDeque;
use std::time::Instant;

/// A statement in flight: its event (statement, params, identity already filled) and the
/// audit queue slot reserved for it before the statement was forwarded.
pub struct StmtAudit {
    /// Masks for the statement's result columns, if any column needs one.
    pub mask: Option<std::sync::Arc<crate::mask_plan::MaskPlan>>,
    /// Extended protocol: the result formats from Bind (RowDescription from a statement
    /// Describe does not know them yet). None for a simple query.
    pub formats: Option<Vec<i16>>,
    /// Extended protocol: the prepared statement this Execute runs.
    pub statement_name: Option<String>,
    pub event: AuditEvent,
    pub slot: Option<audit::AuditSlot>,
    pub started: Instant,
}

impl StmtAudit {
    /// Completes the event with how the statement ended and hands it to the audit writer.
    pub fn complete(mut self, outcome: Outcome, rows: Option<u64>) {
        self.event.outcome = outcome;
        self.event.rows = rows;
        let micros = self.started.elapsed().as_micros();
        self.event.duration_us = Some(u64::try_from(micros).unwrap_or(u64::MAX));
        if let Some(slot) = self.slot.take() {
            slot.send(self.event);
        }
    }
}

// Execute (with its audit event) is the common variant; boxing it would cost an allocation
// per statement to shrink the rare small ones.
#[allow(clippy::large_enum_variant)]
pub enum Expect {
    /// A simple Query: one completion (CommandComplete, EmptyQueryResponse or
    /// ErrorResponse) per statement, then ReadyForQuery.
    Query(VecDeque<StmtAudit>),
    /// ParseComplete; the statement's remembered result types are forgotten.
    Parse(String),
    /// BindComplete.
    Bind,
    /// ParameterDescription (for a statement), then RowDescription or NoData. Carries the
    /// prepared statement described (directly or through a portal), whose result types are
    /// remembered for masking rows of later Executes that skip Describe.
    Describe(Option<String>),
    /// CloseComplete.
    Close,
    /// Rows, then CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute(StmtAudit),
    /// ReadyForQuery.
    Sync,
    /// A poison message stands in for a refused request; its ErrorResponse is replaced by
    /// `error`. `simple`: a Query (then ReadyForQuery follows); else a Parse.
    Refused { error: Bytes, simple: bool },
    /// A fatal error: send it and end the session.
    Fatal(Bytes),
}

/// Text sent upstream in place of a refused statement: it cannot parse (SQLSTATE 42601), so
/// nothing runs.
pub const POISON_SQL: &str = "gatehouse refused";

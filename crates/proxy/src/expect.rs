//! The ordered queue that joins the session's two halves. For every client message that the
//! server answers, the client→upstream half pushes an `Expect` describing the answer it is
//! owed; the upstream→client half pops them as responses arrive. Answers Gatehouse produces
//! itself (`Local`) travel through the same queue, so a client always sees responses in the
//! order of its requests, however deep its pipeline.

use bytes::Bytes;
use model::{AuditEvent, Outcome};
use std::collections::VecDeque;
use std::time::Instant;

/// A statement in flight: its event (statement, params, identity already filled) and the
/// audit queue slot reserved for it before the statement was forwarded.
pub struct StmtAudit {
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

pub enum Expect {
    /// A simple Query: one completion (CommandComplete, EmptyQueryResponse or
    /// ErrorResponse) per statement, then ReadyForQuery.
    Query(VecDeque<StmtAudit>),
    /// ParseComplete.
    Parse,
    /// BindComplete.
    Bind,
    /// ParameterDescription (for a statement), then RowDescription or NoData.
    Describe,
    /// CloseComplete.
    Close,
    /// Rows, then CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute(StmtAudit),
    /// ReadyForQuery.
    Sync,
    /// An error Gatehouse answers itself, due when everything before it is answered;
    /// `ready` adds a ReadyForQuery with the then-current transaction status (simple query).
    Local { error: Bytes, ready: bool },
    /// A fatal error: send it and end the session.
    Fatal(Bytes),
}

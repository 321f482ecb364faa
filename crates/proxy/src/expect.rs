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

use crate::state::{Effect, Plan};
use bytes::Bytes;
use model::{AuditEvent, Outcome};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

/// A statement in flight: its event (statement, params, identity already filled), the audit
/// queue slot reserved for it before the statement was forwarded, and how its rows are masked.
pub struct StmtAudit {
    /// Where the plan for its rows comes from, resolved against the confirmed session state
    /// when they arrive. An Execute's is the plan of the portal it runs.
    pub result: Plan,
    /// What it changes in the server's namespaces when it succeeds (simple query); an
    /// Execute applies its portal's effects instead.
    pub effects: Arc<[Effect]>,
    /// Extended protocol: the portal this Execute runs.
    pub portal: Option<String>,
    pub event: AuditEvent,
    pub slot: Option<audit::AuditSlot>,
    pub started: Instant,
    /// A write whose transaction's COMMIT waits for approval: its outcome is told here too
    /// (`Some(rows)` once it succeeded), for the approver.
    pub tally: Option<Tally>,
}

/// Where a deferred write's row count is told (see `StmtAudit::tally`).
pub type Tally = std::sync::Arc<std::sync::Mutex<Option<Option<u64>>>>;

impl StmtAudit {
    /// Completes the event with how the statement ended and hands it to the audit writer.
    pub fn complete(mut self, outcome: Outcome, rows: Option<u64>) {
        if let (Some(t), Outcome::Ok) = (&self.tally, &outcome) {
            *t.lock().unwrap_or_else(|p| p.into_inner()) = Some(rows);
        }
        self.event.outcome = outcome;
        self.event.rows = rows;
        let micros = self.started.elapsed().as_micros();
        self.event.duration_us = Some(u64::try_from(micros).unwrap_or(u64::MAX));
        if let Some(slot) = self.slot.take() {
            slot.send(self.event);
        }
    }
}

/// One result of a `Peek`: its column names and rows (text).
#[derive(Debug, Default, Clone)]
pub struct PeekResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Which object a Describe or Close names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    Statement(String),
    Portal(String),
}

// Execute (with its audit event) is the common variant; boxing it would cost an allocation
// per statement to shrink the rare small ones.
#[allow(clippy::large_enum_variant)]
pub enum Expect {
    /// A simple Query: one completion (CommandComplete, EmptyQueryResponse or
    /// ErrorResponse) per statement, then ReadyForQuery.
    Query(VecDeque<StmtAudit>),
    /// A FunctionCall (fastpath), audited as the equivalent SQL call: FunctionCallResponse or
    /// ErrorResponse completes it, then ReadyForQuery.
    FunctionCall(VecDeque<StmtAudit>),
    /// ParseComplete: the statement exists on the server with this plan and these effects.
    Parse {
        name: String,
        /// Which preparation of the name this is (`relay_up::names`).
        id: u64,
        plan: Plan,
        effects: Arc<[Effect]>,
    },
    /// BindComplete: the portal runs the statement. `extra`: masks of the statement planned
    /// again at Bind, added to those it was prepared with.
    Bind {
        portal: String,
        statement: String,
        formats: Vec<i16>,
        extra: Option<Arc<crate::mask_plan::MaskPlan>>,
    },
    /// ParameterDescription (for a statement), then RowDescription or NoData.
    Describe(Named),
    /// CloseComplete.
    Close(Named),
    /// A Describe of a portal Gatehouse added before an Execute the client sent without
    /// one, so the rows' column origins are known: its RowDescription or NoData is kept
    /// from the client.
    HiddenDescribe(String),
    /// Rows, then CommandComplete, EmptyQueryResponse or PortalSuspended.
    Execute(StmtAudit),
    /// ReadyForQuery.
    Sync,
    /// The client ended a COPY IN (CopyDone or CopyFail) before the server's CopyInResponse
    /// was seen: Syncs queued before this marker were sent during COPY and the server
    /// ignores them. No response answers it.
    CopyEnd,
    /// A Sync the client sent during a COPY IN. The server ignores it while in COPY mode, but
    /// answers it if an error ended the COPY before the server read it: a ReadyForQuery at the
    /// head answers it; any other response means it was ignored. A COPY that completes had
    /// every one of them ignored.
    SyncInCopy,
    /// A poison message stands in for a refused request; its ErrorResponse is replaced by
    /// `error`. `simple`: a Query (then ReadyForQuery follows); else a Parse.
    Refused { error: Bytes, simple: bool },
    /// A fatal error: send it and end the session.
    Fatal(Bytes),
    /// A query string of Gatehouse's own inside the client's transaction (reading the rows a
    /// held COMMIT would make durable): nothing of its answer reaches the client; its results
    /// go to `reply`.
    Peek {
        reply: Option<tokio::sync::oneshot::Sender<Result<Vec<PeekResult>, String>>>,
        results: Vec<PeekResult>,
        error: Option<String>,
    },
    /// Gatehouse's own `ROLLBACK` (a transaction whose COMMIT was refused): its
    /// CommandComplete and ReadyForQuery do not reach the client; the refusal that follows
    /// it does.
    Rollback,
    /// A notice of Gatehouse's own (a statement held for approval): sent when it reaches
    /// the head, answers nothing.
    Notice(Bytes),
    /// Gatehouse's check of the text settings in the middle of an unsynced batch (see
    /// `relay_up::text`): ParseComplete, BindComplete, a DataRow, CommandComplete and two
    /// CloseCompletes, none of which reach the client; `seen` counts them. `reply` gets
    /// `Err` with the server's error if the check failed (the error then goes to the client
    /// in place of its own message's).
    TextCheck {
        reply: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
        seen: u8,
        confirmed: bool,
    },
    /// A probe of Gatehouse's own (see `probe`): its responses go to `reply`, not the client.
    Probe {
        reply: Option<tokio::sync::oneshot::Sender<crate::probe::ProbeResult>>,
        rows: Vec<Vec<Option<String>>>,
        error: Option<String>,
    },
}

/// Text sent upstream in place of a refused statement: it cannot parse (SQLSTATE 42601), so
/// nothing runs.
pub const POISON_SQL: &str = "gatehouse refused";

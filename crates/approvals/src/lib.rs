//! The approval lifecycle of a held statement: requested → approved / denied / expired /
//! withdrawn, with the rules of who may decide, and the registry the waiting sessions and the
//! approvers meet in.
//!
//! Rules ([`Request::vote`]): the requester never decides their own request; agents never
//! decide; an approver must be in one of the request's approver groups, or in the break-glass
//! group (flagged in the evidence); every decision carries a reason; each person votes once; a
//! denial ends the request at once; `quorum` distinct approvals approve it. A request decided,
//! expired or withdrawn never changes again.
//!
//! One-time grants: a request whose session stopped waiting (the client could not wait as long
//! as the request stays open) remains open; once approved, the same identity re-running the
//! same statement on the same target (same [`grant_key`]) within the grant window runs it
//! **once** ([`Registry::consume`]). Every run of an approved request consumes it, the waiting
//! session's included, so an approval never runs a statement twice.
//!
//! Time is passed in (epoch milliseconds); this crate reads no clock and owns no socket. The
//! registry keeps every request it opened, bounded by [`Registry::MAX_FINISHED`] finished ones
//! (oldest dropped first), and writes each change through an [`ApprovalStore`] when it has one
//! (open requests and unused grants then survive a restart); the audit trail is the durable
//! record of every step.

mod registry;

pub use registry::{Event, EventKind, Grant, Registry};

use model::{Identity, IdentityKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a held statement asks approval for: everything an approver needs to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestSpec {
    pub requester: String,
    pub requester_kind: String,
    pub requester_groups: Vec<String>,
    pub session: String,
    pub client_addr: Option<String>,
    pub application_name: Option<String>,
    pub target: String,
    pub environment: Option<String>,
    /// The statement as the client sent it.
    pub statement: String,
    /// Bound parameters, already passed through the value detectors for display.
    pub params: Vec<Option<String>>,
    pub command: String,
    pub tables: Vec<String>,
    pub columns: Vec<String>,
    /// The policy that asked for approval, and its reason.
    pub policy_id: String,
    pub reason: String,
    pub approver_groups: Vec<String>,
    pub quorum: u32,
    /// Held inside a transaction block (locks stay held: a shorter maximum applies).
    pub in_transaction: bool,
    /// For a write: the planner's estimate of the rows it affects (EXPLAIN on a side
    /// connection, never the client's); `None` when it could not be had.
    #[serde(default)]
    pub estimated_rows: Option<u64>,
    /// For a held COMMIT (`@approval_mode("commit")`): the writes of the transaction that
    /// already ran in it and wait on this approval to be committed, with their row counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transaction: Vec<TxStatement>,
    /// For a held COMMIT: the first rows the transaction inserted or updated, per table
    /// (sensitive columns masked, other text through the value detectors).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed_rows: Vec<ChangedRows>,
}

/// The first rows a held transaction wrote to one table, as the approver sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangedRows {
    pub table: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
    /// Why no rows could be read, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
}

/// A write that ran inside a transaction whose COMMIT is held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxStatement {
    pub statement: String,
    /// Its bound parameters, through the value detectors (extended protocol).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<Option<String>>,
    /// Rows it affected (`None`: the server did not say).
    pub rows: Option<u64>,
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Pending,
    Approved,
    Denied,
    Expired,
    /// The client cancelled, disconnected, or the session ended.
    Withdrawn,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "pending",
            State::Approved => "approved",
            State::Denied => "denied",
            State::Expired => "expired",
            State::Withdrawn => "withdrawn",
        }
    }
}

/// One person's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub approver: String,
    pub approve: bool,
    pub reason: String,
    pub at_ms: i64,
    /// Decided through the break-glass group rather than an approver group.
    pub break_glass: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub id: String,
    #[serde(flatten)]
    pub spec: RequestSpec,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    pub state: State,
    pub votes: Vec<Vote>,
    /// Why it was withdrawn, when it was.
    pub withdrawn_because: Option<String>,
    /// What a re-run must match to use the approval (see [`grant_key`]); empty: never.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub grant_key: String,
    /// When it was approved, denied, expired or withdrawn.
    #[serde(default)]
    pub decided_at_ms: Option<i64>,
    /// When its approval was used to run the statement, and by which session (once only).
    #[serde(default)]
    pub used_at_ms: Option<i64>,
    #[serde(default)]
    pub used_by_session: Option<String>,
}

/// Why a vote was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VoteError {
    #[error("no approval request {0}")]
    NotFound(String),
    #[error("request {id} is already {state}", state = .state.as_str())]
    NotPending { id: String, state: State },
    #[error("you cannot approve or deny your own request")]
    OwnRequest,
    #[error("agents cannot approve or deny requests")]
    Agent,
    #[error("you are not in an approver group of this request ({0})")]
    NotAnApprover(String),
    #[error("a reason is required")]
    NoReason,
    #[error("you already decided on this request")]
    AlreadyVoted,
    /// The approval store could not record the vote: it is not counted.
    #[error("the approval store cannot record a vote now: {0}")]
    Unavailable(String),
}

/// Why an approval could not be used to run the statement.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UseError {
    #[error("no approval request {0}")]
    NotFound(String),
    #[error("request {id} is {state}, not approved", state = .state.as_str())]
    NotApproved { id: String, state: State },
    #[error("the approval of request {0} was already used")]
    AlreadyUsed(String),
    #[error("the approval of request {0} is past its grant window")]
    WindowClosed(String),
    #[error("the approval store cannot record the use: {0}")]
    Unavailable(String),
}

/// Where the registry writes every change (a SQLite table now; a shared PostgreSQL store
/// later), and reads the requests back at start.
pub trait ApprovalStore: Send + Sync {
    /// Inserts or replaces `request` (keyed by its id).
    fn save(&self, request: &Request) -> Result<(), String>;
    /// Requests still pending, or approved with their grant not yet used, oldest first.
    fn load_open(&self) -> Result<Vec<Request>, String>;
}

/// The key a re-run must match to use a one-time grant: who, where, the requirement that was
/// approved (policy and approver groups, quorum), the statement text exactly as sent and its
/// parameters. Hex SHA-256 over length-prefixed fields (no field can run into the next).
pub fn grant_key(
    requester: &str,
    target: &str,
    requirement: &str,
    statement: &str,
    params: &[Option<String>],
) -> String {
    let mut h = Sha256::new();
    let mut field = |b: &[u8]| {
        h.update((b.len() as u64).to_be_bytes());
        h.update(b);
    };
    field(b"gatehouse-grant-v1");
    field(requester.as_bytes());
    field(target.as_bytes());
    field(requirement.as_bytes());
    field(statement.as_bytes());
    for p in params {
        match p {
            Some(v) => {
                field(b"v");
                field(v.as_bytes());
            }
            None => field(b"n"),
        }
    }
    let digest = h.finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a vote did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded; more approvals are needed.
    Counted {
        approvals: u32,
        quorum: u32,
    },
    Approved,
    Denied,
}

impl Request {
    /// Records `approver`'s decision at `now_ms` (see the module docs for the rules).
    pub fn vote(
        &mut self,
        approver: &Identity,
        approve: bool,
        reason: &str,
        now_ms: i64,
        break_glass_group: Option<&str>,
    ) -> Result<Outcome, VoteError> {
        if self.state != State::Pending {
            return Err(VoteError::NotPending {
                id: self.id.clone(),
                state: self.state,
            });
        }
        if approver.name == self.spec.requester {
            return Err(VoteError::OwnRequest);
        }
        if approver.kind != IdentityKind::Human {
            return Err(VoteError::Agent);
        }
        let in_group = approver
            .groups
            .iter()
            .any(|g| self.spec.approver_groups.contains(g));
        let break_glass =
            !in_group && break_glass_group.is_some_and(|b| approver.groups.iter().any(|g| g == b));
        if !in_group && !break_glass {
            return Err(VoteError::NotAnApprover(
                self.spec.approver_groups.join(", "),
            ));
        }
        let reason = reason.trim();
        if !reason.chars().any(|c| !c.is_whitespace() && !invisible(c)) {
            return Err(VoteError::NoReason);
        }
        if self.votes.iter().any(|v| v.approver == approver.name) {
            return Err(VoteError::AlreadyVoted);
        }
        self.votes.push(Vote {
            approver: approver.name.clone(),
            approve,
            reason: reason.to_owned(),
            at_ms: now_ms,
            break_glass,
        });
        if !approve {
            self.state = State::Denied;
            self.decided_at_ms = Some(now_ms);
            return Ok(Outcome::Denied);
        }
        let approvals = self.approvals();
        // A break-glass approval stands alone: it is the emergency path.
        if break_glass || approvals >= self.spec.quorum.max(1) {
            self.state = State::Approved;
            self.decided_at_ms = Some(now_ms);
            return Ok(Outcome::Approved);
        }
        Ok(Outcome::Counted {
            approvals,
            quorum: self.spec.quorum,
        })
    }

    /// Distinct approvals so far.
    pub fn approvals(&self) -> u32 {
        u32::try_from(self.votes.iter().filter(|v| v.approve).count()).unwrap_or(u32::MAX)
    }

    /// The deciding vote of a denied request.
    pub fn denial(&self) -> Option<&Vote> {
        self.votes.iter().find(|v| !v.approve)
    }
}

/// Control and format characters (NUL, zero-width spaces, direction marks, BOM): no reason is
/// made of them.
fn invisible(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{00ad}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}')
}

#[cfg(test)]
mod tests;

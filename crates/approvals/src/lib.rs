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
//! Time is passed in (epoch milliseconds); this crate reads no clock and owns no socket. The
//! registry keeps every request it opened until the process ends, bounded by
//! [`Registry::MAX_FINISHED`] finished ones (oldest dropped first); the audit trail is the
//! durable record of every step.

use model::{Identity, IdentityKind};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use tokio::sync::watch;

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
            return Ok(Outcome::Denied);
        }
        let approvals = self.approvals();
        // A break-glass approval stands alone: it is the emergency path.
        if break_glass || approvals >= self.spec.quorum.max(1) {
            self.state = State::Approved;
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

struct Entry {
    request: Request,
    state: watch::Sender<State>,
}

/// Open and finished requests of this process, and the sessions waiting on them.
pub struct Registry {
    inner: Mutex<Inner>,
    break_glass_group: Option<String>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Finished requests, oldest first (for the bound).
    finished: VecDeque<String>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    /// Finished requests kept for `show` and history.
    pub const MAX_FINISHED: usize = 10_000;

    pub fn new(break_glass_group: Option<String>) -> Self {
        Registry {
            inner: Mutex::new(Inner::default()),
            break_glass_group,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a request under `id` (unique, chosen by the caller); the receiver follows its state.
    pub fn open(
        &self,
        id: String,
        spec: RequestSpec,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> (Request, watch::Receiver<State>) {
        let request = Request {
            id: id.clone(),
            spec,
            created_at_ms: now_ms,
            expires_at_ms,
            state: State::Pending,
            votes: Vec::new(),
            withdrawn_because: None,
        };
        let (tx, rx) = watch::channel(State::Pending);
        self.lock().entries.insert(
            id,
            Entry {
                request: request.clone(),
                state: tx,
            },
        );
        (request, rx)
    }

    /// A vote by `approver`; the request as it stands after it.
    pub fn vote(
        &self,
        id: &str,
        approver: &Identity,
        approve: bool,
        reason: &str,
        now_ms: i64,
    ) -> Result<(Request, Outcome), VoteError> {
        let mut g = self.lock();
        let entry = g
            .entries
            .get_mut(id)
            .ok_or_else(|| VoteError::NotFound(id.to_owned()))?;
        if entry.request.state == State::Pending && now_ms >= entry.request.expires_at_ms {
            // Too late, even if the waiting session has not noticed yet.
            entry.request.state = State::Expired;
            entry.state.send_replace(State::Expired);
        }
        let outcome = entry.request.vote(
            approver,
            approve,
            reason,
            now_ms,
            self.break_glass_group.as_deref(),
        )?;
        let request = entry.request.clone();
        if request.state != State::Pending {
            entry.state.send_replace(request.state);
            g.finished.push_back(id.to_owned());
            trim(&mut g);
        }
        Ok((request, outcome))
    }

    /// Ends a pending request as expired or withdrawn; `None` if it was no longer pending
    /// (it was decided first: the caller must follow that decision).
    pub fn finish(&self, id: &str, state: State, because: Option<&str>) -> Option<Request> {
        let mut g = self.lock();
        let entry = g.entries.get_mut(id)?;
        if entry.request.state != State::Pending {
            return None;
        }
        entry.request.state = state;
        entry.request.withdrawn_because = because.map(str::to_owned);
        entry.state.send_replace(state);
        let request = entry.request.clone();
        g.finished.push_back(id.to_owned());
        trim(&mut g);
        Some(request)
    }

    /// Whether `who` may see `request`: its requester, a member of one of its approver
    /// groups, or of the break-glass group.
    pub fn may_see(&self, request: &Request, who: &Identity) -> bool {
        who.name == request.spec.requester
            || who.groups.iter().any(|g| {
                request.spec.approver_groups.contains(g)
                    || self.break_glass_group.as_deref() == Some(g.as_str())
            })
    }

    pub fn get(&self, id: &str) -> Option<Request> {
        self.lock().entries.get(id).map(|e| e.request.clone())
    }

    /// Pending requests, oldest first.
    pub fn pending(&self) -> Vec<Request> {
        let mut v: Vec<Request> = self
            .lock()
            .entries
            .values()
            .filter(|e| e.request.state == State::Pending)
            .map(|e| e.request.clone())
            .collect();
        v.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        v
    }
}

fn trim(g: &mut Inner) {
    while g.finished.len() > Registry::MAX_FINISHED {
        if let Some(old) = g.finished.pop_front() {
            g.entries.remove(&old);
        }
    }
}

#[cfg(test)]
mod tests;

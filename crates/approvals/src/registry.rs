//! The registry the waiting sessions, the approvers and the one-time grants meet in.

use crate::{ApprovalStore, Outcome, Request, RequestSpec, State, UseError, Vote, VoteError};
use model::Identity;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, watch};

struct Entry {
    request: Request,
    state: watch::Sender<State>,
}

/// What happened to a request (for notifications and the console's stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Opened,
    /// A vote was counted (the request may still be pending: quorum).
    Voted,
    /// Expired or withdrawn.
    Finished,
    /// Its approval ran the statement.
    Used,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Opened => "opened",
            EventKind::Voted => "voted",
            EventKind::Finished => "finished",
            EventKind::Used => "used",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub kind: EventKind,
    pub request: Request,
}

/// What a held statement finds for its grant key.
pub enum Grant {
    /// Nothing open: a new request is needed.
    None,
    /// A request for the same statement is still pending: wait on it rather than ask again.
    Pending(Request, watch::Receiver<State>),
    /// Approved and not yet used, within its window: [`Registry::consume`] it to run.
    Approved(Request),
}

/// Open and finished requests of this process, and the sessions waiting on them.
pub struct Registry {
    inner: Mutex<Inner>,
    break_glass_group: Option<String>,
    /// How long after its approval a grant may be used by a re-run.
    grant_window_ms: i64,
    store: Option<Arc<dyn ApprovalStore>>,
    events: broadcast::Sender<Event>,
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
    /// Default grant window: 15 minutes.
    pub const DEFAULT_GRANT_WINDOW_MS: i64 = 15 * 60 * 1000;

    pub fn new(break_glass_group: Option<String>) -> Self {
        Registry {
            inner: Mutex::new(Inner::default()),
            break_glass_group,
            grant_window_ms: Self::DEFAULT_GRANT_WINDOW_MS,
            store: None,
            events: broadcast::channel(1024).0,
        }
    }

    pub fn with_grant_window_ms(mut self, ms: i64) -> Self {
        self.grant_window_ms = ms.max(0);
        self
    }

    /// Writes every change through `store`, and takes back the requests it kept open (their
    /// sessions are gone; they remain for approvers and as grants). A request that was
    /// pending when the previous process stopped stays pending until it expires.
    pub fn with_store(mut self, store: Arc<dyn ApprovalStore>) -> Result<Self, String> {
        let open = store.load_open()?;
        {
            let mut g = self.lock();
            for request in open {
                let (tx, _) = watch::channel(request.state);
                g.entries
                    .insert(request.id.clone(), Entry { request, state: tx });
            }
        }
        self.store = Some(store);
        Ok(self)
    }

    pub fn break_glass_group(&self) -> Option<&str> {
        self.break_glass_group.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, r: &Request) -> Result<(), String> {
        match &self.store {
            Some(s) => s.save(r),
            None => Ok(()),
        }
    }

    fn emit(&self, kind: EventKind, request: &Request) {
        // No receiver is not an error: nobody listens.
        let _ = self.events.send(Event {
            kind,
            request: request.clone(),
        });
    }

    /// Every change from now on, in order (a receiver that falls more than 1,024 behind
    /// is told it lagged).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Opens a request under `id` (unique, chosen by the caller); the receiver follows its
    /// state. Fails when the store cannot record it (the statement is then refused).
    pub fn open(
        &self,
        id: String,
        spec: RequestSpec,
        grant_key: String,
        now_ms: i64,
        expires_at_ms: i64,
    ) -> Result<(Request, watch::Receiver<State>), String> {
        let request = Request {
            id: id.clone(),
            spec,
            created_at_ms: now_ms,
            expires_at_ms,
            state: State::Pending,
            votes: Vec::new(),
            withdrawn_because: None,
            grant_key,
            decided_at_ms: None,
            used_at_ms: None,
            used_by_session: None,
        };
        let (tx, rx) = watch::channel(State::Pending);
        {
            let mut g = self.lock();
            self.save(&request)?;
            g.entries.insert(
                id,
                Entry {
                    request: request.clone(),
                    state: tx,
                },
            );
        }
        self.emit(EventKind::Opened, &request);
        Ok((request, rx))
    }

    /// What is open for `grant_key` at `now_ms`: a pending request to wait on, an approval
    /// to use, or nothing.
    pub fn grant_for(&self, grant_key: &str, now_ms: i64) -> Grant {
        if grant_key.is_empty() {
            return Grant::None;
        }
        let g = self.lock();
        let mut best: Option<&Entry> = None;
        for e in g.entries.values() {
            let r = &e.request;
            if r.grant_key != grant_key {
                continue;
            }
            let usable = match r.state {
                State::Pending => now_ms < r.expires_at_ms,
                State::Approved => r.used_at_ms.is_none() && self.in_window(r, now_ms),
                _ => false,
            };
            // An approval to use comes first, then the oldest pending request.
            let better = best.is_none_or(|b| {
                (r.state == State::Approved && b.request.state != State::Approved)
                    || (r.state == b.request.state && r.created_at_ms < b.request.created_at_ms)
            });
            if usable && better {
                best = Some(e);
            }
        }
        match best {
            None => Grant::None,
            Some(e) if e.request.state == State::Approved => Grant::Approved(e.request.clone()),
            Some(e) => Grant::Pending(e.request.clone(), e.state.subscribe()),
        }
    }

    fn in_window(&self, r: &Request, now_ms: i64) -> bool {
        r.decided_at_ms
            .is_some_and(|d| now_ms < d.saturating_add(self.grant_window_ms))
    }

    /// Uses the approval of `id` to run its statement once, for `session`: it must be
    /// approved, unused and within its window. Recorded in the store before it returns, so
    /// no restart lets it run twice.
    pub fn consume(&self, id: &str, session: &str, now_ms: i64) -> Result<Request, UseError> {
        let request = {
            let mut g = self.lock();
            let e = g
                .entries
                .get_mut(id)
                .ok_or_else(|| UseError::NotFound(id.to_owned()))?;
            if e.request.state != State::Approved {
                return Err(UseError::NotApproved {
                    id: id.to_owned(),
                    state: e.request.state,
                });
            }
            if e.request.used_at_ms.is_some() {
                return Err(UseError::AlreadyUsed(id.to_owned()));
            }
            if !self.in_window(&e.request, now_ms) {
                return Err(UseError::WindowClosed(id.to_owned()));
            }
            let mut used = e.request.clone();
            used.used_at_ms = Some(now_ms);
            used.used_by_session = Some(session.to_owned());
            self.save(&used).map_err(UseError::Unavailable)?;
            e.request = used.clone();
            used
        };
        self.emit(EventKind::Used, &request);
        Ok(request)
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
        self.vote_recorded(id, approver, approve, reason, now_ms, |_| {})
    }

    /// [`Registry::vote`], with `record` called once the vote is counted and saved but
    /// before the session waiting on the request is told: the vote's audit event then comes
    /// before anything that session records about the outcome (`record` runs under the
    /// registry's lock, so it must not wait: it sends into an audit slot reserved earlier).
    pub fn vote_recorded(
        &self,
        id: &str,
        approver: &Identity,
        approve: bool,
        reason: &str,
        now_ms: i64,
        record: impl FnOnce(&Request),
    ) -> Result<(Request, Outcome), VoteError> {
        let (request, outcome) = {
            let mut g = self.lock();
            let entry = g
                .entries
                .get_mut(id)
                .ok_or_else(|| VoteError::NotFound(id.to_owned()))?;
            if entry.request.state == State::Pending && now_ms >= entry.request.expires_at_ms {
                // Too late, even if nobody has expired it yet (the waiting session or the
                // sweeper does, and records it).
                return Err(VoteError::NotPending {
                    id: id.to_owned(),
                    state: State::Expired,
                });
            }
            let mut r = entry.request.clone();
            let result = r.vote(
                approver,
                approve,
                reason,
                now_ms,
                self.break_glass_group.as_deref(),
            );
            let outcome = result?;
            self.save(&r).map_err(VoteError::Unavailable)?;
            record(&r);
            entry.request = r.clone();
            if r.state != State::Pending {
                entry.state.send_replace(r.state);
                g.finished.push_back(id.to_owned());
                trim(&mut g);
            }
            (r, outcome)
        };
        self.emit(EventKind::Voted, &request);
        Ok((request, outcome))
    }

    /// Approves `id` on behalf of a policy (an automatic approval rule), recorded as a vote
    /// by `policy:<policy_id>` with `reason`.
    pub fn auto_approve(
        &self,
        id: &str,
        policy_id: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<Request, VoteError> {
        let request = {
            let mut g = self.lock();
            let entry = g
                .entries
                .get_mut(id)
                .ok_or_else(|| VoteError::NotFound(id.to_owned()))?;
            if entry.request.state != State::Pending {
                return Err(VoteError::NotPending {
                    id: id.to_owned(),
                    state: entry.request.state,
                });
            }
            let mut r = entry.request.clone();
            r.votes.push(Vote {
                approver: format!("policy:{policy_id}"),
                approve: true,
                reason: reason.to_owned(),
                at_ms: now_ms,
                break_glass: false,
            });
            r.state = State::Approved;
            r.decided_at_ms = Some(now_ms);
            self.save(&r).map_err(VoteError::Unavailable)?;
            entry.request = r.clone();
            entry.state.send_replace(State::Approved);
            g.finished.push_back(id.to_owned());
            trim(&mut g);
            r
        };
        self.emit(EventKind::Voted, &request);
        Ok(request)
    }

    /// Whether sessions other than the caller wait on `id` (each waiting session holds one
    /// subscription to its state): a session that stops waiting (its client cancelled or
    /// went away) then leaves the request open for them instead of withdrawing it.
    pub fn others_waiting(&self, id: &str) -> bool {
        let g = self.lock();
        g.entries
            .get(id)
            .is_some_and(|e| e.request.state == State::Pending && e.state.receiver_count() > 1)
    }

    /// Sessions waiting on pending requests (for an orderly shutdown).
    pub fn waiting(&self) -> usize {
        let g = self.lock();
        g.entries
            .values()
            .filter(|e| e.request.state == State::Pending)
            .map(|e| e.state.receiver_count())
            .sum()
    }

    /// Ends a pending request as expired or withdrawn; `None` if it was no longer pending
    /// (it was decided first: the caller must follow that decision).
    pub fn finish(
        &self,
        id: &str,
        state: State,
        because: Option<&str>,
        now_ms: i64,
    ) -> Option<Request> {
        let request = {
            let mut g = self.lock();
            let entry = g.entries.get_mut(id)?;
            if entry.request.state != State::Pending {
                return None;
            }
            entry.request.state = state;
            entry.request.withdrawn_because = because.map(str::to_owned);
            entry.request.decided_at_ms = Some(now_ms);
            if let Err(e) = self.save(&entry.request) {
                // Still ended here; at a restart the store's copy expires on its own.
                tracing::warn!(request = id, error = %e, "approval request could not be saved");
            }
            entry.state.send_replace(state);
            let request = entry.request.clone();
            g.finished.push_back(id.to_owned());
            trim(&mut g);
            request
        };
        self.emit(EventKind::Finished, &request);
        Some(request)
    }

    /// Expires every pending request past its deadline at `now_ms`; the ones it expired
    /// (for their audit events). Approvals whose grant window closed unused are dropped
    /// from memory (they can no longer be used).
    pub fn sweep(&self, now_ms: i64) -> Vec<Request> {
        {
            let mut g = self.lock();
            let window = self.grant_window_ms;
            g.entries.retain(|_, e| {
                let r = &e.request;
                !(r.state == State::Approved
                    && r.used_at_ms.is_none()
                    && r.decided_at_ms
                        .is_some_and(|d| now_ms >= d.saturating_add(window)))
            });
        }
        let due: Vec<String> = self
            .lock()
            .entries
            .values()
            .filter(|e| e.request.state == State::Pending && now_ms >= e.request.expires_at_ms)
            .map(|e| e.request.id.clone())
            .collect();
        due.iter()
            .filter_map(|id| self.finish(id, State::Expired, None, now_ms))
            .collect()
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

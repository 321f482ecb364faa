//! Holding a statement that needs a person's approval, inside the live session.
//!
//! A simple Query is held before any of it is forwarded; in the extended protocol the Parse
//! goes through (parsing runs nothing) and the hold is at the Execute of a portal bound to it,
//! with its parameters shown to approvers through the value detectors. Everything sent before
//! it is answered first (a Flush is sent for an open batch), so the notice and, later, the
//! result arrive in order; the client is told at once, by a NoticeResponse, which request it
//! waits on, who must approve and how; then the session waits for the first of: a decision
//! (the `approvals` registry, fed by the admin API), the end of its wait (shorter for agents
//! and inside a transaction, where locks stay held), the client's CancelRequest, or the
//! client going away. Messages the client pipelines meanwhile are read and kept, in order, for
//! after the hold. The upstream connection stays open throughout.
//!
//! Approved: the approval is used (once: `Registry::consume`), and the statement is decided
//! again (policies may have changed since): it runs if that decision allows it or asks for
//! the same approval again; anything else refuses it. Denied, expired or withdrawn: refused
//! with SQLSTATE 42501 (57014 when the client cancelled) and the request id and state in the
//! DETAIL, so an agent can tell the cases apart. When the session's wait ends before the
//! request expires, the statement is refused with state `pending` and the request stays open:
//! once approved, the same identity re-running the same statement (same text, parameters and
//! target) within the grant window runs it once. A re-run while it is still pending waits on
//! the same request. Every step is an audit event carrying the request id.

use super::check::Allowed;
use super::{Tracking, Up};
use crate::error::SessionError;
use crate::expect::Expect;
use approvals::{Grant, State};
use bytes::BytesMut;
use model::decision::Decision;
use model::facts::StatementFacts;
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;

/// Client bytes kept while a statement is held; past this the client is not read until the
/// hold ends (TCP then pushes back).
const MAX_KEPT_WHILE_HELD: usize = 1 << 20;

mod outcome;
mod request;

/// What is held.
pub(super) struct HeldStatement<'a> {
    pub sql: &'a str,
    pub statements: Vec<StatementFacts>,
    pub decision: Decision,
    /// Bound parameters, exactly as sent (format flag and bytes), for the grant key.
    pub key_params: Vec<Option<String>>,
    /// Bound parameters as approvers see them (through the value detectors).
    pub shown_params: Vec<Option<String>>,
    /// A simple Query (else an Execute inside a batch).
    pub simple: bool,
    /// A re-run may use its approval later (a one-time grant); else the request ends when
    /// the session stops waiting (a held COMMIT: its transaction is gone by then).
    pub grant: bool,
    /// For a held COMMIT: the writes waiting on it, with their row counts.
    pub transaction: Vec<approvals::TxStatement>,
    /// For a held COMMIT: the first rows the writes left, per table.
    pub changed_rows: Vec<approvals::ChangedRows>,
}

/// A held statement that may now run.
pub(super) struct Released {
    pub request: String,
    pub allowed: Allowed,
}

/// How the wait ended.
enum Ended {
    /// The registry says so (someone else ended it, or a vote decided it).
    State(State),
    /// This session expired or withdrew it (and records the step).
    ByUs(State),
    /// The session's wait is over; the request stays open for a one-time grant.
    StillPending,
    /// This session stopped waiting (its client cancelled or went away) while other
    /// sessions still wait on the request: it stays open for them.
    Left(&'static str),
}

impl Up {
    /// Holds a statement until it is decided; what may run then, or `None` once it was
    /// refused.
    pub(super) async fn hold(
        &mut self,
        t: &mut Tracking,
        h: HeldStatement<'_>,
    ) -> Result<Option<Released>, SessionError> {
        let HeldStatement {
            sql,
            statements,
            decision,
            key_params,
            shown_params,
            simple,
            grant,
            transaction,
            changed_rows,
        } = h;
        // Everything before it is answered: the transaction status is the server's, and the
        // notice goes out in order. In a batch the server answers only on Flush.
        if !simple {
            wire_pg::encode::flush(&mut t.out);
        }
        self.flush(t).await?;
        self.pipeline.wait_drained().await;
        let discarding = {
            let g = self.pipeline.lock();
            if g.is_closed() {
                return Err(SessionError::Protocol("session ended"));
            }
            g.discarding || g.copy_in
        };
        let status = self.tx_status.load(Ordering::Acquire);
        if status == b'E' || discarding {
            // The server would refuse it anyway: no one is asked.
            self.refuse_by_policy(t, sql, &statements, &decision, simple)
                .await?;
            return Ok(None);
        }
        let in_transaction = status == b'T' || (!simple && t.executed_in_batch);
        let cfg = self.state.config.approvals.clone();
        let agent = self
            .ctx
            .identity
            .as_ref()
            .is_some_and(|i| i.kind != model::IdentityKind::Human);
        let mut wait = if agent {
            cfg.agent_timeout
        } else {
            cfg.timeout
        };
        if in_transaction {
            wait = wait.min(cfg.in_transaction_timeout);
        }
        let now_ms = self.now_ms();
        let mut spec = self.spec(sql, &statements, &decision, in_transaction);
        spec.params = shown_params;
        spec.transaction = transaction;
        spec.changed_rows = changed_rows;
        if !spec.transaction.is_empty() {
            spec.command = "COMMIT".into();
        }
        let requirement = format!(
            "{}|{}|{}",
            spec.policy_id,
            spec.approver_groups.join(","),
            spec.quorum
        );
        let key = if grant {
            approvals::grant_key(
                &spec.requester,
                &spec.target,
                &requirement,
                sql,
                &key_params,
            )
        } else {
            String::new()
        };
        let (request, mut state) = match self.state.approvals.grant_for(&key, now_ms) {
            Grant::Approved(r) => {
                // A one-time grant: approved after an earlier session stopped waiting.
                return match self.use_approval(&r) {
                    Ok(r) => {
                        self.released(t, sql, &r, &decision, simple, "one-time grant")
                            .await
                    }
                    Err(e) => self.unusable(t, sql, &r, e, simple).await,
                };
            }
            Grant::Pending(r, rx) => {
                tracing::info!(session = %self.ctx.session, request = %r.id, "statement waits on an open approval request");
                (r, rx)
            }
            Grant::None => {
                // For a write, the planner's estimate, on a side connection.
                let writes = statements.iter().any(|f| !f.tables_written.is_empty());
                if writes {
                    if let Some(target) = self
                        .state
                        .config
                        .targets
                        .get(self.ctx.target.as_deref().unwrap_or_default())
                    {
                        let path = self.guard.search_path().to_vec();
                        spec.estimated_rows =
                            crate::estimate::estimate_rows(target, sql, &path).await;
                    }
                }
                let auto = self.guard.auto_approval(
                    &statements,
                    &decision,
                    self.hour(),
                    in_transaction,
                    spec.estimated_rows,
                );
                // A held COMMIT's request ends with the wait (its transaction does).
                let ttl = if grant {
                    cfg.request_ttl.max(wait)
                } else {
                    wait
                };
                let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
                let id = self.request_id();
                match self.state.approvals.open(
                    id.clone(),
                    spec,
                    key,
                    now_ms,
                    now_ms.saturating_add(ttl),
                ) {
                    Ok((r, _)) if auto.is_some() => {
                        self.step(&r, "requested", None, None);
                        let a = auto.unwrap_or_else(|| unreachable!());
                        return self.auto_approved(t, sql, &r, &decision, a, simple).await;
                    }
                    Ok((r, rx)) => {
                        self.step(&r, "requested", None, None);
                        tracing::info!(session = %self.ctx.session, request = %id, groups = %r.spec.approver_groups.join(","), "statement held for approval");
                        (r, rx)
                    }
                    Err(e) => {
                        tracing::error!(session = %self.ctx.session, error = %e, "approval request could not be stored");
                        let d = Decision::Deny {
                            reason: "the approval request could not be recorded, so the statement cannot wait for approval".into(),
                            policy_id: "gatehouse.approvals".into(),
                            hint: Some("retry in a moment".into()),
                            policies: decision.policies().to_vec(),
                        };
                        self.refuse_by_policy(t, sql, &statements, &d, simple)
                            .await?;
                        return Ok(None);
                    }
                }
            }
        };
        let id = request.id.clone();
        let remaining = u64::try_from(request.expires_at_ms.saturating_sub(now_ms)).unwrap_or(0);
        let wait = wait.min(std::time::Duration::from_millis(remaining));

        // From here a CancelRequest withdraws the request (before the client can see the
        // notice, so a cancel sent on seeing it is never forwarded upstream).
        let signal = self.cancelled.clone();
        let mut holding = signal.begin();
        let mut stopping = self.state.stopping.subscribe();
        let mut notice = BytesMut::new();
        let open_for = std::time::Duration::from_millis(remaining);
        let (message, detail, hint) =
            request::notice_text(&request, &cfg, wait, open_for, in_transaction);
        wire_pg::encode::notice_in(
            &mut notice,
            self.encoding.get(),
            "01000",
            &message,
            Some(&detail),
            Some(&hint),
        );
        self.expect(Expect::Notice(notice.freeze())).await?;

        let deadline = tokio::time::Instant::now() + wait;
        let ended = loop {
            if *state.borrow_and_update() != State::Pending {
                break Ended::State(*state.borrow());
            }
            if self.buf.len() >= MAX_KEPT_WHILE_HELD {
                // A client that sends this much while it waits is not waiting; and past this
                // a disconnect would go unnoticed.
                break self.finish(
                    &id,
                    State::Withdrawn,
                    Some("the client sent too much while the statement was held"),
                );
            }
            tokio::select! {
                changed = state.changed() => {
                    if changed.is_err() {
                        break Ended::State(State::Withdrawn);
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    if !grant || self.now_ms() >= request.expires_at_ms {
                        break self.finish(&id, State::Expired, None);
                    }
                    break Ended::StillPending;
                }
                () = holding.cancelled() => {
                    break self.stop_waiting(&id, "the client cancelled the statement");
                }
                _ = stopping.wait_for(|s| *s) => {
                    // Every session is going: withdrawn even when several wait on it.
                    break self.finish(&id, State::Withdrawn, Some("the proxy is shutting down"));
                }
                n = self.client.read_buf(&mut self.buf) => {
                    if n.unwrap_or(0) == 0 {
                        // Whatever was decided, nothing runs for a client that is gone.
                        let because = "the client disconnected";
                        let step = match self.stop_waiting(&id, because) {
                            Ended::ByUs(State::Withdrawn) => Some("withdrawn"),
                            Ended::Left(_) => Some("wait_ended"),
                            _ => None,
                        };
                        if let (Some(step), Some(r)) = (step, self.state.approvals.get(&id)) {
                            self.step(&r, step, None, Some(because));
                        }
                        return Err(SessionError::Protocol("the client disconnected while a statement was held"));
                    }
                }
            }
        };
        // The hold is over: a cancel from now on is for what runs next, and is forwarded. One
        // that raced the decision (not forwarded) still counts: the statement does not run.
        let late_cancel = holding.was_cancelled();
        drop(holding);
        let request = self.state.approvals.get(&id).unwrap_or(request);
        let ended = match ended {
            Ended::State(State::Approved) if late_cancel => {
                // The approval is used up without running: what the client cancelled is
                // not left behind as a one-time grant for a later run.
                let _ = self.use_approval(&request);
                let because = "the client cancelled the statement as it was approved";
                self.step(&request, "wait_ended", None, Some(because));
                let msg = "canceling statement due to user request (gatehouse: cancelled as it was approved; the approval is used up)";
                return self
                    .refused_after_hold(t, sql, &request, "57014", msg, "approved", simple)
                    .await;
            }
            e => e,
        };
        let (by_us, ended) = match ended {
            Ended::ByUs(s) => (true, s),
            Ended::State(s) => (false, s),
            Ended::Left(because) => {
                self.step(&request, "wait_ended", None, Some(because));
                let msg = "canceling statement due to user request (gatehouse: this session stopped waiting; the approval request stays open for the other sessions waiting on it)";
                return self
                    .refused_after_hold(t, sql, &request, "57014", msg, "pending", simple)
                    .await;
            }
            Ended::StillPending => {
                self.step(
                    &request,
                    "wait_ended",
                    None,
                    Some("the session stopped waiting; the request stays open"),
                );
                let msg = format!(
                    "gatehouse: approval request {id} is still pending after {} s; once approved, run the same statement again to run it once",
                    wait.as_secs()
                );
                return self
                    .refused_after_hold(t, sql, &request, "42501", &msg, "pending", simple)
                    .await;
            }
        };
        match ended {
            State::Approved => match self.use_approval(&request) {
                Ok(r) => {
                    self.released(t, sql, &r, &decision, simple, "approved")
                        .await
                }
                Err(e) => self.unusable(t, sql, &request, e, simple).await,
            },
            State::Denied => {
                let vote = request.denial();
                let by = vote.map_or("an approver", |v| v.approver.as_str());
                let why = vote.map_or("", |v| v.reason.as_str());
                let msg = format!("gatehouse: statement denied by {by}: {why}");
                self.refused_after_hold(t, sql, &request, "42501", &msg, "denied", simple)
                    .await
            }
            State::Expired => {
                if by_us {
                    // Expired by another path (the sweeper, a late vote) is recorded there.
                    self.step(&request, "expired", None, None);
                }
                let msg = format!(
                    "gatehouse: approval request {id} expired after {} s without a decision",
                    u64::try_from(
                        request.expires_at_ms.saturating_sub(request.created_at_ms) / 1000
                    )
                    .unwrap_or(0)
                );
                self.refused_after_hold(t, sql, &request, "42501", &msg, "expired", simple)
                    .await
            }
            State::Withdrawn | State::Pending => {
                let because = request
                    .withdrawn_because
                    .clone()
                    .unwrap_or_else(|| "withdrawn".into());
                if by_us {
                    self.step(&request, "withdrawn", None, Some(&because));
                }
                let msg = "canceling statement due to user request (gatehouse: approval request withdrawn)";
                self.refused_after_hold(t, sql, &request, "57014", msg, "withdrawn", simple)
                    .await
            }
        }
    }

    fn now_ms(&self) -> i64 {
        self.state.clock.now_micros() / 1000
    }

    /// This session stops waiting on `id`: withdrawn, unless other sessions still wait on it
    /// (then it stays open for them) or it was decided first.
    fn stop_waiting(&self, id: &str, because: &'static str) -> Ended {
        if self.state.approvals.others_waiting(id) {
            return Ended::Left(because);
        }
        self.finish(id, State::Withdrawn, Some(because))
    }

    /// Ends the request unless it was decided first; how the wait ended.
    fn finish(&self, id: &str, state: State, because: Option<&str>) -> Ended {
        match self
            .state
            .approvals
            .finish(id, state, because, self.now_ms())
        {
            Some(r) => Ended::ByUs(r.state),
            None => Ended::State(
                self.state
                    .approvals
                    .get(id)
                    .map_or(State::Withdrawn, |r| r.state),
            ),
        }
    }
}

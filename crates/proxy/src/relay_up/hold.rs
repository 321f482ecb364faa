//! Holding a query string that needs a person's approval, inside the live session.
//!
//! Nothing of the string reaches the server while it is held. Everything sent before it is
//! answered first (so the notice and, later, the result arrive in order); the client is told at
//! once, by a NoticeResponse, which request it waits on, who must approve and how; then the
//! session waits for the first of: a decision (the `approvals` registry, fed by the admin API),
//! the deadline (shorter inside a transaction block, where locks stay held), the client's
//! CancelRequest, or the client going away. Messages the client pipelines meanwhile are read
//! and kept, in order, for after the hold. The upstream connection stays open throughout.
//!
//! Approved: the string is decided again (policies may have changed since): it runs if that
//! decision allows it or asks for the same approval again; anything else refuses it. Denied,
//! expired or withdrawn: refused with SQLSTATE 42501 (57014 when the client cancelled) and the
//! request id in the DETAIL, so an agent can tell the cases apart and poll. Every step is an
//! audit event carrying the request id.

use super::check::Allowed;
use super::{Tracking, Up};
use crate::error::SessionError;
use crate::expect::Expect;
use crate::guard::Verdict;
use approvals::{Request, RequestSpec, State};
use bytes::BytesMut;
use model::decision::Decision;
use model::facts::StatementFacts;
use model::{ApprovalStep, AuditKind, Outcome};
use std::sync::atomic::Ordering;
use tokio::io::AsyncReadExt;

/// Client bytes kept while a statement is held; past this the client is not read until the
/// hold ends (TCP then pushes back).
const MAX_KEPT_WHILE_HELD: usize = 1 << 20;

impl Up {
    /// Holds `sql` until it is decided; what may run then, or `None` once it was refused.
    pub(super) async fn hold(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        statements: Vec<StatementFacts>,
        decision: Decision,
    ) -> Result<Option<Allowed>, SessionError> {
        // Everything before it is answered: the transaction status is the server's, and the
        // notice goes out in order.
        self.flush(t).await?;
        self.pipeline.wait_drained().await;
        if self.pipeline.lock().is_closed() {
            return Err(SessionError::Protocol("session ended"));
        }
        let status = self.tx_status.load(Ordering::Acquire);
        if status == b'E' {
            // The server would refuse it anyway: no one is asked.
            self.refuse_by_policy(t, sql, &statements, &decision, true)
                .await?;
            return Ok(None);
        }
        let in_transaction = status == b'T';
        let cfg = self.state.config.approvals.clone();
        let wait = if in_transaction {
            cfg.in_transaction_timeout.min(cfg.timeout)
        } else {
            cfg.timeout
        };
        let now_ms = self.state.clock.now_micros() / 1000;
        let expires_ms = now_ms + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        let id = self.request_id();
        let spec = self.spec(sql, &statements, &decision, in_transaction);
        let groups = spec.approver_groups.clone();
        let (request, mut state) = self
            .state
            .approvals
            .open(id.clone(), spec, now_ms, expires_ms);
        self.step(&request, "requested", None, None);
        metrics::counter!("gatehouse_approvals_total", "step" => "requested").increment(1);
        tracing::info!(session = %self.ctx.session, request = %id, groups = %groups.join(","), "statement held for approval");

        let mut notice = BytesMut::new();
        let (message, detail, hint) = notice_text(&request, &cfg, wait, in_transaction);
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
                        break State::Withdrawn;
                    }
                    let s = *state.borrow_and_update();
                    if s != State::Pending {
                        break s;
                    }
                }
                () = tokio::time::sleep_until(deadline) => {
                    break self.finish(&id, State::Expired, None);
                }
                () = self.cancelled.notified() => {
                    break self.finish(&id, State::Withdrawn, Some("the client cancelled the statement"));
                }
                n = self.client.read_buf(&mut self.buf) => {
                    if n.unwrap_or(0) == 0 {
                        // Whatever was decided, nothing runs for a client that is gone.
                        let because = "the client disconnected";
                        if self.finish(&id, State::Withdrawn, Some(because)) == State::Withdrawn {
                            self.step(&request, "withdrawn", None, Some(because));
                        }
                        return Err(SessionError::Protocol("the client disconnected while a statement was held"));
                    }
                }
            }
        };
        let request = self.state.approvals.get(&id).unwrap_or(request);
        match ended {
            State::Approved => {
                let by = request
                    .votes
                    .iter()
                    .filter(|v| v.approve)
                    .map(|v| v.approver.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                self.released(t, sql, &request, &decision, &by).await
            }
            State::Denied => {
                let vote = request.denial();
                let by = vote.map_or("an approver", |v| v.approver.as_str());
                let why = vote.map_or("", |v| v.reason.as_str());
                let msg = format!("gatehouse: statement denied by {by}: {why}");
                self.refused_after_hold(t, sql, &request, "42501", &msg, "denied")
                    .await
            }
            State::Expired => {
                self.step(&request, "expired", None, None);
                let msg = format!(
                    "gatehouse: approval request {id} expired after {} s without a decision",
                    wait.as_secs()
                );
                self.refused_after_hold(t, sql, &request, "42501", &msg, "expired")
                    .await
            }
            State::Withdrawn | State::Pending => {
                let because = request
                    .withdrawn_because
                    .clone()
                    .unwrap_or_else(|| "withdrawn".into());
                self.step(&request, "withdrawn", None, Some(&because));
                let msg = "canceling statement due to user request (gatehouse: approval request withdrawn)";
                self.refused_after_hold(t, sql, &request, "57014", msg, "withdrawn")
                    .await
            }
        }
    }

    /// Ends the request unless it was decided first; the state it ends in.
    fn finish(&self, id: &str, state: State, because: Option<&str>) -> State {
        match self.state.approvals.finish(id, state, because) {
            Some(r) => r.state,
            None => self
                .state
                .approvals
                .get(id)
                .map_or(State::Withdrawn, |r| r.state),
        }
    }

    /// Approved: decided again, then forwarded with the plans of the new decision.
    async fn released(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        request: &Request,
        held_for: &Decision,
        by: &str,
    ) -> Result<Option<Allowed>, SessionError> {
        let again = self.check(t, sql).await?;
        // The approval given stands only for the same requirement: a reload that changed the
        // approvers or the quorum meanwhile is not met by it.
        let same_approval = |d: &Decision| match (d, held_for) {
            (
                Decision::NeedsApproval { policy_id: a, .. },
                Decision::NeedsApproval { policy_id: b, .. },
            ) => a == b && d.approval_requirement() == held_for.approval_requirement(),
            _ => false,
        };
        match again {
            Verdict::Forward {
                statements,
                decision,
                shadow,
                plans,
            } => {
                self.step(request, "released", Some(by), None);
                t.released = Some(request.id.clone());
                Ok(Some(Allowed {
                    statements,
                    decision,
                    shadow,
                    plans,
                }))
            }
            Verdict::Hold {
                statements,
                decision,
                plans,
            } if same_approval(&decision) => {
                self.step(request, "released", Some(by), None);
                t.released = Some(request.id.clone());
                Ok(Some(Allowed {
                    statements,
                    decision: Decision::Allow {
                        policies: decision.policies().to_vec(),
                    },
                    shadow: false,
                    plans,
                }))
            }
            Verdict::Refuse {
                statements,
                decision,
            }
            | Verdict::Hold {
                statements,
                decision,
                ..
            } => {
                self.step(
                    request,
                    "refused_at_release",
                    None,
                    Some("decided again at release"),
                );
                self.refuse_by_policy(t, sql, &statements, &decision, true)
                    .await?;
                Ok(None)
            }
            Verdict::UnknownRelation(_) | Verdict::Stale => {
                self.step(
                    request,
                    "refused_at_release",
                    None,
                    Some("decided again at release"),
                );
                let d = super::check::stale_catalog();
                self.refuse_by_policy(t, sql, &[], &d, true).await?;
                Ok(None)
            }
        }
    }

    async fn refused_after_hold(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        request: &Request,
        code: &str,
        message: &str,
        state: &str,
    ) -> Result<Option<Allowed>, SessionError> {
        let mut ev = self
            .ctx
            .event(AuditKind::Statement, self.state.clock.rfc3339());
        ev.statement = Some(sql.to_owned());
        ev.decision = Some("needs_approval".into());
        ev.policies = vec![request.spec.policy_id.clone()];
        ev.outcome = Outcome::Error {
            sqlstate: code.into(),
            message: message.into(),
        };
        ev.approval = Some(ApprovalStep {
            request: request.id.clone(),
            step: state.into(),
            by: None,
            reason: None,
            approver_groups: request.spec.approver_groups.clone(),
            break_glass: false,
        });
        if self.state.audit.submit(ev).is_err() {
            tracing::warn!(session = %self.ctx.session, "refusal could not be audited");
        }
        let detail = format!("request: {}; state: {state}", request.id);
        let hint = "an agent may poll the request and retry the same statement";
        self.refuse(t, code, message, Some(&detail), Some(hint), true)
            .await?;
        Ok(None)
    }

    /// An `approval` audit event for one step of `request`.
    fn step(&self, request: &Request, step: &str, by: Option<&str>, reason: Option<&str>) {
        let mut ev = self
            .ctx
            .event(AuditKind::Approval, self.state.clock.rfc3339());
        ev.statement = Some(request.spec.statement.clone());
        ev.target = Some(request.spec.target.clone());
        ev.decision = Some("needs_approval".into());
        ev.policies = vec![request.spec.policy_id.clone()];
        ev.command = Some(request.spec.command.clone());
        ev.tables = request.spec.tables.clone();
        ev.approval = Some(ApprovalStep {
            request: request.id.clone(),
            step: step.into(),
            by: by.map(str::to_owned),
            reason: reason.map(str::to_owned),
            approver_groups: request.spec.approver_groups.clone(),
            break_glass: false,
        });
        if self.state.audit.submit(ev).is_err() {
            tracing::warn!(session = %self.ctx.session, request = %request.id, step, "approval step could not be audited");
        }
        metrics::counter!("gatehouse_approvals_total", "step" => step.to_owned()).increment(1);
    }

    fn request_id(&self) -> String {
        let mut b = [0u8; 8];
        self.state.entropy.fill(&mut b);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("ap_{hex}")
    }

    fn spec(
        &self,
        sql: &str,
        statements: &[StatementFacts],
        decision: &Decision,
        in_transaction: bool,
    ) -> RequestSpec {
        let identity = self
            .ctx
            .identity
            .clone()
            .unwrap_or_else(|| model::Identity {
                name: self.ctx.user.clone().unwrap_or_default(),
                kind: model::IdentityKind::Human,
                groups: Vec::new(),
            });
        let (policy_id, reason, quorum) = match decision {
            Decision::NeedsApproval {
                policy_id,
                reason,
                quorum,
                ..
            } => (policy_id.clone(), reason.clone(), *quorum),
            other => (String::new(), other.label().to_owned(), 1),
        };
        let mut tables: Vec<String> = statements
            .iter()
            .flat_map(|f| f.tables_read.iter().chain(f.tables_written.iter()).cloned())
            .collect();
        tables.sort();
        tables.dedup();
        let columns: Vec<String> = statements
            .iter()
            .flat_map(|f| {
                f.columns
                    .iter()
                    .flat_map(|(t, cs)| cs.iter().map(move |c| format!("{t}.{c}")))
            })
            .collect();
        let command = statements
            .iter()
            .map(|f| f.command.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        RequestSpec {
            requester: identity.name.clone(),
            requester_kind: identity.kind.as_str().to_owned(),
            requester_groups: identity.groups.clone(),
            session: self.ctx.session.clone(),
            client_addr: self.ctx.client_addr.clone(),
            application_name: self.ctx.application_name.clone(),
            target: self.ctx.target.clone().unwrap_or_default(),
            environment: self
                .state
                .config
                .targets
                .get(self.ctx.target.as_deref().unwrap_or_default())
                .map(|t| t.environment.clone()),
            statement: sql.to_owned(),
            params: Vec::new(),
            command,
            tables,
            columns,
            policy_id,
            reason,
            approver_groups: decision.approver_groups(),
            quorum,
            in_transaction,
        }
    }
}

/// The notice's message, DETAIL (`request: ID`, machine-readable) and HINT (how to approve).
fn notice_text(
    r: &Request,
    cfg: &crate::config::ApprovalsConfig,
    wait: std::time::Duration,
    in_transaction: bool,
) -> (String, String, String) {
    let groups = r.spec.approver_groups.join(", ");
    let quorum = if r.spec.quorum > 1 {
        format!(" ({} approvals needed)", r.spec.quorum)
    } else {
        String::new()
    };
    let txn = if in_transaction {
        " Inside a transaction block the wait is shorter: locks stay held meanwhile."
    } else {
        ""
    };
    let message = format!(
        "gatehouse: statement held for approval by {groups}{quorum}: {}; waiting up to {} s.{txn}",
        r.spec.reason,
        wait.as_secs()
    );
    let detail = format!("request: {}", r.id);
    let mut hint = format!(
        "an approver runs: gatehouse approvals approve {} --reason TEXT",
        r.id
    );
    if let Some(url) = &cfg.console_url {
        hint.push_str(&format!(
            " (or POST {}/api/approvals/{}/approve)",
            url.trim_end_matches('/'),
            r.id
        ));
    }
    hint.push_str("; cancel the statement to withdraw the request");
    (message, detail, hint)
}

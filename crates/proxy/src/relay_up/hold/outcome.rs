//! How a hold ends: an approval used (by the waiting session, a one-time grant or an
//! automatic rule) and the statement decided again before it runs, or a refusal that names
//! the request and its state.

use super::super::check::Allowed;
use super::super::{Tracking, Up};
use super::Released;
use crate::error::SessionError;
use crate::guard::Verdict;
use approvals::{Request, UseError};
use model::decision::Decision;
use model::{ApprovalStep, AuditKind, Outcome};

impl Up {
    /// Approved by an automatic rule (`policy::auto`): recorded as approved by that policy,
    /// then released like any approval.
    pub(super) async fn auto_approved(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        r: &Request,
        decision: &Decision,
        a: policy::AutoApproved,
        simple: bool,
    ) -> Result<Option<Released>, SessionError> {
        let by = format!("policy:{}", a.policy_id);
        match self
            .state
            .approvals
            .auto_approve(&r.id, &a.policy_id, &a.reason, self.now_ms())
        {
            Ok(r) => {
                tracing::info!(session = %self.ctx.session, request = %r.id, rule = %a.policy_id, "statement approved by an automatic rule");
                self.step(&r, "approve", Some(&by), Some(&a.reason));
                match self.use_approval(&r) {
                    Ok(r) => {
                        self.released(t, sql, &r, decision, simple, "automatic approval")
                            .await
                    }
                    Err(e) => self.unusable(t, sql, &r, e, simple).await,
                }
            }
            Err(e) => {
                let msg = format!("gatehouse: the automatic approval could not be recorded: {e}");
                self.refused_after_hold(t, sql, r, "42501", &msg, "unrecorded", simple)
                    .await
            }
        }
    }

    /// Uses an approval for this session (once per approval).
    pub(super) fn use_approval(&self, r: &Request) -> Result<Request, UseError> {
        self.state
            .approvals
            .consume(&r.id, &self.ctx.session, self.now_ms())
    }

    /// An approval that cannot be used: refused, saying why.
    pub(super) async fn unusable(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        r: &Request,
        e: UseError,
        simple: bool,
    ) -> Result<Option<Released>, SessionError> {
        let state = match e {
            UseError::AlreadyUsed(_) => "used",
            UseError::WindowClosed(_) => "window_closed",
            UseError::Unavailable(_) => "unrecorded",
            UseError::NotFound(_) | UseError::NotApproved { .. } => r.state.as_str(),
        };
        let msg = format!("gatehouse: {e}");
        self.refused_after_hold(t, sql, r, "42501", &msg, state, simple)
            .await
    }

    /// Approved: decided again, then forwarded with the plans of the new decision.
    pub(super) async fn released(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        request: &Request,
        held_for: &Decision,
        simple: bool,
        how: &str,
    ) -> Result<Option<Released>, SessionError> {
        let by = request
            .votes
            .iter()
            .filter(|v| v.approve)
            .map(|v| v.approver.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        let by = by.as_str();
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
                self.step(request, "released", Some(by), Some(how));
                Ok(Some(Released {
                    request: request.id.clone(),
                    allowed: Allowed {
                        statements,
                        decision,
                        shadow,
                        plans,
                        deferred: false,
                    },
                }))
            }
            Verdict::Hold {
                statements,
                decision,
                plans,
            } if same_approval(&decision) => {
                self.step(request, "released", Some(by), Some(how));
                Ok(Some(Released {
                    request: request.id.clone(),
                    allowed: Allowed {
                        statements,
                        decision: Decision::Allow {
                            policies: decision.policies().to_vec(),
                        },
                        shadow: false,
                        plans,
                        deferred: false,
                    },
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
                self.refuse_by_policy(t, sql, &statements, &decision, simple)
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
                let d = super::super::check::stale_catalog();
                self.refuse_by_policy(t, sql, &[], &d, simple).await?;
                Ok(None)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn refused_after_hold(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        request: &Request,
        code: &str,
        message: &str,
        state: &str,
        simple: bool,
    ) -> Result<Option<Released>, SessionError> {
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
        let hint = "an agent may poll the request (gatehouse approvals show ID) and, once it is approved, run the same statement again";
        self.refuse(t, code, message, Some(&detail), Some(hint), simple)
            .await?;
        Ok(None)
    }
}

//! The approvals side of `gatehouse serve`: the registry held statements wait in (kept in
//! the data directory's `approvals.db`, so open requests and unused grants outlive a restart),
//! the task that expires requests no session waits on any more, and the admin API approvers
//! use.

use anyhow::Context;
use proxy::ProxyState;
use std::path::Path;
use std::sync::Arc;

/// The registry of approval requests, with the configured grant window, writing every change
/// to `data_dir`'s approval store and taking back the requests it kept open: those pending
/// when the previous process stopped (their sessions are gone; the sweeper expires them in
/// time) and approvals not yet used (a re-run may use each once).
pub fn registry(state: &ProxyState, data_dir: &Path) -> anyhow::Result<Arc<approvals::Registry>> {
    let grant_window_ms =
        i64::try_from(state.config.approvals.grant_window.as_millis()).unwrap_or(i64::MAX);
    let store = store::SqliteApprovals::open(data_dir).context("opening the approval store")?;
    let registry = approvals::Registry::new(state.config.approvals.break_glass_group.clone())
        .with_grant_window_ms(grant_window_ms)
        .with_store(Arc::new(store))
        .map_err(|e| anyhow::anyhow!("loading open approval requests: {e}"))?;
    let open = registry.pending().len();
    if open > 0 {
        tracing::info!(
            pending = open,
            "approval requests still pending from before"
        );
    }
    Ok(Arc::new(registry))
}

/// Expires, once a second, requests past their deadline that no session is waiting on (a
/// waiting session expires its own), and records each expiry in the audit trail.
pub fn spawn_sweeper(state: &ProxyState) {
    let registry = state.approvals.clone();
    let audit = state.audit.clone();
    let clock = state.clock.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for r in registry.sweep(clock.now_micros() / 1000) {
                let ev = step_event(&r, "expired", None, None, clock.rfc3339());
                if audit.submit(ev).is_err() {
                    tracing::warn!(request = %r.id, "approval expiry could not be audited");
                }
            }
        }
    });
}

/// An approval audit event for `step` of `r`, outside any session's task.
pub fn step_event(
    r: &approvals::Request,
    step: &str,
    by: Option<&str>,
    reason: Option<&str>,
    at: String,
) -> model::AuditEvent {
    let mut ev = model::AuditEvent::new(model::AuditKind::Approval, &r.spec.session, at);
    ev.identity = Some(r.spec.requester.clone());
    ev.identity_kind = Some(r.spec.requester_kind.clone());
    ev.groups.clone_from(&r.spec.requester_groups);
    ev.target = Some(r.spec.target.clone());
    ev.statement = Some(r.spec.statement.clone());
    ev.command = Some(r.spec.command.clone());
    ev.tables.clone_from(&r.spec.tables);
    ev.decision = Some("needs_approval".into());
    ev.policies = vec![r.spec.policy_id.clone()];
    ev.approval = Some(model::ApprovalStep {
        request: r.id.clone(),
        step: step.into(),
        by: by.map(str::to_owned),
        reason: reason.map(str::to_owned),
        approver_groups: r.spec.approver_groups.clone(),
        break_glass: false,
    });
    ev
}

/// The approvals API: approvers authenticate with their own token; each vote is audited; the
/// history is read from `data_dir`'s approval store on a connection of its own.
pub fn approvals_api(
    state: &ProxyState,
    data_dir: &Path,
) -> anyhow::Result<console::approvals_api::ApprovalsApi> {
    let history_store =
        Arc::new(store::SqliteApprovals::open(data_dir).context("opening the approval store")?);
    let history: console::approvals_api::History = Arc::new(move |offset, limit| {
        history_store
            .finished(offset, limit)
            .map_err(|e| e.to_string())
    });
    let tokens = state.tokens.clone();
    let clock = state.clock.clone();
    let authenticate = Arc::new(move |token: &str| {
        identity::verify_bearer(tokens.as_ref(), token, clock.now_secs())
            .ok()
            .flatten()
            .map(|r| r.identity())
    });
    let audit = state.audit.clone();
    let clock = state.clock.clone();
    // The slot is reserved before the vote is counted; a failed reservation refuses the vote.
    let record = Arc::new(move || {
        let slot = audit.reserve().map_err(|e| e.to_string())?;
        let clock = clock.clone();
        let recorder: console::approvals_api::Recorder = Box::new(
            move |r: &approvals::Request, who: &model::Identity, approve: bool| {
                let mut ev = model::AuditEvent::new(
                    model::AuditKind::Approval,
                    &r.spec.session,
                    clock.rfc3339(),
                );
                ev.identity = Some(who.name.clone());
                ev.identity_kind = Some(who.kind.as_str().to_owned());
                ev.groups.clone_from(&who.groups);
                ev.target = Some(r.spec.target.clone());
                ev.statement = Some(r.spec.statement.clone());
                ev.policies = vec![r.spec.policy_id.clone()];
                let vote = r.votes.iter().rev().find(|v| v.approver == who.name);
                ev.approval = Some(model::ApprovalStep {
                    request: r.id.clone(),
                    step: if approve { "approve" } else { "deny" }.into(),
                    by: Some(who.name.clone()),
                    reason: vote.map(|v| v.reason.clone()),
                    approver_groups: r.spec.approver_groups.clone(),
                    break_glass: vote.is_some_and(|v| v.break_glass),
                });
                slot.send(ev);
            },
        );
        Ok(recorder)
    });
    let clock = state.clock.clone();
    Ok(console::approvals_api::ApprovalsApi {
        registry: state.approvals.clone(),
        authenticate,
        record,
        now_ms: Arc::new(move || clock.now_micros() / 1000),
        history: Some(history),
        keep_alive: console::approvals_api::ApprovalsApi::KEEP_ALIVE,
        streams: console::approvals_api::StreamSlots::default(),
    })
}

//! What an approval request says: its spec (everything an approver needs), its id, the
//! client's notice, and the audit event of each step.

use super::super::Up;
use approvals::{Request, RequestSpec};
use model::decision::Decision;
use model::facts::StatementFacts;
use model::{ApprovalStep, AuditKind};

impl Up {
    /// An `approval` audit event for one step of `request`.
    pub(super) fn step(
        &self,
        request: &Request,
        step: &str,
        by: Option<&str>,
        reason: Option<&str>,
    ) {
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

    pub(super) fn request_id(&self) -> String {
        let mut b = [0u8; 8];
        self.state.entropy.fill(&mut b);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!("ap_{hex}")
    }

    pub(super) fn spec(
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
            estimated_rows: None,
            transaction: Vec::new(),
            changed_rows: Vec::new(),
        }
    }
}

/// The notice's message, DETAIL (`request: ID`, machine-readable) and HINT (how to approve).
pub(super) fn notice_text(
    r: &Request,
    cfg: &crate::config::ApprovalsConfig,
    wait: std::time::Duration,
    open_for: std::time::Duration,
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
    let grant = if open_for > wait + std::time::Duration::from_secs(1) {
        format!(
            " If it is approved later (the request stays open {} s), run the same statement again: it runs once.",
            open_for.as_secs()
        )
    } else {
        String::new()
    };
    let message = format!(
        "gatehouse: statement held for approval by {groups}{quorum}: {}; waiting up to {} s.{txn}{grant}",
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

//! What the audit trail records of an analysed statement besides its text, and the
//! client-facing text of a refusal. Shared by every path that audits a statement.

use crate::mask_plan::MaskPlan;
use model::decision::Decision;
use model::facts::StatementFacts;
use std::collections::BTreeSet;
use std::sync::Arc;

/// The client-facing text of a refusal: message, DETAIL (policy id) and HINT.
pub fn refusal_text(decision: &Decision) -> (String, String, Option<String>) {
    match decision {
        Decision::Deny { reason, policy_id, hint, .. } => (
            format!("gatehouse: {reason}"),
            format!("policy: {policy_id}"),
            hint.clone(),
        ),
        Decision::NeedsApproval { reason, policy_id, approver_group, .. } => (
            format!("gatehouse: approval required: {reason}"),
            format!("policy: {policy_id}; approver group: {approver_group}"),
            Some(format!(
                "it could not wait for \"{approver_group}\" here (a PREPARE, a fastpath call, a query string inside an unsynced pipeline, or a failed transaction): send it on its own, outside a pipeline, to have it held for approval"
            )),
        ),
        Decision::Allow { .. } => ("gatehouse: allowed".into(), String::new(), None),
    }
}

/// What the audit trail records of an analysed statement besides its text.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    pub decision: Option<String>,
    pub policies: Vec<String>,
    pub command: Option<String>,
    pub tables: Vec<String>,
    pub mask: Option<Arc<MaskPlan>>,
    /// The approval request this statement ran under (released after approval).
    pub approval: Option<String>,
}

impl Annotation {
    pub fn new(facts: Option<&StatementFacts>, decision: &Decision, shadow: bool) -> Self {
        let label = if shadow {
            "shadow_deny"
        } else {
            decision.label()
        };
        let mut note = Annotation {
            decision: Some(label.to_owned()),
            policies: decision.policies().to_vec(),
            ..Annotation::default()
        };
        if let Some(f) = facts {
            note.command = Some(format!("{}:{}", f.class, f.command));
            let tables: BTreeSet<&String> = f.tables_read.iter().chain(&f.tables_written).collect();
            note.tables = tables.into_iter().cloned().collect();
        }
        note
    }

    pub fn apply(&self, ev: &mut model::AuditEvent) {
        ev.decision.clone_from(&self.decision);
        ev.policies.clone_from(&self.policies);
        ev.command.clone_from(&self.command);
        ev.tables.clone_from(&self.tables);
        if let Some(m) = &self.mask {
            ev.masked = m.summary();
        }
        if let Some(request) = &self.approval {
            ev.approval = Some(model::ApprovalStep {
                request: request.clone(),
                step: "executed".into(),
                by: None,
                reason: None,
                approver_groups: Vec::new(),
                break_glass: false,
            });
        }
    }
}

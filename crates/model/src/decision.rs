//! What policy decided about one statement (or a whole multi-statement string).
//!
//! Produced only by the `policy` crate; the proxy enforces it and the audit trail records it.
//! `policies` always lists the ids of the policies that produced the decision, so an operator
//! can see *why* without re-running anything.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Some permit matched and no forbid did.
    Allow { policies: Vec<String> },
    /// Refused. `policy_id` names the policy to blame ("default" when nothing permitted the
    /// statement); `hint` tells a person or an agent what to do instead.
    Deny {
        reason: String,
        policy_id: String,
        hint: Option<String>,
        policies: Vec<String>,
    },
    /// Refused until someone in `approver_group` approves: every forbid that matched carries
    /// an `@approval` annotation and a permit matched.
    /// `approver_group` may list several groups, comma-separated (any of them may approve);
    /// `quorum` distinct approvals are needed (`@quorum("2")`, default 1).
    NeedsApproval {
        reason: String,
        policy_id: String,
        approver_group: String,
        policies: Vec<String>,
        #[serde(default = "one")]
        quorum: u32,
        /// `@approval_mode("commit")`: a write inside a transaction block runs at once and
        /// the transaction's COMMIT is held instead (see the proxy's hold).
        #[serde(default)]
        commit: bool,
    },
}

fn one() -> u32 {
    1
}

impl Decision {
    /// What satisfies a needs-approval decision: its approver groups (sorted) and quorum. Two
    /// decisions with the same requirement are met by one request; different ones are not.
    pub fn approval_requirement(&self) -> Option<(Vec<String>, u32)> {
        match self {
            Decision::NeedsApproval { quorum, .. } => {
                let mut groups = self.approver_groups();
                groups.sort();
                groups.dedup();
                Some((groups, *quorum))
            }
            _ => None,
        }
    }

    /// Refusal for a string or statement that needs approvals of different kinds at once
    /// (other groups or quorums): one request cannot stand for all of them, so it is denied.
    pub fn several_approvals(first: &Decision, other: &Decision) -> Decision {
        let id = |d: &Decision| match d {
            Decision::NeedsApproval { policy_id, .. } => policy_id.clone(),
            _ => String::new(),
        };
        let mut policies = first.policies().to_vec();
        policies.extend(other.policies().iter().cloned());
        policies.sort();
        policies.dedup();
        Decision::Deny {
            reason: format!(
                "this needs approvals under several policies with different approvers ({} and {}); one request cannot satisfy them all",
                id(first),
                id(other)
            ),
            policy_id: id(first),
            hint: Some("run the parts that need different approvals as separate statements".into()),
            policies,
        }
    }

    /// The approver groups of a needs-approval decision (`@approval("dba, security")`).
    pub fn approver_groups(&self) -> Vec<String> {
        match self {
            Decision::NeedsApproval { approver_group, .. } => approver_group
                .split(',')
                .map(str::trim)
                .filter(|g| !g.is_empty())
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether approval is asked at the transaction's COMMIT (`@approval_mode("commit")`).
    pub fn approval_at_commit(&self) -> bool {
        matches!(self, Decision::NeedsApproval { commit: true, .. })
    }

    pub fn is_allow(&self) -> bool {
        matches!(self, Decision::Allow { .. })
    }

    /// Short label for logs and audit: "allow", "deny" or "needs_approval".
    pub fn label(&self) -> &'static str {
        match self {
            Decision::Allow { .. } => "allow",
            Decision::Deny { .. } => "deny",
            Decision::NeedsApproval { .. } => "needs_approval",
        }
    }

    /// The ids of the policies that produced this decision.
    pub fn policies(&self) -> &[String] {
        match self {
            Decision::Allow { policies }
            | Decision::Deny { policies, .. }
            | Decision::NeedsApproval { policies, .. } => policies,
        }
    }
}

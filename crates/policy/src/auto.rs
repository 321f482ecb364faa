//! Automatic approval rules: Cedar policies on the `approve` action that approve a held
//! statement before any person is asked, recorded as approved by that policy.
//!
//! A rule is a `permit` scoped to exactly `action == Gatehouse::Action::"approve"`, with an
//! `@id` (the evidence names it). It sees the statement's context record (the same facts as
//! every decision) plus what the approval asks for: `approval_policy`, `approver_groups`,
//! `quorum`, `in_transaction`, `requester_kind` and `estimated_rows` (absent when unknown).
//!
//! Safety rules, each because a rule written with one case in mind should not silently widen:
//! - Policies with an open action scope (`action`) never approve: an "allow everything"
//!   permit is not an approval rule. Open-scope forbids *without* `@approval` do apply (they
//!   would have refused the statement anyway; any forbid saying no keeps a person in the loop),
//!   and so do forbids that name `approve`.
//! - An agent's request is approved only by a rule whose principal scope names agents
//!   (`principal is Gatehouse::Agent [in …]`, `principal == Gatehouse::Agent::"…"`): a person
//!   in the loop for agents is the point of holding, so a broad rule covers people only.
//! - With no row estimate, only rules annotated `@unknown_estimate("approve")` apply. (Strict
//!   validation already makes a rule that reads `estimated_rows` guard it with `has`; the
//!   annotation also keeps rules that never mention it from approving what nobody sized.)
//! - A rule the validator proves can never apply is a load error.
//! - Anything that fails to evaluate approves nothing (a person decides).
//!
//! Not here: holding, the request, the audit step (the proxy does those with the answer).

use crate::context::{self, Approval};
use crate::{Policies, Principal, RequestContext};
use cedar_policy::{
    ActionConstraint, Decision as CedarDecision, Effect, EntityUid, Policy, PolicyId, PolicySet,
    PrincipalConstraint, Request,
};
use model::decision::Decision;
use model::facts::StatementFacts;
use std::str::FromStr;

const ACTION: &str = "Gatehouse::Action::\"approve\"";
const AGENT: &str = "Gatehouse::Agent";
/// The annotation that lets a rule approve a request whose row estimate is unknown.
const UNKNOWN_ESTIMATE: &str = "unknown_estimate";

/// One held statement (or string of statements) to try the automatic rules on.
#[derive(Debug, Clone, Copy)]
pub struct AutoApprovalInput<'a> {
    pub principal: &'a Principal,
    /// Every statement of what is held (all must be approved).
    pub statements: &'a [StatementFacts],
    /// The session's request context at the current hour (as for `decide`).
    pub ctx: &'a RequestContext,
    /// The decision that held it; anything but `NeedsApproval` approves nothing.
    pub decision: &'a Decision,
    pub in_transaction: bool,
    /// The planner's estimate of rows affected, when known.
    pub estimated_rows: Option<u64>,
}

/// Approved by a rule: record it as approved by `policy_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoApproved {
    /// The rule credited: the first loaded that approved the first statement.
    pub policy_id: String,
    /// Its `@reason`, or a default naming it.
    pub reason: String,
    /// Every rule that approved some statement, in load order.
    pub policies: Vec<String>,
}

/// The rules and the forbids that can stop them, pre-selected at load time.
#[derive(Debug)]
pub(crate) struct AutoRules {
    action: Option<EntityUid>,
    /// Indexed `[agent][estimate unknown]`: the forbids, and the rules that may apply then.
    sets: [[PolicySet; 2]; 2],
    rules: usize,
}

/// The `approve` action's uid.
pub(crate) fn action() -> Option<EntityUid> {
    EntityUid::from_str(ACTION).ok()
}

fn names_approve(p: &Policy) -> bool {
    let Some(approve) = action() else {
        return false;
    };
    match p.action_constraint() {
        ActionConstraint::Any => false,
        ActionConstraint::Eq(a) => a == approve,
        ActionConstraint::In(list) => list.contains(&approve),
    }
}

/// An automatic approval rule: a permit naming the `approve` action.
pub(crate) fn is_rule(p: &Policy) -> bool {
    p.effect() == Effect::Permit && names_approve(p)
}

/// What is wrong with a policy's use of the `approve` action, if anything.
pub(crate) fn problem(p: &Policy) -> Option<String> {
    if let Some(v) = p.annotation(UNKNOWN_ESTIMATE) {
        if !is_rule(p) {
            return Some("@unknown_estimate only makes sense on an automatic approval rule (a permit on Gatehouse::Action::\"approve\")".into());
        }
        if v != "approve" {
            return Some(format!(
                "@unknown_estimate takes \"approve\" (approve even without a row estimate), not {v:?}"
            ));
        }
    }
    if !names_approve(p) {
        return None;
    }
    if p.effect() == Effect::Forbid {
        return p.annotation("approval").map(|_| {
            "@approval cannot apply to the approve action (forbid it, or leave it out)".into()
        });
    }
    let only = match p.action_constraint() {
        ActionConstraint::Eq(_) => true,
        ActionConstraint::In(list) => list.len() == 1,
        ActionConstraint::Any => false,
    };
    if !only {
        return Some("an automatic approval rule must name only Gatehouse::Action::\"approve\" (a permit for statements is a separate policy)".into());
    }
    if p.annotation("id").is_none_or(|id| id.trim().is_empty()) {
        return Some(
            "an automatic approval rule needs an @id: approvals are recorded under it".into(),
        );
    }
    None
}

/// Whether a rule's principal scope names agents.
fn for_agents(p: &Policy) -> bool {
    let agent = |t: &cedar_policy::EntityTypeName| t.to_string() == AGENT;
    match p.principal_constraint() {
        PrincipalConstraint::Is(t) | PrincipalConstraint::IsIn(t, _) => agent(&t),
        PrincipalConstraint::Eq(uid) => agent(uid.type_name()),
        PrincipalConstraint::Any | PrincipalConstraint::In(_) => false,
    }
}

impl AutoRules {
    /// Selects from every loaded policy (in load order).
    pub(crate) fn build<'p>(policies: impl Iterator<Item = &'p Policy>) -> AutoRules {
        let mut sets: [[PolicySet; 2]; 2] = Default::default();
        let mut rules = 0;
        for p in policies {
            let stops = p.effect() == Effect::Forbid
                && (names_approve(p)
                    || (matches!(p.action_constraint(), ActionConstraint::Any)
                        && p.annotation("approval").is_none()));
            let rule = is_rule(p);
            rules += usize::from(rule);
            for (agent, row) in sets.iter_mut().enumerate() {
                for (unknown, set) in row.iter_mut().enumerate() {
                    let applies = rule
                        && (agent == 0 || for_agents(p))
                        && (unknown == 0 || p.annotation(UNKNOWN_ESTIMATE).is_some());
                    if stops || applies {
                        // Ids are unique (checked at load), so adding cannot fail.
                        let _ = set.add(p.clone());
                    }
                }
            }
        }
        AutoRules {
            action: action(),
            sets,
            rules,
        }
    }
}

impl Policies {
    /// Whether an automatic approval rule approves this held statement: every statement must
    /// be permitted by a rule and by no forbid on `approve`. `None` (a person decides) when no
    /// rule applies, a forbid matches, or anything fails to evaluate.
    pub fn auto_approval(&self, input: &AutoApprovalInput<'_>) -> Option<AutoApproved> {
        let Decision::NeedsApproval {
            policy_id, quorum, ..
        } = input.decision
        else {
            return None;
        };
        let auto = &self.auto;
        let action = auto.action.as_ref()?;
        if auto.rules == 0 || input.statements.is_empty() {
            return None;
        }
        let agent = input.principal.identity.kind != model::IdentityKind::Human;
        let set = auto
            .sets
            .get(usize::from(agent))?
            .get(usize::from(input.estimated_rows.is_none()))?;
        let groups = input.decision.approver_groups();
        let approval = Approval {
            policy_id,
            approver_groups: &groups,
            quorum: *quorum,
            in_transaction: input.in_transaction,
            estimated_rows: input.estimated_rows,
        };
        let mut ctx = input.ctx.clone();
        ctx.multi_statement = input.statements.len() > 1;
        let mut credited = None;
        let mut all: Vec<(usize, PolicyId)> = Vec::new();
        for facts in input.statements {
            let approved =
                self.approved_by(set, action, input.principal, facts, &ctx, &approval)?;
            credited = credited.or_else(|| approved.first().cloned());
            all.extend(approved);
        }
        let (_, id) = credited?;
        all.sort();
        all.dedup();
        let reason = self
            .meta
            .get(&id)
            .and_then(|m| m.reason.clone())
            .unwrap_or_else(|| format!("approved automatically by policy {id}"));
        Some(AutoApproved {
            policy_id: id.to_string(),
            reason,
            policies: all.into_iter().map(|(_, id)| id.to_string()).collect(),
        })
    }

    /// The rules (with their load order, first first) that approve one statement, or `None`.
    fn approved_by(
        &self,
        set: &PolicySet,
        action: &EntityUid,
        principal: &Principal,
        facts: &StatementFacts,
        ctx: &RequestContext,
        approval: &Approval<'_>,
    ) -> Option<Vec<(usize, PolicyId)>> {
        let (who, entities) = context::principal(principal).ok()?;
        let resource = context::resource(ctx).ok()?;
        let context =
            context::statement(facts, ctx, principal.identity.kind, Some(approval)).ok()?;
        let req = Request::new(who, action.clone(), resource, context, None).ok()?;
        let response = self.authorizer.is_authorized(&req, set, &entities);
        if response.diagnostics().errors().next().is_some()
            || response.decision() != CedarDecision::Allow
        {
            return None;
        }
        let mut rules: Vec<(usize, PolicyId)> = response
            .diagnostics()
            .reason()
            .filter_map(|id| {
                let m = self.meta.get(id)?;
                (!m.forbid).then(|| (m.order, id.clone()))
            })
            .collect();
        rules.sort();
        (!rules.is_empty()).then_some(rules)
    }
}

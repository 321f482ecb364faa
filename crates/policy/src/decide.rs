//! The decision: one Cedar evaluation against the policies pre-selected for the statement's
//! action, read back as Allow / Deny / NeedsApproval, failing closed on anything unexpected.

use crate::load::{ActionPolicies, Meta};
use crate::{context, Policies, Principal, RequestContext};
use cedar_policy::{Decision as CedarDecision, PolicyId, Request, Response};
use model::decision::Decision;
use model::facts::StatementFacts;

const NO_PERMIT: &str = "no policy permits this statement";

/// Decide one statement. Pure: the same inputs always give the same decision.
pub fn decide(
    policies: &Policies,
    principal: &Principal,
    facts: &StatementFacts,
    ctx: &RequestContext,
) -> Decision {
    let Some(action) = policies.actions.get(&facts.class) else {
        return internal("no action for the statement's class");
    };
    let request = match request(action, principal, facts, ctx) {
        Ok(r) => r,
        Err(e) => return internal(&e),
    };
    let (req, entities) = &request;
    let response = policies
        .authorizer
        .is_authorized(req, &action.all, entities);
    if let Some(d) = evaluation_error(&response) {
        return d;
    }
    let matched = sorted_ids(policies, &response);
    if response.decision() == CedarDecision::Allow {
        return Decision::Allow { policies: matched };
    }
    let forbids: Vec<&PolicyId> = response
        .diagnostics()
        .reason()
        .filter(|id| policies.meta.get(*id).is_some_and(|m| m.forbid))
        .collect();
    if forbids.is_empty() {
        return no_permit();
    }
    let blamed = blame(policies, &forbids);
    let Some((id, meta)) = blamed else {
        return internal("matched policy without metadata");
    };
    if forbids.iter().all(|f| has_approval(policies, f)) {
        // Would it be allowed once the approval-carrying forbids are lifted?
        let again = policies
            .authorizer
            .is_authorized(req, &action.without_approval, entities);
        if let Some(d) = evaluation_error(&again) {
            return d;
        }
        if again.decision() != CedarDecision::Allow {
            return no_permit();
        }
        let mut all = matched;
        all.extend(sorted_ids(policies, &again));
        all.sort();
        all.dedup();
        let needs = |id: &PolicyId, meta: &Meta, all: Vec<String>| Decision::NeedsApproval {
            reason: fill(meta.reason.as_deref(), id, facts, "approval required"),
            policy_id: id.to_string(),
            approver_group: meta.approval.clone().unwrap_or_default(),
            policies: all,
            quorum: meta.quorum,
            commit: meta.commit,
        };
        let first = needs(id, meta, all.clone());
        // Every approval forbid that matched must be satisfiable by one request.
        for other in &forbids {
            let Some(m) = policies.meta.get(*other) else {
                return internal("matched policy without metadata");
            };
            let d = needs(other, m, all.clone());
            if d.approval_requirement() != first.approval_requirement() {
                return Decision::several_approvals(&first, &d);
            }
        }
        return first;
    }
    Decision::Deny {
        reason: fill(meta.reason.as_deref(), id, facts, "denied"),
        policy_id: id.to_string(),
        hint: meta.hint.as_deref().map(|h| fill(Some(h), id, facts, "")),
        policies: matched,
    }
}

/// Decide every statement of a query string: allowed only if each one is; otherwise the first
/// refusal (a denial before a needs-approval), since nothing of the string may run.
/// `multi_statement` is set for the statements of a string with more than one.
pub fn decide_all(
    policies: &Policies,
    principal: &Principal,
    statements: &[StatementFacts],
    ctx: &RequestContext,
) -> Decision {
    let mut ctx = ctx.clone();
    ctx.multi_statement = statements.len() > 1;
    let mut allowed = Vec::new();
    let mut approval = None;
    for facts in statements {
        match decide(policies, principal, facts, &ctx) {
            Decision::Allow { policies } => allowed.extend(policies),
            d @ Decision::Deny { .. } => return d,
            d @ Decision::NeedsApproval { .. } => match &approval {
                None => approval = Some(d),
                Some(first) if first.approval_requirement() != d.approval_requirement() => {
                    return Decision::several_approvals(first, &d);
                }
                Some(_) => {}
            },
        }
    }
    if let Some(d) = approval {
        return d;
    }
    allowed.sort();
    allowed.dedup();
    Decision::Allow { policies: allowed }
}

type Built = (Request, cedar_policy::Entities);

fn request(
    action: &ActionPolicies,
    principal: &Principal,
    facts: &StatementFacts,
    ctx: &RequestContext,
) -> Result<Built, String> {
    let (who, entities) = context::principal(principal)?;
    let resource = context::resource(ctx)?;
    let context = context::statement(facts, ctx, principal.identity.kind, None)?;
    // The context is built to the schema's shape (a test checks it against the schema), so
    // per-request validation is skipped for speed.
    let req = Request::new(who, action.action.clone(), resource, context, None)
        .map_err(|e| e.to_string())?;
    Ok((req, entities))
}

/// Cedar skips a policy whose evaluation errors; a skipped forbid could let something through,
/// so any error is a denial.
fn evaluation_error(r: &Response) -> Option<Decision> {
    let e = r.diagnostics().errors().next()?;
    Some(Decision::Deny {
        reason: format!("policy evaluation failed: {e}"),
        policy_id: "gatehouse.evaluation-error".into(),
        hint: Some("fix the policy; until then the statement is refused".into()),
        policies: Vec::new(),
    })
}

fn sorted_ids(policies: &Policies, r: &Response) -> Vec<String> {
    let mut ids: Vec<(usize, String)> = r
        .diagnostics()
        .reason()
        .map(|id| {
            let order = policies.meta.get(id).map_or(usize::MAX, |m| m.order);
            (order, id.to_string())
        })
        .collect();
    ids.sort();
    ids.into_iter().map(|(_, id)| id).collect()
}

/// The forbid to report: the first one loaded, preferring one without `@approval`.
fn blame<'p>(policies: &'p Policies, forbids: &[&'p PolicyId]) -> Option<(&'p PolicyId, &'p Meta)> {
    forbids
        .iter()
        .filter_map(|id| policies.meta.get(*id).map(|m| (*id, m)))
        .min_by_key(|(_, m)| (m.approval.is_some(), m.order))
}

fn has_approval(policies: &Policies, id: &PolicyId) -> bool {
    policies.meta.get(id).is_some_and(|m| m.approval.is_some())
}

/// A reason or hint with `{command}`, `{opaque}`, `{weakening_settings}`,
/// `{disabled_safeguards}` and `{catalog_writes}` filled in.
fn fill(text: Option<&str>, id: &PolicyId, facts: &StatementFacts, default: &str) -> String {
    let text = match text {
        Some(t) => t.to_owned(),
        None if default.is_empty() => return String::new(),
        None => format!("{default} by policy {id}"),
    };
    let mut text = text.replace("{command}", &facts.command).replace(
        "{opaque}",
        facts.opaque.as_deref().unwrap_or("unknown reason"),
    );
    // Lists are only built when the text asks for them (decisions are on the hot path).
    if text.contains("{weakening_settings}") {
        let list = join(facts.session.weakening_settings.iter().cloned());
        text = text.replace("{weakening_settings}", &list);
    }
    if text.contains("{disabled_safeguards}") {
        let items = facts
            .disabled_safeguards
            .iter()
            .map(|s| format!("{} {}", s.kind, s.name));
        text = text.replace("{disabled_safeguards}", &join(items));
    }
    if text.contains("{catalog_writes}") {
        let list = join(facts.catalog_writes.iter().cloned());
        text = text.replace("{catalog_writes}", &list);
    }
    text
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

fn no_permit() -> Decision {
    Decision::Deny {
        reason: NO_PERMIT.into(),
        policy_id: "default".into(),
        hint: Some("no policy permits this kind of statement for you; ask an administrator".into()),
        policies: Vec::new(),
    }
}

fn internal(why: &str) -> Decision {
    Decision::Deny {
        reason: format!("policy could not be evaluated: {why}"),
        policy_id: "gatehouse.internal".into(),
        hint: None,
        policies: Vec::new(),
    }
}

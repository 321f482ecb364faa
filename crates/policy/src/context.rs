//! Turning a principal, a statement's facts and the request into a Cedar request: the
//! principal entity (a `User` or an `Agent` in its `Group`s), the target `Database` resource
//! and the `Statement` context record the schema declares.

use crate::{Principal, RequestContext};
use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, RestrictedExpression,
};
use model::facts::StatementFacts;
use model::IdentityKind;
use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

fn uid(type_name: &str, id: &str) -> Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(type_name).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

/// The principal's uid and the entities a request needs (principal with its groups).
pub(crate) fn principal(p: &Principal) -> Result<(EntityUid, Entities), String> {
    let ty = match p.identity.kind {
        IdentityKind::Human => "Gatehouse::User",
        IdentityKind::Agent => "Gatehouse::Agent",
    };
    let me = uid(ty, &p.identity.name)?;
    let groups: HashSet<EntityUid> = p
        .identity
        .groups
        .iter()
        .map(|g| uid("Gatehouse::Group", g))
        .collect::<Result<_, _>>()?;
    let mut entities: Vec<Entity> = groups
        .iter()
        .map(|g| Entity::new_no_attrs(g.clone(), HashSet::new()))
        .collect();
    entities.push(Entity::new_no_attrs(me.clone(), groups));
    let entities = Entities::from_entities(entities, None).map_err(|e| e.to_string())?;
    Ok((me, entities))
}

pub(crate) fn resource(ctx: &RequestContext) -> Result<EntityUid, String> {
    uid("Gatehouse::Database", &ctx.target)
}

fn strings<'a>(items: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(
        items
            .into_iter()
            .map(|s| RestrictedExpression::new_string(s.clone())),
    )
}

fn boolean(b: bool) -> RestrictedExpression {
    RestrictedExpression::new_bool(b)
}

/// What the `approve` action adds to the context: the approval a held statement asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Approval<'a> {
    pub policy_id: &'a str,
    pub approver_groups: &'a [String],
    pub quorum: u32,
    pub in_transaction: bool,
    pub estimated_rows: Option<u64>,
}

/// The `Gatehouse::Statement` context record; `approval` only for the `approve` action.
pub(crate) fn statement(
    f: &StatementFacts,
    ctx: &RequestContext,
    kind: IdentityKind,
    approval: Option<&Approval<'_>>,
) -> Result<Context, String> {
    let dangerous: Vec<String> = f.dangerous.iter().map(|d| d.as_str().to_owned()).collect();
    let drops: BTreeSet<String> = f.drops.iter().map(|d| d.kind.clone()).collect();
    let safeguards: BTreeSet<String> = f
        .disabled_safeguards
        .iter()
        .map(|d| d.kind.clone())
        .collect();
    let mut pairs = vec![
        (
            "target",
            RestrictedExpression::new_string(ctx.target.clone()),
        ),
        (
            "environment",
            RestrictedExpression::new_string(ctx.environment.clone()),
        ),
        (
            "command",
            RestrictedExpression::new_string(f.command.clone()),
        ),
        (
            "class",
            RestrictedExpression::new_string(f.class.as_str().to_owned()),
        ),
        ("updates_or_deletes", boolean(f.has_where.is_some())),
        ("has_where", boolean(f.has_where.unwrap_or(false))),
        ("where_tautology", boolean(f.where_tautology)),
        ("opaque", boolean(f.opaque.is_some())),
        (
            "opaque_reason",
            RestrictedExpression::new_string(f.opaque.clone().unwrap_or_default()),
        ),
        ("multi_statement", boolean(ctx.multi_statement)),
        ("dangerous", strings(&dangerous)),
        ("functions", strings(&f.functions)),
        ("tables_read", strings(&f.tables_read)),
        ("tables_written", strings(&f.tables_written)),
        ("drops", strings(&drops)),
        (
            "drops_only_session_temp",
            boolean(ctx.drops_only_session_temp),
        ),
        ("temp_only", boolean(temp_only(f, ctx))),
        ("truncate", boolean(!f.truncated.is_empty())),
        ("privileges", boolean(f.privileges)),
        ("role_switch", boolean(f.session.role_switch)),
        (
            "gatehouse_setting",
            boolean(!f.session.gatehouse_settings.is_empty()),
        ),
        ("settings", strings(&f.session.settings)),
        ("weakening_settings", strings(&f.session.weakening_settings)),
        ("disabled_safeguards", strings(&safeguards)),
        ("catalog_writes", strings(&f.catalog_writes)),
        ("unfiltered_merge", boolean(f.unfiltered_merge)),
        ("alter_system", boolean(f.alter_system)),
        ("load", boolean(f.load)),
        ("untrusted_language", boolean(f.untrusted_language)),
        (
            "application_name",
            RestrictedExpression::new_string(ctx.application_name.clone()),
        ),
        ("hour", RestrictedExpression::new_long(i64::from(ctx.hour))),
        (
            "requester_kind",
            RestrictedExpression::new_string(kind.as_str().to_owned()),
        ),
    ];
    if let Some(ip) = ctx.source_ip {
        pairs.push(("source_ip", RestrictedExpression::new_ip(ip.to_string())));
    }
    approval_pairs(&mut pairs, approval);
    Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| e.to_string())
}

/// The approval attributes: the request's for `approve`, neutral values for other actions.
fn approval_pairs(
    pairs: &mut Vec<(&'static str, RestrictedExpression)>,
    approval: Option<&Approval<'_>>,
) {
    let none = Approval {
        policy_id: "",
        approver_groups: &[],
        quorum: 0,
        in_transaction: false,
        estimated_rows: None,
    };
    let a = approval.unwrap_or(&none);
    pairs.push((
        "approval_policy",
        RestrictedExpression::new_string(a.policy_id.to_owned()),
    ));
    pairs.push(("approver_groups", strings(a.approver_groups)));
    pairs.push((
        "quorum",
        RestrictedExpression::new_long(i64::from(a.quorum)),
    ));
    pairs.push(("in_transaction", boolean(a.in_transaction)));
    if let Some(rows) = a.estimated_rows {
        // A count past i64::MAX is no smaller for a rule's comparison.
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        pairs.push(("estimated_rows", RestrictedExpression::new_long(rows)));
    }
}

/// The statement only creates this session's temporary tables, or only drops them.
fn temp_only(f: &StatementFacts, ctx: &RequestContext) -> bool {
    if ctx.drops_only_session_temp {
        return true;
    }
    let bare = |t: &String| t.rsplit('.').next().map(str::to_owned).unwrap_or_default();
    !f.temp_tables_created.is_empty()
        && f.drops.is_empty()
        && f.truncated.is_empty()
        && f.tables_written
            .iter()
            .all(|t| f.temp_tables_created.contains(&bare(t)))
}

#[cfg(test)]
mod tests;

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

/// The `Gatehouse::Statement` context record.
pub(crate) fn statement(f: &StatementFacts, ctx: &RequestContext) -> Result<Context, String> {
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
    ];
    if let Some(ip) = ctx.source_ip {
        pairs.push(("source_ip", RestrictedExpression::new_ip(ip.to_string())));
    }
    Context::from_pairs(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| e.to_string())
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

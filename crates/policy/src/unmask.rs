//! The `unmask` decision: may this principal see a sensitive column in clear? Masked unless
//! a permit matches and no forbid does; any evaluation error keeps it masked.

use crate::{context, Policies, Principal, RequestContext};
use cedar_policy::{
    Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request,
    RestrictedExpression,
};
use model::facts::StatementFacts;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;

/// `column` is `schema.table.column`; `tags` come from the `[[sensitive]]` catalog.
pub fn may_unmask(
    policies: &Policies,
    principal: &Principal,
    column: &str,
    tags: &[String],
    ctx: &RequestContext,
) -> bool {
    let Some(action) = &policies.unmask else {
        return false;
    };
    let Ok(request) = build(action.action.clone(), principal, column, tags, ctx) else {
        return false;
    };
    let (req, entities) = request;
    let response = policies
        .authorizer
        .is_authorized(&req, &action.all, &entities);
    response.diagnostics().errors().next().is_none() && response.decision() == CedarDecision::Allow
}

fn uid(ty: &str, id: &str) -> Result<EntityUid, String> {
    let ty = EntityTypeName::from_str(ty).map_err(|e| e.to_string())?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(id)))
}

fn build(
    action: EntityUid,
    principal: &Principal,
    column: &str,
    tags: &[String],
    ctx: &RequestContext,
) -> Result<(Request, Entities), String> {
    let (who, people) = context::principal(principal)?;
    let table_name = column.rsplit_once('.').map_or(column, |(t, _)| t);
    let database = uid("Gatehouse::Database", &ctx.target)?;
    let table = uid("Gatehouse::Table", table_name)?;
    let col = uid("Gatehouse::Column", column)?;
    let tag_set = RestrictedExpression::new_set(
        tags.iter()
            .map(|t| RestrictedExpression::new_string(t.clone())),
    );
    let attrs = HashMap::from([("tags".to_owned(), tag_set)]);
    let entities = vec![
        Entity::new_no_attrs(database.clone(), HashSet::new()),
        Entity::new_no_attrs(table.clone(), HashSet::from([database])),
        Entity::new(col.clone(), attrs, HashSet::from([table])).map_err(|e| e.to_string())?,
    ];
    let entities = people
        .add_entities(entities, None)
        .map_err(|e| e.to_string())?;
    let context = context::statement(
        &StatementFacts::default(),
        ctx,
        principal.identity.kind,
        None,
    )?;
    let req = Request::new(who, action, col, context, None).map_err(|e| e.to_string())?;
    Ok((req, entities))
}

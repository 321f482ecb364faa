//! `[[sensitive]]` entries: which columns of which target are sensitive, their tags, mask
//! strategy and whether predicates on them are refused. Existence of each column upstream
//! is checked when the server starts (it needs the catalog).

use super::raw::RawSensitive;
use proxy::{SensitiveColumn, SensitiveSet, TargetConfig};
use sql::lineage::ColumnRef;
use std::collections::HashMap;
use std::sync::Arc;

pub fn attach(
    mut targets: HashMap<String, Arc<TargetConfig>>,
    raw: &[RawSensitive],
    errors: &mut Vec<String>,
) -> HashMap<String, Arc<TargetConfig>> {
    let mut sets: HashMap<String, SensitiveSet> = HashMap::new();
    for (i, s) in raw.iter().enumerate() {
        let key = format!("sensitive[{i}]");
        if !targets.contains_key(&s.target) {
            errors.push(format!("{key}.target: no target named {:?}", s.target));
            continue;
        }
        let strategy = match s
            .mask
            .as_deref()
            .unwrap_or("full")
            .parse::<masking::Strategy>()
        {
            Ok(st) => st,
            Err(_) => {
                errors.push(format!(
                    "{key}.mask: {:?} is not one of full, partial, hash, null, email, last4",
                    s.mask.as_deref().unwrap_or_default()
                ));
                continue;
            }
        };
        let deny_predicates = match s.predicates.as_deref() {
            None | Some("deny") => true,
            Some("allow") => false,
            Some(other) => {
                errors.push(format!(
                    "{key}.predicates: {other:?} is not one of \"deny\", \"allow\""
                ));
                true
            }
        };
        if s.columns.is_empty() {
            errors.push(format!("{key}.columns: list at least one column"));
        }
        for (j, c) in s.columns.iter().enumerate() {
            let parts: Vec<&str> = c.split('.').collect();
            let col = match parts.as_slice() {
                [schema, table, column] => ColumnRef::new(schema, table, column),
                [table, column] => ColumnRef::new("public", table, column),
                _ => {
                    errors.push(format!(
                        "{key}.columns[{j}]: {c:?} is not schema.table.column"
                    ));
                    continue;
                }
            };
            let entry = SensitiveColumn {
                tags: s.tags.clone(),
                strategy,
                deny_predicates,
            };
            sets.entry(s.target.clone())
                .or_default()
                .columns
                .insert(col, entry);
        }
    }
    for (name, set) in sets {
        if let Some(t) = targets.get_mut(&name) {
            let mut updated = TargetConfig::clone(t);
            updated.sensitive = Arc::new(set);
            *t = Arc::new(updated);
        }
    }
    targets
}

//! From lineage to a mask plan: which output columns of a statement carry values of sensitive
//! columns this principal may not see, and how to mask them; or why the statement must be
//! refused (a side channel, a write that copies sensitive values, lineage that cannot be
//! proven). Pure apart from the `may_unmask` callback.

use crate::config::SensitiveSet;
use sql::lineage::{ColumnRef, Lineage};
use std::collections::BTreeSet;

/// How one output column is masked.
#[derive(Debug, Clone)]
pub struct PlannedMask {
    pub strategy: masking::Strategy,
    /// Tags of the sensitive sources (for the audit trail).
    pub tags: Vec<String>,
    /// Output column name (for the audit trail).
    pub name: String,
}

/// Per output position, in RowDescription order.
#[derive(Debug, Clone, Default)]
pub struct MaskPlan {
    pub columns: Vec<Option<PlannedMask>>,
}

impl MaskPlan {
    /// Every column masked by either plan (by `a`'s mask where both mask it).
    pub fn union(a: Option<&MaskPlan>, b: &MaskPlan) -> MaskPlan {
        let Some(a) = a else { return b.clone() };
        let n = a.columns.len().max(b.columns.len());
        let columns = (0..n)
            .map(|i| {
                let first = a.columns.get(i).cloned().flatten();
                first.or_else(|| b.columns.get(i).cloned().flatten())
            })
            .collect();
        MaskPlan { columns }
    }

    /// `name:tag,tag` for each masked column.
    pub fn summary(&self) -> Vec<String> {
        self.columns
            .iter()
            .flatten()
            .map(|m| format!("{}:{}", m.name, m.tags.join(",")))
            .collect()
    }
}

/// Why a statement touching sensitive data is refused.
pub struct Refusal(pub String);

/// Builds the plan for one statement's lineage. `visible(col)` answers whether the principal
/// may see `col` in clear.
pub fn plan(
    lineage: &Lineage,
    sensitive: &SensitiveSet,
    visible: &mut dyn FnMut(&ColumnRef) -> bool,
) -> Result<Option<MaskPlan>, Refusal> {
    let mut hidden = |c: &ColumnRef| sensitive.columns.contains_key(c) && !visible(c);
    for c in &lineage.predicate_columns {
        let deny = sensitive.columns.get(c).is_some_and(|s| s.deny_predicates);
        if deny && hidden(c) {
            return Err(Refusal(format!(
                "filtering, joining, grouping or ordering on sensitive column {c} is not allowed"
            )));
        }
    }
    for (target, sources) in &lineage.written_from {
        if let Some(c) = sources.iter().find(|c| hidden(c)) {
            return Err(Refusal(format!(
                "writing sensitive column {c} into {target} is not allowed"
            )));
        }
    }
    let mut any = false;
    let mut columns = Vec::with_capacity(lineage.outputs.len());
    for out in &lineage.outputs {
        let secret: Vec<&ColumnRef> = out.sources.iter().filter(|c| hidden(c)).collect();
        if secret.is_empty() {
            columns.push(None);
            continue;
        }
        let tags: BTreeSet<String> = secret
            .iter()
            .filter_map(|c| sensitive.columns.get(*c))
            .flat_map(|s| s.tags.iter().cloned())
            .collect();
        // The configured strategy applies when the output IS that one column; anything
        // derived (or a whole row) is replaced whole.
        let strategy = match (out.direct && !out.whole_row, secret.as_slice()) {
            (true, [one]) if out.sources.len() == 1 => sensitive
                .columns
                .get(*one)
                .map_or(masking::Strategy::Full, |s| s.strategy),
            _ if out.whole_row => masking::Strategy::Null,
            _ => masking::Strategy::Full,
        };
        any = true;
        columns.push(Some(PlannedMask {
            strategy,
            tags: tags.into_iter().collect(),
            name: out.name.clone(),
        }));
    }
    Ok(any.then_some(MaskPlan { columns }))
}

//! MERGE: its parts (target, source, ON, WHEN clauses) and which of its UPDATE / DELETE
//! actions reach every row of the target.
//!
//! The ON condition plays WHERE for the `WHEN MATCHED` actions, but only as far as it looks at
//! the target: `ON true`, `ON 1 = 1`, and also `ON s.active` (about the source only) match
//! every target row with each qualifying source row. A `WHEN MATCHED AND …` condition
//! restricts under the same rule. `WHEN NOT MATCHED BY SOURCE` acts on the target rows the
//! join does *not* match, so ON restricts nothing there and only the action's own condition
//! (which may only name the target) can.
//!
//! "Looks at the target" is syntactic: a column qualified by the target's visible name, or an
//! unqualified column (it may be the target's; the server would know), anywhere in the
//! condition, subqueries included (a correlated one names the target). Known gaps, as for
//! WHERE: a condition that names the target but does not restrict it (`t.id > 0`,
//! `t.id = s.id OR s.all`), or names a source column unqualified, counts as a filter.

use super::Walker;
use pg_query::protobuf::{BoolExpr, BoolExprType, CmdType, MergeMatchKind, MergeStmt, Node};
use pg_query::NodeEnum as N;
use serde_json::Value;
use std::collections::BTreeSet;

impl Walker<'_> {
    /// MERGE: target written, source read, every expression walked; each UPDATE/DELETE action
    /// adds a filter entry, and one that reaches every target row sets `unfiltered_merge`.
    pub(super) fn merge_stmt(&mut self, s: &MergeStmt) {
        let mark = self.ctes.len();
        self.with_clause(s.with_clause.as_ref());
        self.scopes.push(Vec::new());
        let table = self.dml_target(s.relation.as_ref());
        if let Some(src) = &s.source_relation {
            self.walk_from_item(src);
        }
        self.opt_expr(s.join_condition.as_deref());
        let target = s
            .relation
            .as_ref()
            .map(|r| {
                r.alias
                    .as_ref()
                    .map_or_else(|| r.relname.clone(), |a| a.aliasname.clone())
            })
            .unwrap_or_default();
        let on = s.join_condition.as_deref();
        let on_open = on.is_none_or(|c| self.every_target_row(c, &target));
        for clause in &s.merge_when_clauses {
            let Some(N::MergeWhenClause(w)) = &clause.node else {
                continue;
            };
            self.opt_expr(w.condition.as_deref());
            self.target_columns(table.as_deref(), &w.target_list);
            self.exprs(&w.values);
            let cmd = CmdType::try_from(w.command_type);
            if !matches!(cmd, Ok(CmdType::CmdUpdate | CmdType::CmdDelete)) {
                continue;
            }
            let cond = w.condition.as_deref();
            let by_source = MergeMatchKind::try_from(w.match_kind)
                == Ok(MergeMatchKind::MergeWhenNotMatchedBySource);
            let (filtered, every_row) = if by_source {
                (
                    cond.is_some(),
                    cond.is_none_or(|c| self.fold.is_tautology(c)),
                )
            } else {
                let when_open = cond.is_none_or(|c| self.every_target_row(c, &target));
                (on.is_some(), on_open && when_open)
            };
            self.filters.push((filtered, every_row));
            self.facts.unfiltered_merge |= every_row;
        }
        self.exprs(&s.returning_list);
        self.scopes.pop();
        self.ctes.truncate(mark);
    }

    /// Whether `cond` lets every target row through: always true, or not about the target
    /// and not provably false (`ON false` matches nothing).
    fn every_target_row(&mut self, cond: &Node, target: &str) -> bool {
        if self.fold.is_tautology(cond) {
            return true;
        }
        let negated = Node {
            node: Some(N::BoolExpr(Box::new(BoolExpr {
                boolop: BoolExprType::NotExpr.into(),
                args: vec![cond.clone()],
                ..BoolExpr::default()
            }))),
        };
        let never = self.fold.is_tautology(&negated);
        !never && !mentions_target(cond, target, self.ctx.vars)
    }
}

/// Whether the expression names a column that may be the target's. Complete over
/// expression types: it looks at the serialised tree.
fn mentions_target(cond: &Node, target: &str, vars: &BTreeSet<String>) -> bool {
    match serde_json::to_value(cond) {
        Ok(v) => mentions(&v, target, vars),
        // Cannot tell: say it does not restrict, so the MERGE is refused, not waved through.
        Err(_) => false,
    }
}

fn mentions(v: &Value, target: &str, vars: &BTreeSet<String>) -> bool {
    match v {
        // A subquery counts only through its column references (a correlated one names the
        // target; `(SELECT true)` does not).
        Value::Object(map) => map.iter().any(|(k, child)| match k.as_str() {
            "ColumnRef" => column_of_target(child, target, vars),
            _ => mentions(child, target, vars),
        }),
        Value::Array(items) => items.iter().any(|i| mentions(i, target, vars)),
        _ => false,
    }
}

/// A column reference that may be the target's: qualified by its visible name, or
/// unqualified and not a PL/pgSQL variable.
fn column_of_target(column_ref: &Value, target: &str, vars: &BTreeSet<String>) -> bool {
    let fields: Vec<Option<&str>> = column_ref
        .get("fields")
        .and_then(Value::as_array)
        .map(|f| {
            f.iter()
                .map(|x| {
                    x.get("node")
                        .and_then(|n| n.get("String"))
                        .and_then(|s| s.get("sval"))
                        .and_then(Value::as_str)
                })
                .collect()
        })
        .unwrap_or_default();
    match fields.as_slice() {
        [Some(first), ..] if vars.contains(*first) => false,
        [] | [_] => true,
        // `q.col`, `schema.q.col`, `q.*`: the qualifier is the next-to-last name.
        [.., qualifier, _] => *qualifier == Some(target),
    }
}

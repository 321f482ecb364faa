//! Is a WHERE condition effectively "every row"?
//!
//! A condition restricts rows only if it depends on them. So the rule is: fold what is
//! constant (`1 = 1`, `'a' = 'a'`, `NOT false`, `1 < 2`, `2 IN (1, 2)`), treat a column
//! compared with itself as true, combine with three-valued AND/OR/NOT (OR with a true side is
//! true, AND needs both), and treat any condition that references no column and no subquery
//! as true even when its value cannot be computed here (`random() < 2`, `$1`, `now() > …`):
//! it is the same for every row, so it either matches all of them or none; so is its negation
//! (`NOT ('a' < 'b')` is never a filter, whatever the collation says). Only conditions that
//! are provably false or that depend on row data count as filters. Such a "true" answer is
//! the text's own: the facts cache does not reuse it for other constants.
//!
//! Known gaps (documented, not silently wrong): `f(x) = f(x)` for non-column `x`,
//! `x > x - 1`, and correlated `EXISTS` are treated as real filters.

use constant::{op_name, val_truth, value};
use pg_query::protobuf::{AExpr, AExprKind, BoolExprType, Node, NullTestType};
use pg_query::NodeEnum;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

impl From<bool> for Truth {
    fn from(b: bool) -> Self {
        if b {
            Truth::True
        } else {
            Truth::False
        }
    }
}

/// Folds conditions; `literal_sensitive` records whether the answer depended on the value of
/// some literal (the facts cache must then not reuse it for other literals).
#[derive(Debug)]
pub(crate) struct Fold<'a> {
    pub literal_sensitive: bool,
    /// PL/pgSQL variables in scope: a bare name that is one of them is not a column (with
    /// the default `variable_conflict = error`, an ambiguous name fails instead of running).
    vars: &'a BTreeSet<String>,
}

static NO_VARS: BTreeSet<String> = BTreeSet::new();

impl Default for Fold<'static> {
    fn default() -> Self {
        Fold::with_vars(&NO_VARS)
    }
}

impl<'a> Fold<'a> {
    pub(crate) fn with_vars(vars: &'a BTreeSet<String>) -> Self {
        Fold {
            literal_sensitive: false,
            vars,
        }
    }

    /// Whether `cond` holds for every row.
    pub(crate) fn is_tautology(&mut self, cond: &Node) -> bool {
        self.truth(cond) == Truth::True
    }

    fn truth(&mut self, node: &Node) -> Truth {
        if let Some(v) = value(node) {
            self.literal_sensitive = true;
            return val_truth(&v);
        }
        match &node.node {
            Some(NodeEnum::BoolExpr(b)) => match BoolExprType::try_from(b.boolop) {
                Ok(BoolExprType::AndExpr) => self.and(&b.args),
                Ok(BoolExprType::OrExpr) => self.or(&b.args),
                // A condition that does not look at rows may be "true" here only because it
                // could not be computed (`'a' < 'b'` needs a collation): its negation is just
                // as row-independent, so all rows or none, never a filter.
                Ok(BoolExprType::NotExpr) => match b.args.first() {
                    Some(a) if !depends_on_rows(a, self.vars) => self.independent(node),
                    Some(a) => match self.truth(a) {
                        Truth::True => Truth::False,
                        Truth::False => Truth::True,
                        Truth::Unknown => Truth::Unknown,
                    },
                    None => Truth::Unknown,
                },
                _ => Truth::Unknown,
            },
            Some(NodeEnum::AExpr(e)) => match self_comparison(e) {
                Some(t) => t,
                None => self.independent(node),
            },
            Some(NodeEnum::BooleanTest(t)) => {
                use pg_query::protobuf::BoolTestType as B;
                let inner = t.arg.as_deref().map_or(Truth::Unknown, |a| self.truth(a));
                match (B::try_from(t.booltesttype), inner) {
                    (Ok(B::IsTrue | B::IsNotFalse), Truth::True) => Truth::True,
                    (Ok(B::IsFalse | B::IsNotTrue), Truth::False) => Truth::True,
                    _ => self.independent(node),
                }
            }
            Some(NodeEnum::SubLink(s)) => exists_without_rows(s).unwrap_or(Truth::Unknown),
            // WHERE CURRENT OF cursor: exactly the cursor's current row.
            Some(NodeEnum::CurrentOfExpr(_)) => Truth::Unknown,
            _ => self.independent(node),
        }
    }

    fn and(&mut self, args: &[Node]) -> Truth {
        let mut all_true = true;
        for a in args {
            match self.truth(a) {
                Truth::False => return Truth::False,
                Truth::Unknown => all_true = false,
                Truth::True => {}
            }
        }
        all_true.into()
    }

    fn or(&mut self, args: &[Node]) -> Truth {
        let mut all_false = true;
        for a in args {
            match self.truth(a) {
                Truth::True => return Truth::True,
                Truth::Unknown => all_false = false,
                Truth::False => {}
            }
        }
        if complementary_null_tests(args) {
            return Truth::True;
        }
        if all_false {
            Truth::False
        } else {
            Truth::Unknown
        }
    }

    /// A condition that does not look at rows holds for all of them or for none; since it
    /// could not be folded to false, assume all.
    fn independent(&mut self, node: &Node) -> Truth {
        if depends_on_rows(node, self.vars) {
            Truth::Unknown
        } else {
            // Other constants might fold it to false (`'a' < 'a'`): the answer is this
            // text's own.
            self.literal_sensitive = true;
            Truth::True
        }
    }
}

/// Whether the expression mentions a column (that is not a PL/pgSQL variable) or a subquery
/// anywhere. Complete: it looks at the serialised tree, so expression types this module does
/// not know are still covered.
fn depends_on_rows(node: &Node, vars: &BTreeSet<String>) -> bool {
    match serde_json::to_value(node) {
        Ok(v) => mentions_rows(&v, vars),
        // Cannot tell. Calling it a real filter would be the unsafe answer.
        Err(_) => false,
    }
}

fn mentions_rows(v: &serde_json::Value, vars: &BTreeSet<String>) -> bool {
    use serde_json::Value;
    match v {
        Value::Object(map) => map.iter().any(|(k, child)| match k.as_str() {
            "SubLink" | "Var" => true,
            "ColumnRef" => !is_variable(child, vars),
            _ => mentions_rows(child, vars),
        }),
        Value::Array(items) => items.iter().any(|i| mentions_rows(i, vars)),
        _ => false,
    }
}

/// A column reference whose first name is a PL/pgSQL variable (`v`, `rec.field`).
fn is_variable(column_ref: &serde_json::Value, vars: &BTreeSet<String>) -> bool {
    column_ref
        .get("fields")
        .and_then(|f| f.get(0))
        .and_then(|f| f.get("node"))
        .and_then(|n| n.get("String"))
        .and_then(|s| s.get("sval"))
        .and_then(|s| s.as_str())
        .is_some_and(|name| vars.contains(name))
}

/// `EXISTS (SELECT 1)` — a subquery without FROM and WHERE always has a row.
fn exists_without_rows(s: &pg_query::protobuf::SubLink) -> Option<Truth> {
    use pg_query::protobuf::SubLinkType;
    if SubLinkType::try_from(s.sub_link_type).ok()? != SubLinkType::ExistsSublink {
        return None;
    }
    match s.subselect.as_deref()?.node.as_ref()? {
        NodeEnum::SelectStmt(sel) if sel.from_clause.is_empty() && sel.where_clause.is_none() => {
            Some(Truth::True)
        }
        _ => None,
    }
}

/// `x = x`, `x <= x`, `x IS NOT DISTINCT FROM x` are true (for the rows where x is not null,
/// which is as good as all for a guardrail); `x <> x`, `x < x` are false.
fn self_comparison(e: &AExpr) -> Option<Truth> {
    let (l, r) = (e.lexpr.as_deref()?, e.rexpr.as_deref()?);
    if !same_column(l, r) {
        return None;
    }
    match AExprKind::try_from(e.kind).ok()? {
        AExprKind::AexprNotDistinct => Some(Truth::True),
        AExprKind::AexprDistinct => Some(Truth::False),
        AExprKind::AexprOp => match op_name(e)?.as_str() {
            "=" | "<=" | ">=" => Some(Truth::True),
            "<>" | "!=" | "<" | ">" => Some(Truth::False),
            _ => None,
        },
        _ => None,
    }
}

/// Two column references to the same column: equal dotted names, or equal final names where
/// one side is unqualified.
fn same_column(a: &Node, b: &Node) -> bool {
    let fields = |n: &Node| match &n.node {
        Some(NodeEnum::ColumnRef(c)) => crate::names::strings(&c.fields),
        _ => None,
    };
    match (fields(a), fields(b)) {
        (Some(x), Some(y)) if x == y => true,
        (Some(x), Some(y)) => (x.len() == 1 || y.len() == 1) && x.last() == y.last(),
        _ => false,
    }
}

/// `x IS NULL OR x IS NOT NULL` (any order, among other disjuncts).
fn complementary_null_tests(args: &[Node]) -> bool {
    let tests: Vec<(&Node, bool)> = args
        .iter()
        .filter_map(|a| match &a.node {
            Some(NodeEnum::NullTest(t)) => {
                let is_null = NullTestType::try_from(t.nulltesttype).ok()? == NullTestType::IsNull;
                Some((t.arg.as_deref()?, is_null))
            }
            _ => None,
        })
        .collect();
    tests.iter().any(|(a, is_null)| {
        tests
            .iter()
            .any(|(b, other)| is_null != other && same_column(a, b))
    })
}

mod constant;

#[cfg(test)]
mod tests;

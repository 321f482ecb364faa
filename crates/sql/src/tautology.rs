//! Is a WHERE condition effectively "every row"?
//!
//! A condition restricts rows only if it depends on them. So the rule is: fold what is
//! constant (`1 = 1`, `'a' = 'a'`, `NOT false`, `1 < 2`, `2 IN (1, 2)`), treat a column
//! compared with itself as true, combine with three-valued AND/OR/NOT (OR with a true side is
//! true, AND needs both), and treat any condition that references no column and no subquery
//! as true even when its value cannot be computed here (`random() < 2`, `$1`, `now() > …`):
//! it is the same for every row, so it either matches all of them or none. Only conditions
//! that are provably false or that depend on row data count as filters.
//!
//! Known gaps (documented, not silently wrong): `f(x) = f(x)` for non-column `x`,
//! `x > x - 1`, and correlated `EXISTS` are treated as real filters.

use pg_query::protobuf::{a_const, AExpr, AExprKind, BoolExprType, Node, NullTestType};
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

/// A constant value, as far as folding needs one.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
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
                Ok(BoolExprType::NotExpr) => match b.args.first().map(|a| self.truth(a)) {
                    Some(Truth::True) => Truth::False,
                    Some(Truth::False) => Truth::True,
                    _ => Truth::Unknown,
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
            Truth::True
        }
    }
}

fn val_truth(v: &Val) -> Truth {
    match v {
        Val::Null => Truth::False,
        Val::Bool(b) => (*b).into(),
        Val::Num(n) => (*n != 0.0).into(),
        Val::Str(s) => parse_bool(s).map_or(Truth::Unknown, Truth::from),
    }
}

/// PostgreSQL's boolean input syntax (`boolin`): unique prefixes of true/false/yes/no, on/off,
/// 1/0, case-insensitive, surrounding blanks ignored.
fn parse_bool(s: &str) -> Option<bool> {
    let s = s.trim().to_ascii_lowercase();
    let prefix_of = |word: &str| !s.is_empty() && word.starts_with(s.as_str());
    if prefix_of("true") || prefix_of("yes") || s == "on" || s == "1" {
        Some(true)
    } else if prefix_of("false") || prefix_of("no") || s == "off" || s == "0" {
        Some(false)
    } else {
        None
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

fn op_name(e: &AExpr) -> Option<String> {
    crate::names::strings(&e.name)?.pop()
}

/// The value of a constant expression, if this module can compute it.
fn value(node: &Node) -> Option<Val> {
    match node.node.as_ref()? {
        NodeEnum::AConst(c) => {
            if c.isnull {
                return Some(Val::Null);
            }
            Some(match c.val.as_ref()? {
                a_const::Val::Ival(i) => Val::Num(f64::from(i.ival)),
                a_const::Val::Fval(f) => Val::Num(f.fval.parse().ok()?),
                a_const::Val::Boolval(b) => Val::Bool(b.boolval),
                a_const::Val::Sval(s) => Val::Str(s.sval.clone()),
                a_const::Val::Bsval(s) => Val::Str(s.bsval.clone()),
            })
        }
        NodeEnum::TypeCast(t) => {
            let v = value(t.arg.as_deref()?)?;
            let ty = t
                .type_name
                .as_ref()
                .and_then(|n| crate::names::strings(&n.names))?;
            cast(v, ty.last()?.as_str())
        }
        NodeEnum::AExpr(e) => expr_value(e),
        NodeEnum::BoolExpr(b) => {
            let vals: Option<Vec<Truth>> = b
                .args
                .iter()
                .map(|a| value(a).map(|v| val_truth(&v)))
                .collect();
            let vals = vals?;
            let t = match BoolExprType::try_from(b.boolop).ok()? {
                BoolExprType::AndExpr => vals.iter().all(|t| *t == Truth::True),
                BoolExprType::OrExpr => vals.contains(&Truth::True),
                BoolExprType::NotExpr => *vals.first()? == Truth::False,
                BoolExprType::Undefined => return None,
            };
            Some(Val::Bool(t))
        }
        NodeEnum::NullTest(t) => {
            let v = value(t.arg.as_deref()?)?;
            let is_null = NullTestType::try_from(t.nulltesttype).ok()? == NullTestType::IsNull;
            Some(Val::Bool((v == Val::Null) == is_null))
        }
        _ => None,
    }
}

fn cast(v: Val, ty: &str) -> Option<Val> {
    match (ty, v) {
        ("bool" | "boolean", Val::Str(s)) => parse_bool(&s).map(Val::Bool),
        ("bool" | "boolean", Val::Num(n)) => Some(Val::Bool(n != 0.0)),
        ("int2" | "int4" | "int8" | "integer" | "numeric" | "float4" | "float8", Val::Str(s)) => {
            s.trim().parse().ok().map(Val::Num)
        }
        (_, v) => Some(v),
    }
}

fn expr_value(e: &AExpr) -> Option<Val> {
    let l = value(e.lexpr.as_deref()?)?;
    match AExprKind::try_from(e.kind).ok()? {
        AExprKind::AexprOp => {
            let r = value(e.rexpr.as_deref()?)?;
            binary(&op_name(e)?, l, r)
        }
        AExprKind::AexprIn => {
            let items = match e.rexpr.as_deref()?.node.as_ref()? {
                NodeEnum::List(list) => list.items.iter().map(value).collect::<Option<Vec<_>>>()?,
                _ => return None,
            };
            let negated = op_name(e)? == "<>";
            let found = items.iter().any(|i| equal(&l, i) == Some(true));
            Some(Val::Bool(found != negated))
        }
        AExprKind::AexprDistinct | AExprKind::AexprNotDistinct => {
            let r = value(e.rexpr.as_deref()?)?;
            let same = l == r || equal(&l, &r) == Some(true);
            Some(Val::Bool(
                same == (e.kind == AExprKind::AexprNotDistinct as i32),
            ))
        }
        AExprKind::AexprBetween | AExprKind::AexprNotBetween => {
            let bounds = match e.rexpr.as_deref()?.node.as_ref()? {
                NodeEnum::List(list) => list.items.iter().map(value).collect::<Option<Vec<_>>>()?,
                _ => return None,
            };
            let (lo, hi) = (bounds.first()?, bounds.get(1)?);
            let inside = compare(&l, lo)?.is_ge() && compare(&l, hi)?.is_le();
            Some(Val::Bool(
                inside == (e.kind == AExprKind::AexprBetween as i32),
            ))
        }
        _ => None,
    }
}

fn binary(op: &str, l: Val, r: Val) -> Option<Val> {
    use std::cmp::Ordering as O;
    if l == Val::Null || r == Val::Null {
        return Some(Val::Null);
    }
    let ord = || compare(&l, &r);
    Some(match op {
        "=" => Val::Bool(equal(&l, &r)?),
        "<>" | "!=" => Val::Bool(!equal(&l, &r)?),
        "<" => Val::Bool(ord()? == O::Less),
        ">" => Val::Bool(ord()? == O::Greater),
        "<=" => Val::Bool(ord()? != O::Greater),
        ">=" => Val::Bool(ord()? != O::Less),
        "+" | "-" | "*" | "/" | "%" => {
            let (a, b) = (num(&l)?, num(&r)?);
            Val::Num(match op {
                "+" => a + b,
                "-" => a - b,
                "*" => a * b,
                "/" if b != 0.0 => a / b,
                "%" if b != 0.0 => a % b,
                _ => return None,
            })
        }
        "||" => match (l, r) {
            (Val::Str(a), Val::Str(b)) => Val::Str(a + &b),
            _ => return None,
        },
        _ => return None,
    })
}

fn equal(l: &Val, r: &Val) -> Option<bool> {
    match (l, r) {
        (Val::Str(a), Val::Str(b)) => Some(a == b),
        _ => Some(compare(l, r)? == std::cmp::Ordering::Equal),
    }
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Num(n) => Some(*n),
        Val::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Order two constants the way PostgreSQL would for the cases that do not depend on a
/// collation: numbers (an untyped string literal next to a number is read as a number),
/// booleans, and string equality. Ordering two strings is left unknown.
fn compare(l: &Val, r: &Val) -> Option<std::cmp::Ordering> {
    match (l, r) {
        (Val::Bool(a), Val::Bool(b)) => Some(a.cmp(b)),
        (Val::Str(a), Val::Str(b)) if a == b => Some(std::cmp::Ordering::Equal),
        (Val::Str(_), Val::Str(_)) => None,
        (Val::Bool(b), Val::Str(s)) => Some(b.cmp(&parse_bool(s)?)),
        (Val::Str(s), Val::Bool(b)) => Some(parse_bool(s)?.cmp(b)),
        _ => num(l)?.partial_cmp(&num(r)?),
    }
}

#[cfg(test)]
mod tests;

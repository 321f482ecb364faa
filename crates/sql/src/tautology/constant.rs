//! Folding constant expressions: the values of literals, casts, comparisons, arithmetic,
//! IN/BETWEEN and boolean connectives over constants, as far as that can be done without a
//! catalog (no collations, no user functions).

use super::Truth;
use pg_query::protobuf::{a_const, AExpr, AExprKind, BoolExprType, Node, NullTestType};
use pg_query::NodeEnum;

/// A constant value, as far as folding needs one.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Val {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
}

pub(super) fn val_truth(v: &Val) -> Truth {
    match v {
        Val::Null => Truth::False,
        Val::Bool(b) => (*b).into(),
        Val::Num(n) => (*n != 0.0).into(),
        Val::Str(s) => parse_bool(s).map_or(Truth::Unknown, Truth::from),
    }
}

/// PostgreSQL's boolean input syntax (`boolin`): unique prefixes of true/false/yes/no, on/off,
/// 1/0, case-insensitive, surrounding blanks ignored.
pub(super) fn parse_bool(s: &str) -> Option<bool> {
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

pub(super) fn op_name(e: &AExpr) -> Option<String> {
    crate::names::strings(&e.name)?.pop()
}

/// The value of a constant expression, if this module can compute it.
pub(super) fn value(node: &Node) -> Option<Val> {
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

//! Column references: which visible item a name means, following PostgreSQL's rules
//! (parse_relation.c): an unqualified name is a column of the nearest query level that has
//! one (two in the same level is ambiguous), else a whole-row reference to an item of that
//! name; `a.b` is column `b` of item `a`, else field `b` of composite column `a`;
//! `s.t.c` needs an unaliased relation `s.t`. Anything else is unsupported, never guessed.

use super::flow::{Col, Flow, Ns};
use super::walker::{Levels, Walker};
use super::{unsupported, Result};
use pg_query::protobuf::ColumnRef as PgColumnRef;
use pg_query::NodeEnum as N;

/// A column reference split into its name parts and whether it ends in `*`.
fn parts(c: &PgColumnRef) -> Result<(Vec<&str>, bool)> {
    let mut names = Vec::with_capacity(c.fields.len());
    let mut star = false;
    for (i, f) in c.fields.iter().enumerate() {
        match &f.node {
            Some(N::String(s)) if !star => names.push(s.sval.as_str()),
            Some(N::AStar(_)) if i + 1 == c.fields.len() => star = true,
            _ => return unsupported("column reference with unexpected parts"),
        }
    }
    Ok((names, star))
}

enum Found<'n> {
    Col(&'n Col),
    Open(&'n Ns),
    Nothing,
    Ambiguous,
}

/// An unqualified column name within one query level.
fn in_level<'n>(level: &'n [Ns], name: &str) -> Found<'n> {
    let mut hit = None;
    for ns in level.iter().filter(|n| n.cols_visible) {
        for c in ns.cols.iter().filter(|c| c.name == name) {
            if hit.is_some() {
                return Found::Ambiguous;
            }
            hit = Some(c);
        }
    }
    if let Some(c) = hit {
        return Found::Col(c);
    }
    let mut open = level.iter().filter(|n| n.cols_visible && n.open.is_some());
    match (open.next(), open.next()) {
        (Some(ns), None) => Found::Open(ns),
        (Some(_), Some(_)) => Found::Ambiguous,
        _ => Found::Nothing,
    }
}

/// The item a qualifier names, innermost level first.
pub(crate) fn find_ns<'n>(lv: &Levels<'n>, name: &str) -> Result<Option<&'n Ns>> {
    for level in lv.iter().rev() {
        let mut hits = level
            .iter()
            .filter(|n| n.rel_visible && n.refname.as_deref() == Some(name));
        match (hits.next(), hits.next()) {
            (Some(ns), None) => return Ok(Some(ns)),
            (Some(_), Some(_)) => {
                return unsupported(format!("table reference {name} is ambiguous"))
            }
            _ => {}
        }
    }
    Ok(None)
}

/// The unaliased relation `schema.table`, innermost level first.
fn find_relation<'n>(lv: &Levels<'n>, schema: &str, table: &str) -> Result<&'n Ns> {
    for level in lv.iter().rev() {
        let hit = level.iter().find(|n| {
            n.rel_visible
                && n.relation
                    .as_ref()
                    .is_some_and(|(s, t)| s == schema && t == table)
        });
        if let Some(ns) = hit {
            return Ok(ns);
        }
    }
    unsupported(format!("{schema}.{table} is not in scope"))
}

/// PostgreSQL's system columns: row identity and transaction bookkeeping, no user data.
/// Where one is not valid (a subquery) the server rejects the statement.
fn is_system_column(name: &str) -> bool {
    matches!(
        name,
        "ctid" | "xmin" | "xmax" | "cmin" | "cmax" | "tableoid"
    )
}

/// Column `name` of one item.
fn col_of(ns: &Ns, name: &str) -> Result<Flow> {
    let mut hits = ns.cols.iter().filter(|c| c.name == name);
    match (hits.next(), hits.next(), &ns.open) {
        (Some(c), None, _) => Ok(c.flow.clone()),
        (Some(_), Some(_), _) => unsupported(format!("column reference {name} is ambiguous")),
        (None, _, Some(open)) => Ok(open.clone().derived()),
        (None, _, None) if is_system_column(name) => Ok(Flow::constant()),
        (None, _, None) => unsupported(format!("column {name} not found")),
    }
}

/// An unqualified column name, nearest level first; None if no level has it.
fn unqualified(lv: &Levels<'_>, name: &str) -> Result<Option<Flow>> {
    for level in lv.iter().rev() {
        match in_level(level, name) {
            Found::Col(c) => return Ok(Some(c.flow.clone())),
            Found::Open(ns) => return Ok(ns.open.clone().map(Flow::derived)),
            Found::Ambiguous => {
                return unsupported(format!("column reference {name} is ambiguous"))
            }
            Found::Nothing => {}
        }
    }
    Ok(None)
}

/// Only the innermost level (GROUP BY prefers input columns there over output names).
pub(crate) fn in_current_level(lv: &Levels<'_>, name: &str) -> Result<Option<Flow>> {
    match lv.last() {
        Some(level) => unqualified(&[level], name),
        None => Ok(None),
    }
}

/// The item a bare name stands for when it is a whole-row reference (no column of that
/// name is visible): `u` in `row_to_json(u)` or `(u).email`.
pub(crate) fn row_ref<'n>(lv: &Levels<'n>, node: &pg_query::protobuf::Node) -> Option<&'n Ns> {
    let Some(N::ColumnRef(c)) = &node.node else {
        return None;
    };
    let (names, star) = parts(c).ok()?;
    let [name] = names.as_slice() else {
        return None;
    };
    if !star && unqualified(lv, name).ok()?.is_some() {
        return None;
    }
    find_ns(lv, name).ok()?
}

impl Walker<'_> {
    /// A column reference used as a value.
    pub(crate) fn column_ref(&mut self, c: &PgColumnRef, lv: &Levels<'_>) -> Result<Flow> {
        let (names, star) = parts(c)?;
        match (names.as_slice(), star) {
            ([], true) => unsupported("* used as a value"),
            ([a], true) => match find_ns(lv, a)? {
                Some(ns) => Ok(ns.whole_row()),
                None => unsupported(format!("missing FROM-clause entry for {a}")),
            },
            ([.., s, t], true) => Ok(find_relation(lv, s, t)?.whole_row()),
            ([name], false) => {
                if let Some(f) = unqualified(lv, name)? {
                    return Ok(f);
                }
                match find_ns(lv, name)? {
                    Some(ns) => Ok(ns.whole_row()),
                    None if is_system_column(name) => Ok(Flow::constant()),
                    None => unsupported(format!("column {name} not found")),
                }
            }
            ([a, c], false) => match find_ns(lv, a)? {
                Some(ns) => col_of(ns, c),
                // `a.c` with no item `a`: field `c` of a composite column `a`.
                None => match unqualified(lv, a)? {
                    Some(f) => Ok(f.derived()),
                    None => unsupported(format!("missing FROM-clause entry for {a}")),
                },
            },
            ([s, t, c], false) | ([_, s, t, c], false) => col_of(find_relation(lv, s, t)?, c),
            _ => unsupported("column reference with too many parts"),
        }
    }

    /// `*`, `t.*` or `s.t.*` in a target list, expanded; None if `c` is no star.
    pub(crate) fn expand_star(
        &mut self,
        c: &PgColumnRef,
        lv: &Levels<'_>,
    ) -> Result<Option<Vec<Col>>> {
        let (names, star) = parts(c)?;
        if !star {
            return Ok(None);
        }
        let items: Vec<&Ns> = match names.as_slice() {
            [] => {
                let level = lv.last().copied().unwrap_or_default();
                let visible: Vec<&Ns> = level.iter().filter(|n| n.cols_visible).collect();
                if visible.is_empty() {
                    return unsupported("SELECT * with no FROM items");
                }
                visible
            }
            [a] => match find_ns(lv, a)? {
                Some(ns) => vec![ns],
                None => return unsupported(format!("missing FROM-clause entry for {a}")),
            },
            [.., s, t] => vec![find_relation(lv, s, t)?],
        };
        let mut out = Vec::new();
        for ns in items {
            if ns.open.is_some() {
                return unsupported("* over a function result of unknown shape");
            }
            out.extend(ns.cols.iter().cloned());
        }
        Ok(Some(out))
    }
}

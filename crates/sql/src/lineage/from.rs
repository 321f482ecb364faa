//! FROM items and the names they make visible: relations (tables through the catalog, views
//! expanded, CTEs), subqueries, functions, joins and table functions (see `tablefunc`).
//!
//! Visibility follows PostgreSQL (transformFromClauseItem): a join exposes one item whose
//! columns are the merged USING/NATURAL columns then the rest of each side, and hides its
//! inputs' columns from unqualified lookup (and their names too when the join is aliased).
//! A LATERAL subquery, and every function in FROM, sees the items before it; the right side
//! of a join sees the left side.

use super::call::func_parts;
use super::flow::{rename, Col, Flow, Ns};
use super::walker::{Levels, Walker};
use super::{builtins, srf};
use super::{unsupported, Result};
use pg_query::protobuf::{Alias, JoinExpr, JoinType, Node, RangeFunction, RangeVar};
use pg_query::NodeEnum as N;

/// The `sval`s of a list of String nodes (alias column lists, USING lists).
pub(crate) fn strings(nodes: &[Node]) -> Result<Vec<String>> {
    crate::names::strings(nodes).map_or_else(|| unsupported("name list"), Ok)
}

/// Apply `AS name(col, …)` to an item's columns.
pub(crate) fn aliased(
    alias: Option<&Alias>,
    default: Option<String>,
    cols: Vec<Col>,
) -> Result<Ns> {
    let Some(a) = alias else {
        return Ok(Ns::item(default, cols));
    };
    let names = strings(&a.colnames)?;
    match rename(cols, &names) {
        Some(cols) => Ok(Ns::item(Some(a.aliasname.clone()), cols)),
        None => unsupported(format!(
            "{} has more column aliases than columns",
            a.aliasname
        )),
    }
}

impl Walker<'_> {
    /// A FROM list, left to right (later items may be LATERAL to earlier ones).
    pub(crate) fn walk_from_list(&mut self, from: &[Node], lv: &Levels<'_>) -> Result<Vec<Ns>> {
        let mut items: Vec<Ns> = Vec::new();
        for f in from {
            let new = self.walk_from_item(f, lv, &items)?;
            items.extend(new);
        }
        Ok(items)
    }

    /// One FROM item: the items it adds to the level. `lateral` are the items before it
    /// that a LATERAL item may see.
    pub(crate) fn walk_from_item(
        &mut self,
        item: &Node,
        lv: &Levels<'_>,
        lateral: &[Ns],
    ) -> Result<Vec<Ns>> {
        let Some(n) = &item.node else {
            return unsupported("empty FROM item");
        };
        match n {
            N::RangeVar(rv) => Ok(vec![self.range_var(rv)?]),
            N::RangeSubselect(sub) => {
                let Some(q) = sub.subquery.as_deref() else {
                    return unsupported("subquery in FROM without a query");
                };
                let rel = if sub.lateral {
                    self.query(q, &with_lateral(lv, lateral))?
                } else {
                    self.query(q, lv)?
                };
                Ok(vec![aliased(sub.alias.as_ref(), None, rel)?])
            }
            N::RangeFunction(f) => Ok(vec![self.range_function(f, &with_lateral(lv, lateral))?]),
            N::JoinExpr(j) => self.join(j, lv, lateral),
            N::RangeTableSample(t) => match t.relation.as_deref() {
                Some(r) => self.walk_from_item(r, lv, lateral),
                None => unsupported("TABLESAMPLE without a relation"),
            },
            N::RangeTableFunc(t) => Ok(vec![self.xml_table(t, &with_lateral(lv, lateral))?]),
            N::JsonTable(t) => Ok(vec![self.json_table(t, &with_lateral(lv, lateral))?]),
            other => unsupported(format!("FROM item {}", super::expr::kind(other))),
        }
    }

    /// A named relation: a CTE in scope, else a table or view through the catalog.
    pub(crate) fn range_var(&mut self, rv: &RangeVar) -> Result<Ns> {
        if rv.schemaname.is_empty() {
            if let Some(cte) = self.ctes.iter().rev().find(|c| c.name == rv.relname) {
                let Some(cols) = cte.rel.clone() else {
                    return unsupported(format!(
                        "WITH RECURSIVE member {} used before it is defined",
                        rv.relname
                    ));
                };
                return aliased(rv.alias.as_ref(), Some(rv.relname.clone()), cols);
            }
        }
        let found = self.resolve_relation(&rv.schemaname, &rv.relname)?;
        let relation = (found.schema.clone(), found.name.clone());
        let cols = self.relation_cols(found)?;
        let mut ns = aliased(rv.alias.as_ref(), Some(rv.relname.clone()), cols)?;
        if rv.alias.is_none() {
            ns.relation = Some(relation);
        }
        Ok(ns)
    }

    /// A function (or ROWS FROM list) in FROM. Columns: the column definition list, or a
    /// known built-in shape, or one column named after the function; a function with an
    /// unknown body has an unknown shape (`open`). Every column derives from the arguments.
    fn range_function(&mut self, rf: &RangeFunction, lv: &Levels<'_>) -> Result<Ns> {
        let mut cols = Vec::new();
        let mut open: Option<Flow> = None;
        // A scalar function's one column takes the alias (`FROM f(x) AS g` names it `g`),
        // unless it is a named OUT parameter (chooseScalarFunctionAlias).
        let mut scalar = rf.functions.len() == 1;
        for item in &rf.functions {
            let Some(N::List(pair)) = &item.node else {
                return unsupported("function in FROM");
            };
            let (Some(call), defs) = (pair.items.first(), pair.items.get(1)) else {
                return unsupported("function in FROM without a call");
            };
            let flow = self.expr(call, lv)?.derived();
            let deflist = match defs.and_then(|d| d.node.as_ref()) {
                Some(N::List(l)) if !l.items.is_empty() => l.items.as_slice(),
                _ => rf.coldeflist.as_slice(),
            };
            if !deflist.is_empty() {
                for d in deflist {
                    let Some(N::ColumnDef(cd)) = &d.node else {
                        return unsupported("column definition");
                    };
                    cols.push(Col::new(cd.colname.clone(), flow.clone()));
                }
                scalar = false;
                continue;
            }
            match function_shape(call) {
                Shape::Columns(names) => {
                    scalar &= names.len() == 1;
                    cols.extend(names.into_iter().map(|n| Col::new(n, flow.clone())))
                }
                Shape::Named(names) => {
                    scalar = false;
                    cols.extend(names.iter().map(|n| Col::new(*n, flow.clone())))
                }
                Shape::Unknown => {
                    scalar = false;
                    let o = open.get_or_insert_with(Flow::constant);
                    o.absorb(flow);
                }
            }
        }
        function_item(rf, cols, open, scalar)
    }

    /// A join: its inputs' items (hidden as PostgreSQL hides them) plus the join's own.
    fn join(&mut self, j: &JoinExpr, lv: &Levels<'_>, lateral: &[Ns]) -> Result<Vec<Ns>> {
        let (Some(l), Some(r)) = (j.larg.as_deref(), j.rarg.as_deref()) else {
            return unsupported("join without two sides");
        };
        let left = self.walk_from_item(l, lv, lateral)?;
        let right = if matches!(r.node, Some(N::RangeVar(_))) {
            self.walk_from_item(r, lv, &[])?
        } else {
            let mut seen = lateral.to_vec();
            seen.extend(left.iter().cloned());
            self.walk_from_item(r, lv, &seen)?
        };
        let (lcols, lopen) = exposed(&left);
        let (rcols, ropen) = exposed(&right);
        let open = match (lopen, ropen) {
            (None, None) => None,
            _ if j.is_natural || !j.using_clause.is_empty() => {
                return unsupported("USING / NATURAL join over a function result of unknown shape");
            }
            (a, b) => {
                let mut f = Flow::constant();
                f.absorb(a.unwrap_or_default());
                f.absorb(b.unwrap_or_default());
                Some(f)
            }
        };
        let using = if j.is_natural {
            lcols
                .iter()
                .filter(|c| rcols.iter().any(|r| r.name == c.name))
                .map(|c| c.name.clone())
                .collect()
        } else {
            strings(&j.using_clause)?
        };
        let kind = JoinType::try_from(j.jointype).unwrap_or(JoinType::Undefined);
        let mut merged = Vec::with_capacity(using.len());
        for name in &using {
            let (lf, rf) = (only(&lcols, name)?, only(&rcols, name)?);
            self.note_predicate(lf.clone());
            self.note_predicate(rf.clone());
            let flow = match kind {
                JoinType::JoinInner | JoinType::JoinLeft => lf,
                JoinType::JoinRight => rf,
                JoinType::JoinFull => {
                    let mut f = lf.derived();
                    f.absorb(rf);
                    f
                }
                _ => return unsupported("join type"),
            };
            merged.push(Col::new(name.clone(), flow));
        }
        let mut cols = merged.clone();
        cols.extend(lcols.into_iter().filter(|c| !using.contains(&c.name)));
        cols.extend(rcols.into_iter().filter(|c| !using.contains(&c.name)));

        let mut here = left;
        here.extend(right);
        if let Some(q) = j.quals.as_deref() {
            let mut inner: Vec<&[Ns]> = lv.to_vec();
            inner.push(&here);
            self.predicate(q, &inner)?;
        }
        for ns in &mut here {
            ns.cols_visible = false;
            ns.rel_visible &= j.alias.is_none();
        }
        if let Some(ua) = &j.join_using_alias {
            let mut ns = Ns::item(Some(ua.aliasname.clone()), merged);
            ns.cols_visible = false;
            here.push(ns);
        }
        let mut joined = match &j.alias {
            Some(a) => aliased(Some(a), None, cols)?,
            None => Ns {
                rel_visible: false,
                ..Ns::item(None, cols)
            },
        };
        joined.open = open;
        here.push(joined);
        Ok(here)
    }
}

/// The FROM item of a function whose columns are known (`open`: plus columns of unknown
/// name): ordinality appended, aliases applied.
fn function_item(
    rf: &RangeFunction,
    mut cols: Vec<Col>,
    open: Option<Flow>,
    scalar: bool,
) -> Result<Ns> {
    if open.is_some() && rf.is_rowsfrom {
        return unsupported("ROWS FROM with a function of unknown shape");
    }
    match (rf.alias.as_ref(), &open) {
        (Some(a), None) if scalar => {
            if let Some(c) = cols.first_mut() {
                c.name.clone_from(&a.aliasname);
            }
        }
        // Unknown shape: the alias list names its first columns (the server rejects more
        // names than columns), each carrying the function's flow; the rest stay open.
        // pg_get_viewdef writes extension views this way (`FROM f(true) f(a, b, …)`).
        (Some(a), Some(o)) if !rf.ordinality => {
            cols = strings(&a.colnames)?
                .into_iter()
                .map(|n| Col::new(n, o.clone()))
                .collect();
        }
        _ => {}
    }
    if rf.ordinality {
        cols.push(Col::new("ordinality", Flow::constant()));
    }
    let default = rf.functions.first().and_then(first_call_name);
    let mut ns = aliased(rf.alias.as_ref(), default, cols)?;
    ns.open = open;
    Ok(ns)
}

/// The levels a LATERAL item sees: the enclosing ones plus the items before it.
fn with_lateral<'x>(lv: &[&'x [Ns]], lateral: &'x [Ns]) -> Vec<&'x [Ns]> {
    let mut v = lv.to_vec();
    v.push(lateral);
    v
}

/// The columns a join input exposes for unqualified names and `*`, and the flow of any
/// columns of unknown name it may also have.
fn exposed(items: &[Ns]) -> (Vec<Col>, Option<Flow>) {
    let mut out = Vec::new();
    let mut open: Option<Flow> = None;
    for ns in items.iter().filter(|n| n.cols_visible) {
        out.extend(ns.cols.iter().cloned());
        if let Some(f) = &ns.open {
            open.get_or_insert_with(Flow::constant).absorb(f.clone());
        }
    }
    (out, open)
}

/// The one column `name` of a join side (USING needs exactly one on each side).
fn only(cols: &[Col], name: &str) -> Result<Flow> {
    let mut hits = cols.iter().filter(|c| c.name == name);
    match (hits.next(), hits.next()) {
        (Some(c), None) => Ok(c.flow.clone()),
        _ => unsupported(format!(
            "USING column {name} not found exactly once on each side"
        )),
    }
}

enum Shape {
    /// Named after the function (one column per array for multi-argument `unnest`).
    Columns(Vec<String>),
    /// Named OUT parameters.
    Named(&'static [&'static str]),
    Unknown,
}

/// The columns a function in FROM returns, when known without a definition list.
fn function_shape(call: &Node) -> Shape {
    match &call.node {
        Some(N::FuncCall(f)) => {
            let parts = func_parts(f);
            let Some(name) = builtins::builtin_name(&parts) else {
                return Shape::Unknown;
            };
            if srf::srf_needs_definition(name) {
                return Shape::Unknown;
            }
            if let Some(cols) = srf::srf_columns(name) {
                return Shape::Named(cols);
            }
            // Multi-argument unnest returns one column per array.
            let n = if name == "unnest" {
                f.args.len().max(1)
            } else {
                1
            };
            Shape::Columns(vec![name.to_owned(); n])
        }
        // `FROM current_date` and friends: one column.
        Some(_) => Shape::Columns(vec![super::colname::column_name(call)]),
        None => Shape::Unknown,
    }
}

/// The refname an unaliased function item gets: the (first) function's name.
fn first_call_name(item: &Node) -> Option<String> {
    let Some(N::List(pair)) = &item.node else {
        return None;
    };
    match pair.items.first()?.node.as_ref()? {
        N::FuncCall(f) => func_parts(f).last().cloned(),
        _ => None,
    }
}

//! SELECT bodies: target lists (with `*` expansion), set operations, VALUES, and the clauses
//! that only choose or arrange rows (WHERE, GROUP BY, HAVING, WINDOW, DISTINCT ON, ORDER BY,
//! LIMIT), whose columns are predicates.
//!
//! GROUP BY and ORDER BY follow PostgreSQL's SQL-92 rules (findTargetlistEntrySQL92): an
//! integer constant is an output position; a bare name in ORDER BY / DISTINCT ON is an
//! output column first, in GROUP BY an input column first. An output used that way
//! contributes its sources (`ORDER BY 2` orders by whatever column 2 derives from).

use super::colname::column_name;
use super::flow::{Col, Flow, Ns, Rel};
use super::resolve::in_current_level;
use super::walker::{Levels, Walker};
use super::{unsupported, Result};
use pg_query::protobuf::{Node, SelectStmt, SetOperation};
use pg_query::NodeEnum as N;

/// How a bare name in a sort or grouping clause is looked up.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefer {
    Output,
    Input,
}

impl Walker<'_> {
    /// A statement in a query position (subquery, CTE, COPY): its result columns.
    pub(crate) fn query(&mut self, node: &Node, lv: &Levels<'_>) -> Result<Rel> {
        match &node.node {
            Some(N::SelectStmt(s)) => self.select(s, lv),
            Some(N::InsertStmt(s)) => self.insert(s, lv),
            Some(N::UpdateStmt(s)) => self.update(s, lv),
            Some(N::DeleteStmt(s)) => self.delete(s, lv),
            Some(N::MergeStmt(s)) => self.merge(s, lv),
            Some(other) => unsupported(format!("{} as a query", super::expr::kind(other))),
            None => unsupported("empty query"),
        }
    }

    pub(crate) fn select(&mut self, s: &SelectStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.open()?;
        let mark = self.ctes.len();
        let out = self.select_body(s, lv);
        self.ctes.truncate(mark);
        self.close();
        out
    }

    fn select_body(&mut self, s: &SelectStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.with_clause(s.with_clause.as_ref(), lv)?;
        let op = SetOperation::try_from(s.op).unwrap_or(SetOperation::Undefined);
        let out = match op {
            SetOperation::SetopNone if !s.values_lists.is_empty() => self.values(s, lv)?,
            SetOperation::SetopNone => return self.simple(s, lv),
            SetOperation::SetopUnion | SetOperation::SetopIntersect | SetOperation::SetopExcept => {
                let (Some(l), Some(r)) = (s.larg.as_deref(), s.rarg.as_deref()) else {
                    return unsupported("set operation without two arms");
                };
                let left = self.select(l, lv)?;
                let right = self.select(r, lv)?;
                merge_arms(left, right)?
            }
            SetOperation::Undefined => return unsupported("unknown set operation"),
        };
        // ORDER BY / LIMIT of a set operation or VALUES see only its output columns.
        for item in &s.sort_clause {
            self.sort_item(item, &[], &out, Prefer::Output)?;
        }
        self.opt_predicate(s.limit_count.as_deref(), lv)?;
        self.opt_predicate(s.limit_offset.as_deref(), lv)?;
        Ok(out)
    }

    /// SELECT … FROM … WHERE …: one query level.
    fn simple(&mut self, s: &SelectStmt, lv: &Levels<'_>) -> Result<Rel> {
        let items = self.walk_from_list(&s.from_clause, lv)?;
        let mut inner: Vec<&[Ns]> = lv.to_vec();
        inner.push(&items);
        let out = self.targets(&s.target_list, &inner)?;
        self.opt_predicate(s.where_clause.as_deref(), &inner)?;
        for g in &s.group_clause {
            self.group_item(g, &inner, &out)?;
        }
        self.opt_predicate(s.having_clause.as_deref(), &inner)?;
        for w in &s.window_clause {
            match &w.node {
                Some(N::WindowDef(def)) => self.window(def, &inner)?,
                _ => return unsupported("window clause entry"),
            }
        }
        // Plain DISTINCT is a list holding one empty node.
        for d in s.distinct_clause.iter().filter(|d| d.node.is_some()) {
            self.sort_item(d, &inner, &out, Prefer::Output)?;
        }
        for item in &s.sort_clause {
            self.sort_item(item, &inner, &out, Prefer::Output)?;
        }
        self.opt_predicate(s.limit_count.as_deref(), &inner)?;
        self.opt_predicate(s.limit_offset.as_deref(), &inner)?;
        Ok(out)
    }

    /// A target list (SELECT list or RETURNING).
    pub(crate) fn targets(&mut self, list: &[Node], lv: &Levels<'_>) -> Result<Rel> {
        let mut out = Vec::with_capacity(list.len());
        for t in list {
            let Some(N::ResTarget(rt)) = &t.node else {
                return unsupported("target list entry");
            };
            let Some(val) = rt.val.as_deref() else {
                return unsupported("target without a value");
            };
            if let Some(cols) = self.star_target(val, lv)? {
                out.extend(cols);
                continue;
            }
            let flow = self.expr(val, lv)?;
            let name = if rt.name.is_empty() {
                column_name(val)
            } else {
                rt.name.clone()
            };
            out.push(Col::new(name, flow));
        }
        Ok(out)
    }

    /// `*`, `t.*` or `(t).*` in a target list: the columns it expands to.
    fn star_target(&mut self, val: &Node, lv: &Levels<'_>) -> Result<Option<Vec<Col>>> {
        match &val.node {
            Some(N::ColumnRef(c)) => self.expand_star(c, lv),
            Some(N::AIndirection(i))
                if matches!(
                    i.indirection.last().and_then(|n| n.node.as_ref()),
                    Some(N::AStar(_))
                ) =>
            {
                let arg = i.arg.as_deref();
                match (
                    arg.and_then(|a| super::resolve::row_ref(lv, a)),
                    i.indirection.len(),
                ) {
                    (Some(ns), 1) if ns.open.is_none() => Ok(Some(ns.cols.clone())),
                    _ => unsupported("(expression).* of unknown shape"),
                }
            }
            _ => Ok(None),
        }
    }

    /// VALUES (…), (…): each column is any of its rows' values.
    fn values(&mut self, s: &SelectStmt, lv: &Levels<'_>) -> Result<Rel> {
        let mut out: Option<Rel> = None;
        for row in &s.values_lists {
            let Some(N::List(items)) = &row.node else {
                return unsupported("VALUES row");
            };
            let mut cols = Vec::with_capacity(items.items.len());
            for (i, item) in items.items.iter().enumerate() {
                cols.push(Col::new(format!("column{}", i + 1), self.expr(item, lv)?));
            }
            out = Some(match out {
                None => cols,
                Some(prev) => merge_arms(prev, cols)?,
            });
        }
        Ok(out.unwrap_or_default())
    }

    /// One ORDER BY / DISTINCT ON item (`SortBy` or bare expression).
    fn sort_item(&mut self, item: &Node, lv: &Levels<'_>, out: &Rel, prefer: Prefer) -> Result<()> {
        let expr = match &item.node {
            Some(N::SortBy(sb)) => match sb.node.as_deref() {
                Some(e) => e,
                None => return unsupported("ORDER BY without an expression"),
            },
            _ => item,
        };
        if let Some(f) = self.output_ref(expr, lv, out, prefer)? {
            self.note_predicate(f);
            return Ok(());
        }
        if lv.is_empty() {
            return unsupported("ORDER BY on a set operation must name an output column");
        }
        self.predicate(expr, lv)
    }

    fn group_item(&mut self, item: &Node, lv: &Levels<'_>, out: &Rel) -> Result<()> {
        if let Some(N::GroupingSet(gs)) = &item.node {
            for g in &gs.content {
                self.group_item(g, lv, out)?;
            }
            return Ok(());
        }
        if let Some(f) = self.output_ref(item, lv, out, Prefer::Input)? {
            self.note_predicate(f);
            return Ok(());
        }
        self.predicate(item, lv)
    }

    /// The output column an ordering/grouping item refers to, if it is a position or (by
    /// the clause's preference) an output name.
    fn output_ref(
        &mut self,
        e: &Node,
        lv: &Levels<'_>,
        out: &Rel,
        prefer: Prefer,
    ) -> Result<Option<Flow>> {
        match &e.node {
            Some(N::AConst(c)) => {
                self.literal_dependent = true;
                let Some(pg_query::protobuf::a_const::Val::Ival(i)) = &c.val else {
                    return Ok(None); // a non-integer constant sorts nothing
                };
                let pos = usize::try_from(i.ival).ok().and_then(|p| p.checked_sub(1));
                match pos.and_then(|p| out.get(p)) {
                    Some(col) => Ok(Some(col.flow.clone())),
                    None => unsupported(format!("position {} is not in the select list", i.ival)),
                }
            }
            Some(N::ColumnRef(c)) if c.fields.len() == 1 => {
                let Some(N::String(name)) = c.fields.first().and_then(|f| f.node.as_ref()) else {
                    return Ok(None);
                };
                if prefer == Prefer::Input && in_current_level(lv, &name.sval)?.is_some() {
                    return Ok(None);
                }
                let mut hits = out.iter().filter(|c| c.name == name.sval);
                match (hits.next(), hits.next()) {
                    (Some(col), None) => Ok(Some(col.flow.clone())),
                    (Some(_), Some(_)) => {
                        unsupported(format!("ORDER BY {} is ambiguous", name.sval))
                    }
                    (None, _) => Ok(None),
                }
            }
            _ => Ok(None),
        }
    }
}

/// Two arms of a set operation (or rows of VALUES) position by position; names from the
/// first.
pub(crate) fn merge_arms(mut left: Rel, right: Rel) -> Result<Rel> {
    if left.len() != right.len() {
        return unsupported("set operation arms with different column counts");
    }
    for (l, r) in left.iter_mut().zip(right) {
        l.flow.either(r.flow);
    }
    Ok(left)
}

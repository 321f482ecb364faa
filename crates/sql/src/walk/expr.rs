//! Expressions: descend into every expression form of the raw grammar so that subqueries are
//! walked as statements and column references are attributed to tables.
//!
//! Function calls and relations inside expressions are *recorded* by the sweep, not here; this
//! module only has to reach nested statements (a missed one makes the statement opaque) and
//! columns (a missed one is a column not attributed, never a wrong attribution).

use super::Walker;
use crate::names;
use pg_query::protobuf::{ColumnRef, Node};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    pub(super) fn exprs(&mut self, nodes: &[Node]) {
        for n in nodes {
            self.expr(n);
        }
    }

    pub(super) fn opt_expr(&mut self, node: Option<&Node>) {
        if let Some(n) = node {
            self.expr(n);
        }
    }

    pub(super) fn expr(&mut self, node: &Node) {
        let Some(n) = &node.node else { return };
        match n {
            N::ColumnRef(c) => self.column_ref(c),
            N::AExpr(e) => {
                self.opt_expr(e.lexpr.as_deref());
                self.opt_expr(e.rexpr.as_deref());
            }
            N::BoolExpr(b) => self.exprs(&b.args),
            N::FuncCall(f) => {
                self.exprs(&f.args);
                self.exprs(&f.agg_order);
                self.opt_expr(f.agg_filter.as_deref());
                if let Some(w) = &f.over {
                    self.exprs(&w.partition_clause);
                    self.exprs(&w.order_clause);
                    self.opt_expr(w.start_offset.as_deref());
                    self.opt_expr(w.end_offset.as_deref());
                }
            }
            N::SubLink(s) => {
                self.opt_expr(s.testexpr.as_deref());
                if let Some(q) = &s.subselect {
                    self.dispatch(q);
                }
            }
            N::ResTarget(r) => {
                self.opt_expr(r.val.as_deref());
                self.exprs(&r.indirection);
            }
            N::TypeCast(t) => self.opt_expr(t.arg.as_deref()),
            N::CollateClause(c) => self.opt_expr(c.arg.as_deref()),
            N::NamedArgExpr(a) => self.opt_expr(a.arg.as_deref()),
            N::NullTest(t) => self.opt_expr(t.arg.as_deref()),
            N::BooleanTest(t) => self.opt_expr(t.arg.as_deref()),
            N::CaseExpr(c) => {
                self.opt_expr(c.arg.as_deref());
                self.exprs(&c.args);
                self.opt_expr(c.defresult.as_deref());
            }
            N::CaseWhen(w) => {
                self.opt_expr(w.expr.as_deref());
                self.opt_expr(w.result.as_deref());
            }
            N::CoalesceExpr(c) => self.exprs(&c.args),
            N::MinMaxExpr(m) => self.exprs(&m.args),
            N::AArrayExpr(a) => self.exprs(&a.elements),
            N::RowExpr(r) => self.exprs(&r.args),
            N::AIndirection(i) => {
                self.opt_expr(i.arg.as_deref());
                self.exprs(&i.indirection);
            }
            N::AIndices(i) => {
                self.opt_expr(i.lidx.as_deref());
                self.opt_expr(i.uidx.as_deref());
            }
            N::List(l) => self.exprs(&l.items),
            N::SortBy(s) => self.opt_expr(s.node.as_deref()),
            N::WindowDef(w) => {
                self.exprs(&w.partition_clause);
                self.exprs(&w.order_clause);
                self.opt_expr(w.start_offset.as_deref());
                self.opt_expr(w.end_offset.as_deref());
            }
            N::GroupingSet(g) => self.exprs(&g.content),
            N::GroupingFunc(g) => self.exprs(&g.args),
            N::MultiAssignRef(m) => self.opt_expr(m.source.as_deref()),
            N::XmlExpr(x) => {
                self.exprs(&x.named_args);
                self.exprs(&x.args);
            }
            N::XmlSerialize(x) => self.opt_expr(x.expr.as_deref()),
            N::JsonIsPredicate(j) => self.opt_expr(j.expr.as_deref()),
            N::IndexElem(i) => self.opt_expr(i.expr.as_deref()),
            N::RangeSubselect(_) | N::RangeFunction(_) | N::JoinExpr(_) => {
                self.walk_from_item(node)
            }
            N::SelectStmt(_)
            | N::InsertStmt(_)
            | N::UpdateStmt(_)
            | N::DeleteStmt(_)
            | N::MergeStmt(_) => {
                self.dispatch(node);
            }
            // Constants, parameters, CURRENT_USER-style values, DEFAULT, CURRENT OF, `*`:
            // nothing nested. A form not listed here may hide columns (not attributed) or a
            // statement (caught by the sweep's count: opaque).
            other => {
                self.json_expr(other);
            }
        }
    }

    /// Attribute a column reference to a table through the visible scopes.
    fn column_ref(&mut self, c: &ColumnRef) {
        let star = matches!(
            c.fields.last().and_then(|f| f.node.as_ref()),
            Some(N::AStar(_))
        );
        let named: Vec<String> = c
            .fields
            .iter()
            .filter_map(|f| match &f.node {
                Some(N::String(s)) => Some(s.sval.clone()),
                _ => None,
            })
            .collect();
        if named.first().is_some_and(|v| self.ctx.vars.contains(v)) {
            return; // a PL/pgSQL variable or record field
        }
        let column = if star {
            "*"
        } else {
            named.last().map_or("", String::as_str)
        };
        let qualifier = if star {
            &named[..]
        } else {
            named.split_last().map_or(&[][..], |(_, q)| q)
        };
        match qualifier {
            [] if star => {
                let tables: Vec<String> = self
                    .scopes
                    .last()
                    .map(|s| s.iter().filter_map(|r| r.table.clone()).collect())
                    .unwrap_or_default();
                for t in tables {
                    self.column(&t, "*");
                }
            }
            [] => {
                if let Some(t) = self.sole_table() {
                    self.column(&t, column);
                }
            }
            [alias] => {
                if let Some(t) = self.lookup(alias) {
                    self.column(&t, column);
                }
            }
            [.., schema, table] => {
                let t = names::qualify(Some(schema), table, self.search_path());
                self.column(&t, column);
            }
        }
    }

    /// The only table of the innermost scope, if it has exactly one relation.
    fn sole_table(&self) -> Option<String> {
        match self.scopes.last()?.as_slice() {
            [only] => only.table.clone(),
            _ => None,
        }
    }

    /// The table a visible name stands for, innermost scope first.
    fn lookup(&self, name: &str) -> Option<String> {
        self.scopes
            .iter()
            .rev()
            .find_map(|scope| scope.iter().find(|r| r.name == name))
            .and_then(|r| r.table.clone())
    }

    pub(super) fn column(&mut self, table: &str, column: &str) {
        if column.is_empty() {
            return;
        }
        self.facts
            .columns
            .entry(table.to_owned())
            .or_default()
            .insert(column.to_owned());
    }
}

//! Expressions: the flow of one value. Column references, casts, collations and scalar
//! subqueries pass a column through unchanged (direct); every other form absorbs its operands
//! (derived). Conditions nested in an expression that only *select* values (aggregate
//! FILTER/ORDER BY, window PARTITION/ORDER, subquery WHERE) are recorded as predicates.
//!
//! The match is closed: a raw-grammar expression form not listed here is unsupported, so a
//! form added by a future PostgreSQL is refused until someone traces it.

use super::flow::Flow;
use super::walker::{Levels, Walker};
use super::{unsupported, Result};
use pg_query::protobuf::{AExpr, Node, SubLink, SubLinkType, TypeCast};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    pub(crate) fn expr(&mut self, node: &Node, lv: &Levels<'_>) -> Result<Flow> {
        self.enter_expr()?;
        let out = self.expr_node(node, lv);
        self.leave_expr();
        out
    }

    fn expr_node(&mut self, node: &Node, lv: &Levels<'_>) -> Result<Flow> {
        let Some(n) = &node.node else {
            return unsupported("empty expression node");
        };
        match n {
            N::ColumnRef(c) => self.column_ref(c, lv),
            N::AConst(_)
            | N::ParamRef(_)
            | N::SqlvalueFunction(_)
            | N::SetToDefault(_)
            | N::CurrentOfExpr(_) => Ok(Flow::constant()),
            N::TypeCast(t) => self.cast(t, lv),
            N::CollateClause(c) => self.opt_expr(c.arg.as_deref(), lv),
            N::AExpr(e) => self.a_expr(e, lv),
            N::BoolExpr(b) => self.derive(&b.args, lv),
            N::NullTest(t) => Ok(self.opt_expr(t.arg.as_deref(), lv)?.derived()),
            N::BooleanTest(t) => Ok(self.opt_expr(t.arg.as_deref(), lv)?.derived()),
            N::FuncCall(f) => self.call(f, lv),
            N::SubLink(s) => self.sublink(s, lv),
            N::CaseExpr(c) => {
                let mut f = self.opt_expr(c.arg.as_deref(), lv)?.derived();
                f.absorb(self.derive(&c.args, lv)?);
                f.absorb(self.opt_expr(c.defresult.as_deref(), lv)?);
                Ok(f)
            }
            N::CaseWhen(w) => {
                let mut f = self.opt_expr(w.expr.as_deref(), lv)?.derived();
                f.absorb(self.opt_expr(w.result.as_deref(), lv)?);
                Ok(f)
            }
            N::CoalesceExpr(c) => self.derive(&c.args, lv),
            N::MinMaxExpr(m) => self.derive(&m.args, lv),
            N::AArrayExpr(a) => self.derive(&a.elements, lv),
            N::RowExpr(r) => self.derive(&r.args, lv),
            N::List(l) => self.derive(&l.items, lv),
            N::AIndirection(i) => self.indirection(i, lv),
            N::NamedArgExpr(a) => self.opt_expr(a.arg.as_deref(), lv),
            // XMLATTRIBUTES(v AS name) arrives as a ResTarget.
            N::ResTarget(r) => self.opt_expr(r.val.as_deref(), lv),
            N::GroupingFunc(g) => {
                // Says which grouping set a row belongs to, not the values.
                for a in &g.args {
                    self.predicate(a, lv)?;
                }
                Ok(Flow::constant())
            }
            N::XmlExpr(x) => {
                let mut f = self.derive(&x.named_args, lv)?;
                f.absorb(self.derive(&x.args, lv)?);
                Ok(f)
            }
            N::XmlSerialize(x) => Ok(self.opt_expr(x.expr.as_deref(), lv)?.derived()),
            N::SortBy(s) => self.opt_expr(s.node.as_deref(), lv),
            other => match self.json_expr(other, lv)? {
                Some(f) => Ok(f),
                None => unsupported(format!("expression {}", kind(other))),
            },
        }
    }

    pub(crate) fn opt_expr(&mut self, node: Option<&Node>, lv: &Levels<'_>) -> Result<Flow> {
        match node {
            Some(n) => self.expr(n, lv),
            None => Ok(Flow::constant()),
        }
    }

    /// Several operands combined into one derived value.
    pub(crate) fn derive(&mut self, nodes: &[Node], lv: &Levels<'_>) -> Result<Flow> {
        let mut f = Flow::constant();
        for n in nodes {
            f.absorb(self.expr(n, lv)?);
        }
        Ok(f)
    }

    /// A cast keeps a column direct (`email::text`) unless it changes the representation in
    /// a way a value mask cannot follow: to `bytea` (hex of the bytes) or with a type
    /// modifier (`::varchar(3)` truncates). A cast of a whole row (`u::text`) is derived.
    fn cast(&mut self, t: &TypeCast, lv: &Levels<'_>) -> Result<Flow> {
        let f = self.opt_expr(t.arg.as_deref(), lv)?;
        let keeps = t.type_name.as_ref().is_some_and(|ty| {
            let last = ty.names.last().and_then(|n| match &n.node {
                Some(N::String(s)) => Some(s.sval.as_str()),
                _ => None,
            });
            ty.typmods.is_empty() && ty.array_bounds.is_empty() && last != Some("bytea")
        });
        Ok(if keeps && !f.whole_row {
            f
        } else {
            f.derived()
        })
    }

    fn a_expr(&mut self, e: &AExpr, lv: &Levels<'_>) -> Result<Flow> {
        if let Some(op) = super::builtins::unknown_operator(&e.name) {
            self.unknown.insert(op);
        }
        let mut f = self.opt_expr(e.lexpr.as_deref(), lv)?.derived();
        f.absorb(self.opt_expr(e.rexpr.as_deref(), lv)?);
        Ok(f)
    }

    /// `x[i]`, `(x).field`, `(u).*` (the last only in target lists, expanded there).
    fn indirection(
        &mut self,
        i: &pg_query::protobuf::AIndirection,
        lv: &Levels<'_>,
    ) -> Result<Flow> {
        // `(u).email` with `u` a row: exactly that column.
        if let (Some(arg), [field]) = (i.arg.as_deref(), i.indirection.as_slice()) {
            if let (Some(ns), Some(N::String(s))) = (super::resolve::row_ref(lv, arg), &field.node)
            {
                let hits: Vec<_> = ns.cols.iter().filter(|c| c.name == s.sval).collect();
                if let [c] = hits.as_slice() {
                    return Ok(c.flow.clone());
                }
            }
        }
        let mut f = self.opt_expr(i.arg.as_deref(), lv)?.derived();
        for step in &i.indirection {
            match &step.node {
                Some(N::String(_)) => {}
                Some(N::AStar(_)) => f.whole_row = true,
                Some(N::AIndices(ix)) => {
                    f.absorb(self.opt_expr(ix.lidx.as_deref(), lv)?);
                    f.absorb(self.opt_expr(ix.uidx.as_deref(), lv)?);
                }
                _ => return unsupported("indirection with unexpected parts"),
            }
        }
        Ok(f)
    }

    fn sublink(&mut self, s: &SubLink, lv: &Levels<'_>) -> Result<Flow> {
        let Some(q) = s.subselect.as_deref() else {
            return unsupported("subquery without a query");
        };
        let kind = SubLinkType::try_from(s.sub_link_type).unwrap_or(SubLinkType::Undefined);
        match kind {
            SubLinkType::ExistsSublink => {
                // Only its conditions matter; they are recorded as predicates inside.
                self.query(q, lv)?;
                Ok(Flow::constant())
            }
            SubLinkType::ExprSublink => match self.query(q, lv)?.as_slice() {
                [one] => Ok(one.flow.clone()),
                _ => unsupported("scalar subquery must return one column"),
            },
            SubLinkType::AnySublink
            | SubLinkType::AllSublink
            | SubLinkType::RowcompareSublink
            | SubLinkType::ArraySublink => {
                let mut f = self.opt_expr(s.testexpr.as_deref(), lv)?.derived();
                for c in self.query(q, lv)? {
                    f.absorb(c.flow);
                }
                Ok(f)
            }
            _ => unsupported("subquery kind"),
        }
    }
}

/// The variant name of a node, for messages: the start of its Debug text (`Name(...)`),
/// written into a buffer that refuses more than a few bytes so a big subtree is not printed.
pub(crate) fn kind(n: &N) -> String {
    struct Head(String);
    impl std::fmt::Write for Head {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.push_str(s);
            if self.0.len() > 48 {
                return Err(std::fmt::Error);
            }
            Ok(())
        }
    }
    let mut head = Head(String::new());
    let _ = std::fmt::Write::write_fmt(&mut head, format_args!("{n:?}"));
    head.0
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("node")
        .to_owned()
}

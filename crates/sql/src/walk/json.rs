//! SQL/JSON expression forms (PostgreSQL 16+ constructors and query functions), which wrap
//! their arguments in `JsonValueExpr` rather than plain nodes.

use super::Walker;
use pg_query::protobuf::{JsonAggConstructor, JsonValueExpr};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    /// Descend into a SQL/JSON node; `false` if `n` is not one.
    pub(super) fn json_expr(&mut self, n: &N) -> bool {
        match n {
            N::JsonObjectConstructor(j) => self.exprs(&j.exprs),
            N::JsonArrayConstructor(j) => self.exprs(&j.exprs),
            N::JsonArrayQueryConstructor(j) => self.opt_expr(j.query.as_deref()),
            N::JsonKeyValue(kv) => {
                self.opt_expr(kv.key.as_deref());
                self.json_value(kv.value.as_deref());
            }
            N::JsonValueExpr(v) => self.json_value(Some(v)),
            N::JsonParseExpr(j) => self.json_value(j.expr.as_deref()),
            N::JsonScalarExpr(j) => self.opt_expr(j.expr.as_deref()),
            N::JsonSerializeExpr(j) => self.json_value(j.expr.as_deref()),
            N::JsonFuncExpr(j) => {
                self.json_value(j.context_item.as_deref());
                self.opt_expr(j.pathspec.as_deref());
                self.exprs(&j.passing);
            }
            N::JsonArgument(a) => self.json_value(a.val.as_deref()),
            N::JsonObjectAgg(j) => {
                if let Some(kv) = &j.arg {
                    self.opt_expr(kv.key.as_deref());
                    self.json_value(kv.value.as_deref());
                }
                self.json_agg(j.constructor.as_deref());
            }
            N::JsonArrayAgg(j) => {
                self.json_value(j.arg.as_deref());
                self.json_agg(j.constructor.as_deref());
            }
            _ => return false,
        }
        true
    }

    fn json_value(&mut self, v: Option<&JsonValueExpr>) {
        if let Some(v) = v {
            self.opt_expr(v.raw_expr.as_deref());
            self.opt_expr(v.formatted_expr.as_deref());
        }
    }

    fn json_agg(&mut self, c: Option<&JsonAggConstructor>) {
        let Some(c) = c else { return };
        self.opt_expr(c.agg_filter.as_deref());
        self.exprs(&c.agg_order);
        if let Some(w) = &c.over {
            self.exprs(&w.partition_clause);
            self.exprs(&w.order_clause);
        }
    }
}

//! SQL/JSON expression forms (PostgreSQL 16+ constructors, query functions, aggregates),
//! which wrap their operands in `JsonValueExpr`. All derive from their operands; the
//! aggregates' FILTER/ORDER BY/OVER are predicates like those of ordinary aggregates.

use super::flow::{all_sources, Flow};
use super::walker::{Levels, Walker};
use super::Result;
use pg_query::protobuf::{JsonAggConstructor, JsonValueExpr};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    /// The flow of a SQL/JSON node; None if `n` is not one.
    pub(crate) fn json_expr(&mut self, n: &N, lv: &Levels<'_>) -> Result<Option<Flow>> {
        let f = match n {
            N::JsonObjectConstructor(j) => self.derive(&j.exprs, lv)?,
            N::JsonArrayConstructor(j) => self.derive(&j.exprs, lv)?,
            N::JsonArrayQueryConstructor(j) => match j.query.as_deref() {
                Some(q) => all_sources(&self.query(q, lv)?),
                None => Flow::constant(),
            },
            N::JsonKeyValue(kv) => {
                let mut f = self.opt_expr(kv.key.as_deref(), lv)?.derived();
                f.absorb(self.json_value(kv.value.as_deref(), lv)?);
                f
            }
            N::JsonValueExpr(v) => self.json_value(Some(v), lv)?,
            N::JsonParseExpr(j) => self.json_value(j.expr.as_deref(), lv)?,
            N::JsonScalarExpr(j) => self.opt_expr(j.expr.as_deref(), lv)?.derived(),
            N::JsonSerializeExpr(j) => self.json_value(j.expr.as_deref(), lv)?,
            N::JsonIsPredicate(j) => self.opt_expr(j.expr.as_deref(), lv)?.derived(),
            N::JsonFuncExpr(j) => {
                let mut f = self.json_value(j.context_item.as_deref(), lv)?;
                f.absorb(self.opt_expr(j.pathspec.as_deref(), lv)?);
                f.absorb(self.derive(&j.passing, lv)?);
                f
            }
            N::JsonArgument(a) => self.json_value(a.val.as_deref(), lv)?,
            N::JsonObjectAgg(j) => {
                let mut f = Flow::constant();
                if let Some(kv) = &j.arg {
                    f.absorb(self.opt_expr(kv.key.as_deref(), lv)?);
                    f.absorb(self.json_value(kv.value.as_deref(), lv)?);
                }
                self.json_agg(j.constructor.as_deref(), lv)?;
                f
            }
            N::JsonArrayAgg(j) => {
                let f = self.json_value(j.arg.as_deref(), lv)?;
                self.json_agg(j.constructor.as_deref(), lv)?;
                f
            }
            _ => return Ok(None),
        };
        Ok(Some(f.derived()))
    }

    fn json_value(&mut self, v: Option<&JsonValueExpr>, lv: &Levels<'_>) -> Result<Flow> {
        let Some(v) = v else {
            return Ok(Flow::constant());
        };
        let mut f = self.opt_expr(v.raw_expr.as_deref(), lv)?.derived();
        f.absorb(self.opt_expr(v.formatted_expr.as_deref(), lv)?);
        Ok(f)
    }

    fn json_agg(&mut self, c: Option<&JsonAggConstructor>, lv: &Levels<'_>) -> Result<()> {
        let Some(c) = c else { return Ok(()) };
        self.opt_predicate(c.agg_filter.as_deref(), lv)?;
        for o in &c.agg_order {
            self.predicate(o, lv)?;
        }
        if let Some(w) = &c.over {
            self.window(w, lv)?;
        }
        Ok(())
    }
}

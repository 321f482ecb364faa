//! WITH clauses. A CTE's body is walked once where it is defined and its columns are reused
//! wherever it is referenced. Without RECURSIVE a CTE sees only the CTEs before it (`WITH t
//! AS (SELECT * FROM t)` reads the table `t`); with RECURSIVE every member is in scope from
//! the start, so a member used before it is evaluated is unsupported rather than silently
//! read as a table of the same name.
//!
//! A recursive member `anchor UNION [ALL] step` is solved as a fixed point: start from the
//! anchor's columns, walk the step against them, merge position-wise, repeat until nothing
//! changes. Sources only grow and directness only turns off, so this settles; a bound guards
//! against a catalog or statement that would make it slow.

use super::flow::{rename, Rel};
use super::from::strings;
use super::select::merge_arms;
use super::walker::{Cte, Levels, Walker};
use super::{unsupported, Result};
use pg_query::protobuf::{CommonTableExpr, SetOperation, WithClause};
use pg_query::NodeEnum as N;

/// Rounds a recursive member gets to settle.
const MAX_ROUNDS: usize = 16;

impl Walker<'_> {
    /// Bring a WITH clause's CTEs into scope (the caller truncates `ctes` afterwards).
    pub(crate) fn with_clause(&mut self, with: Option<&WithClause>, lv: &Levels<'_>) -> Result<()> {
        let Some(with) = with else { return Ok(()) };
        let mut ctes = Vec::with_capacity(with.ctes.len());
        for c in &with.ctes {
            match &c.node {
                Some(N::CommonTableExpr(cte)) => ctes.push(cte),
                _ => return unsupported("WITH entry"),
            }
        }
        if with.recursive {
            for cte in &ctes {
                self.ctes.push(Cte {
                    name: cte.ctename.clone(),
                    rel: None,
                });
            }
        }
        for cte in ctes {
            if cte.search_clause.is_some() || cte.cycle_clause.is_some() {
                return unsupported("SEARCH / CYCLE clause");
            }
            let names = strings(&cte.aliascolnames)?;
            let rel = if with.recursive {
                self.recursive_member(cte, &names, lv)?
            } else {
                self.cte_body(cte, &names, lv)?
            };
            if with.recursive {
                self.set_cte(&cte.ctename, rel);
            } else {
                self.ctes.push(Cte {
                    name: cte.ctename.clone(),
                    rel: Some(rel),
                });
            }
        }
        Ok(())
    }

    fn cte_body(
        &mut self,
        cte: &CommonTableExpr,
        names: &[String],
        lv: &Levels<'_>,
    ) -> Result<Rel> {
        let Some(q) = cte.ctequery.as_deref() else {
            return unsupported("CTE without a query");
        };
        let rel = self.query(q, lv)?;
        named(rel, names, &cte.ctename)
    }

    /// Give the innermost pending entry of that name its columns.
    fn set_cte(&mut self, name: &str, rel: Rel) {
        if let Some(c) = self.ctes.iter_mut().rev().find(|c| c.name == name) {
            c.rel = Some(rel);
        }
    }

    fn recursive_member(
        &mut self,
        cte: &CommonTableExpr,
        names: &[String],
        lv: &Levels<'_>,
    ) -> Result<Rel> {
        let body = match cte.ctequery.as_deref().and_then(|q| q.node.as_ref()) {
            Some(N::SelectStmt(s)) if s.op == SetOperation::SetopUnion as i32 => s,
            // Not self-referencing (or not a UNION, which PostgreSQL rejects if it is).
            _ => return self.cte_body(cte, names, lv),
        };
        let (Some(anchor), Some(step)) = (body.larg.as_deref(), body.rarg.as_deref()) else {
            return unsupported("recursive query without two arms");
        };
        let mark = self.ctes.len();
        let out = self.settle(cte, names, body.with_clause.as_ref(), anchor, step, lv);
        self.ctes.truncate(mark);
        out
    }

    fn settle(
        &mut self,
        cte: &CommonTableExpr,
        names: &[String],
        with: Option<&WithClause>,
        anchor: &pg_query::protobuf::SelectStmt,
        step: &pg_query::protobuf::SelectStmt,
        lv: &Levels<'_>,
    ) -> Result<Rel> {
        self.with_clause(with, lv)?;
        let mut current = named(self.select(anchor, lv)?, names, &cte.ctename)?;
        for _ in 0..MAX_ROUNDS {
            self.set_cte(&cte.ctename, current.clone());
            let more = self.select(step, lv)?;
            let next = merge_arms(current.clone(), more)?;
            if next == current {
                return Ok(current);
            }
            current = next;
        }
        unsupported(format!("recursive query {} did not settle", cte.ctename))
    }
}

/// Apply a CTE's column list.
fn named(rel: Rel, names: &[String], cte: &str) -> Result<Rel> {
    match rename(rel, names) {
        Some(r) => Ok(r),
        None => unsupported(format!(
            "WITH query {cte} has more column names than columns"
        )),
    }
}

//! INSERT, UPDATE, DELETE and MERGE: which values they copy into which columns
//! (`written_from`), which columns choose the rows (predicates), and what RETURNING yields.
//!
//! A column read back after a write (RETURNING, or `excluded.x` in ON CONFLICT) carries both
//! the target column's own sources and those of the value written into it, so masks of
//! either apply (see `Flow::landed`).

use super::flow::{Flow, Ns, Rel};
use super::relation::Target;
use super::walker::{Levels, Walker};
use super::{unsupported, Result};
use pg_query::protobuf::{
    CmdType, DeleteStmt, InsertStmt, MergeStmt, Node, ResTarget, SubLinkType, UpdateStmt,
};
use pg_query::NodeEnum as N;

impl Target {
    /// The target as a scope item, each column read as `flows[i]`.
    fn ns(&self, flows: &[Flow]) -> Ns {
        let cols = self
            .cols
            .iter()
            .zip(flows)
            .map(|(c, f)| super::flow::Col::new(c.name.clone(), f.clone()))
            .collect();
        Ns {
            relation: self.relation.clone(),
            ..Ns::item(Some(self.refname.clone()), cols)
        }
    }

    fn reads(&self) -> Vec<Flow> {
        self.cols.iter().map(|c| c.read.clone()).collect()
    }
}

/// One `SET col = …` / ON CONFLICT / MERGE assignment target.
fn set_target(t: &Node) -> Result<&ResTarget> {
    match &t.node {
        Some(N::ResTarget(rt)) if !rt.name.is_empty() => Ok(rt),
        _ => unsupported("assignment target"),
    }
}

impl Walker<'_> {
    pub(crate) fn insert(&mut self, s: &InsertStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.open()?;
        let mark = self.ctes.len();
        let out = self.insert_body(s, lv);
        self.ctes.truncate(mark);
        self.close();
        out
    }

    fn insert_body(&mut self, s: &InsertStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.with_clause(s.with_clause.as_ref(), lv)?;
        let t = self.target(s.relation.as_ref())?;
        let positions: Vec<usize> = if s.cols.is_empty() {
            (0..t.cols.len()).collect()
        } else {
            s.cols
                .iter()
                .map(|c| t.index(&set_target(c)?.name))
                .collect::<Result<_>>()?
        };
        // The source query does not see the target.
        let values = match s.select_stmt.as_deref() {
            Some(q) => self.query(q, lv)?,
            None => Vec::new(), // DEFAULT VALUES
        };
        if values.len() > positions.len() {
            return unsupported("INSERT has more expressions than target columns");
        }
        let mut now = t.reads();
        for (pos, col) in positions.iter().zip(&values) {
            let tc = &t.cols[*pos];
            self.wrote(tc.lands.as_ref(), &col.flow)?;
            now[*pos] = Flow::landed(&tc.read, &col.flow);
        }
        if let Some(oc) = s.on_conflict_clause.as_deref() {
            // `excluded` is the row proposed for insertion: the inserted values, defaults
            // (no sources) elsewhere.
            let mut proposed = vec![Flow::constant(); t.cols.len()];
            for (pos, col) in positions.iter().zip(&values) {
                proposed[*pos] = col.flow.clone();
            }
            let mut excluded = t.ns(&proposed);
            excluded.refname = Some("excluded".into());
            excluded.relation = None;
            let items = [t.ns(&t.reads()), excluded];
            let mut inner: Vec<&[Ns]> = lv.to_vec();
            inner.push(&items);
            let updated = self.assignments(&t, &oc.target_list, &inner)?;
            for (pos, f) in updated {
                let landed = Flow::landed(&t.cols[pos].read, &f);
                now[pos].either(landed);
            }
            self.opt_predicate(oc.where_clause.as_deref(), &inner)?;
        }
        self.returning(&s.returning_list, &[t.ns(&now)], lv)
    }

    pub(crate) fn update(&mut self, s: &UpdateStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.open()?;
        let mark = self.ctes.len();
        let out = self.update_body(s, lv);
        self.ctes.truncate(mark);
        self.close();
        out
    }

    fn update_body(&mut self, s: &UpdateStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.with_clause(s.with_clause.as_ref(), lv)?;
        let t = self.target(s.relation.as_ref())?;
        let mut items = vec![t.ns(&t.reads())];
        items.extend(self.walk_from_list(&s.from_clause, lv)?);
        let mut inner: Vec<&[Ns]> = lv.to_vec();
        inner.push(&items);
        let updated = self.assignments(&t, &s.target_list, &inner)?;
        self.opt_predicate(s.where_clause.as_deref(), &inner)?;
        let mut now = t.reads();
        for (pos, f) in updated {
            now[pos] = Flow::landed(&t.cols[pos].read, &f);
        }
        let mut ret = items.clone();
        ret[0] = t.ns(&now);
        self.returning(&s.returning_list, &ret, lv)
    }

    pub(crate) fn delete(&mut self, s: &DeleteStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.open()?;
        let mark = self.ctes.len();
        let out = self.delete_body(s, lv);
        self.ctes.truncate(mark);
        self.close();
        out
    }

    fn delete_body(&mut self, s: &DeleteStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.with_clause(s.with_clause.as_ref(), lv)?;
        let t = self.target(s.relation.as_ref())?;
        let mut items = vec![t.ns(&t.reads())];
        items.extend(self.walk_from_list(&s.using_clause, lv)?);
        let mut inner: Vec<&[Ns]> = lv.to_vec();
        inner.push(&items);
        self.opt_predicate(s.where_clause.as_deref(), &inner)?;
        self.returning(&s.returning_list, &items, lv)
    }

    pub(crate) fn merge(&mut self, s: &MergeStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.open()?;
        let mark = self.ctes.len();
        let out = self.merge_body(s, lv);
        self.ctes.truncate(mark);
        self.close();
        out
    }

    fn merge_body(&mut self, s: &MergeStmt, lv: &Levels<'_>) -> Result<Rel> {
        self.with_clause(s.with_clause.as_ref(), lv)?;
        let t = self.target(s.relation.as_ref())?;
        let mut items = vec![t.ns(&t.reads())];
        if let Some(src) = s.source_relation.as_deref() {
            items.extend(self.walk_from_item(src, lv, &[])?);
        }
        let mut inner: Vec<&[Ns]> = lv.to_vec();
        inner.push(&items);
        self.opt_predicate(s.join_condition.as_deref(), &inner)?;
        let mut now = t.reads();
        for clause in &s.merge_when_clauses {
            let Some(N::MergeWhenClause(w)) = &clause.node else {
                return unsupported("MERGE WHEN clause");
            };
            self.opt_predicate(w.condition.as_deref(), &inner)?;
            let written = match CmdType::try_from(w.command_type) {
                Ok(CmdType::CmdUpdate) => self.assignments(&t, &w.target_list, &inner)?,
                Ok(CmdType::CmdInsert) => {
                    self.merge_insert(&t, &w.target_list, &w.values, &inner)?
                }
                Ok(CmdType::CmdDelete | CmdType::CmdNothing) => Vec::new(),
                _ => return unsupported("MERGE action"),
            };
            for (pos, f) in written {
                let landed = Flow::landed(&t.cols[pos].read, &f);
                now[pos].either(landed);
            }
        }
        let mut ret = items.clone();
        ret[0] = t.ns(&now);
        self.returning(&s.returning_list, &ret, lv)
    }

    /// MERGE … THEN INSERT (cols) VALUES (…).
    fn merge_insert(
        &mut self,
        t: &Target,
        cols: &[Node],
        values: &[Node],
        lv: &Levels<'_>,
    ) -> Result<Vec<(usize, Flow)>> {
        let positions: Vec<usize> = if cols.is_empty() {
            (0..t.cols.len()).collect()
        } else {
            cols.iter()
                .map(|c| t.index(&set_target(c)?.name))
                .collect::<Result<_>>()?
        };
        if values.len() > positions.len() {
            return unsupported("INSERT has more expressions than target columns");
        }
        let mut out = Vec::with_capacity(values.len());
        for (pos, v) in positions.into_iter().zip(values) {
            let f = self.expr(v, lv)?;
            self.wrote(t.cols[pos].lands.as_ref(), &f)?;
            out.push((pos, f));
        }
        Ok(out)
    }

    /// `SET a = …, (b, c) = (SELECT …)`: (column position, value) per assignment, each
    /// recorded as a write.
    fn assignments(
        &mut self,
        t: &Target,
        list: &[Node],
        lv: &Levels<'_>,
    ) -> Result<Vec<(usize, Flow)>> {
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            let rt = set_target(item)?;
            let pos = t.index(&rt.name)?;
            let Some(val) = rt.val.as_deref() else {
                return unsupported("assignment without a value");
            };
            let mut f = match &val.node {
                Some(N::MultiAssignRef(m)) => self.multi_assign(m, lv)?,
                _ => self.expr(val, lv)?,
            };
            // `SET arr[1] = x` / `SET comp.f = x` keeps the rest of the old value.
            for ind in &rt.indirection {
                if let Some(N::AIndices(ix)) = &ind.node {
                    f.absorb(self.opt_expr(ix.lidx.as_deref(), lv)?);
                    f.absorb(self.opt_expr(ix.uidx.as_deref(), lv)?);
                }
            }
            if !rt.indirection.is_empty() {
                f.absorb(t.cols[pos].read.clone());
            }
            self.wrote(t.cols[pos].lands.as_ref(), &f)?;
            out.push((pos, f));
        }
        Ok(out)
    }

    /// One column of `(a, b) = (SELECT x, y …)` or `(a, b) = ROW(x, y)`.
    fn multi_assign(
        &mut self,
        m: &pg_query::protobuf::MultiAssignRef,
        lv: &Levels<'_>,
    ) -> Result<Flow> {
        let idx = usize::try_from(m.colno).ok().and_then(|c| c.checked_sub(1));
        let Some(idx) = idx else {
            return unsupported("multiple-column assignment");
        };
        match m.source.as_deref().and_then(|s| s.node.as_ref()) {
            // The raw grammar marks it EXPR; analysis turns it into MULTIEXPR.
            Some(N::SubLink(sl))
                if sl.sub_link_type == SubLinkType::ExprSublink as i32
                    || sl.sub_link_type == SubLinkType::MultiexprSublink as i32 =>
            {
                let Some(q) = sl.subselect.as_deref() else {
                    return unsupported("multiple-column assignment without a query");
                };
                match self.query(q, lv)?.into_iter().nth(idx) {
                    Some(c) => Ok(c.flow),
                    None => unsupported("multiple-column assignment: too few columns"),
                }
            }
            Some(N::RowExpr(r)) => match r.args.get(idx) {
                Some(a) => self.expr(a, lv),
                None => unsupported("multiple-column assignment: too few values"),
            },
            _ => unsupported("multiple-column assignment source"),
        }
    }

    /// RETURNING over the given items (target first).
    fn returning(&mut self, list: &[Node], items: &[Ns], lv: &Levels<'_>) -> Result<Rel> {
        if list.is_empty() {
            return Ok(Vec::new());
        }
        let mut inner: Vec<&[Ns]> = lv.to_vec();
        inner.push(items);
        self.targets(list, &inner)
    }
}

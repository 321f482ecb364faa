//! Queries and DML: SELECT (set operations, CTEs, FROM items, INTO), INSERT, UPDATE, DELETE,
//! COPY, EXPLAIN, PREPARE and CREATE TABLE AS.
//!
//! Scoping matters twice here: a bare name that matches a CTE in scope is not a table, and a
//! column is attributed to a table through the names (and aliases) visible in its FROM list.

use super::{ScopeRel, Walker};
use crate::names;
use model::facts::{CommandClass as C, DangerFamily};
use pg_query::protobuf::{
    CopyStmt, CreateTableAsStmt, DeleteStmt, ExplainStmt, InsertStmt, Node, ObjectType,
    PrepareStmt, RangeVar, SelectStmt, SetOperation, UpdateStmt, WithClause,
};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    pub(super) fn select_stmt(&mut self, s: &SelectStmt) -> (C, String) {
        self.select(s);
        match &s.into_clause {
            Some(into) => {
                if let Some(rel) = &into.rel {
                    self.created_table(rel);
                }
                (C::Ddl, "SELECT INTO".into())
            }
            None => (C::Read, "SELECT".into()),
        }
    }

    /// A SELECT body (also reached for set-operation arms, which are not statement nodes).
    pub(super) fn select(&mut self, s: &SelectStmt) {
        let ctes_mark = self.ctes.len();
        self.with_clause(s.with_clause.as_ref());
        if SetOperation::try_from(s.op) != Ok(SetOperation::SetopNone) {
            if let Some(l) = &s.larg {
                self.select(l);
            }
            if let Some(r) = &s.rarg {
                self.select(r);
            }
            self.exprs(&s.sort_clause);
            self.opt_expr(s.limit_count.as_deref());
            self.opt_expr(s.limit_offset.as_deref());
            self.ctes.truncate(ctes_mark);
            return;
        }
        self.scopes.push(Vec::new());
        for item in &s.from_clause {
            self.walk_from_item(item);
        }
        self.exprs(&s.target_list);
        self.opt_expr(s.where_clause.as_deref());
        self.exprs(&s.group_clause);
        self.opt_expr(s.having_clause.as_deref());
        self.exprs(&s.window_clause);
        self.exprs(&s.values_lists);
        self.exprs(&s.sort_clause);
        self.exprs(&s.distinct_clause);
        self.opt_expr(s.limit_count.as_deref());
        self.opt_expr(s.limit_offset.as_deref());
        self.scopes.pop();
        self.ctes.truncate(ctes_mark);
    }

    /// Register CTE names and walk their bodies. Non-recursive CTEs only see the ones before
    /// them (`WITH t AS (SELECT * FROM t)` reads the real table `t`).
    pub(super) fn with_clause(&mut self, with: Option<&WithClause>) {
        let Some(with) = with else { return };
        let ctes: Vec<_> = with
            .ctes
            .iter()
            .filter_map(|c| match &c.node {
                Some(N::CommonTableExpr(cte)) => Some(cte),
                _ => None,
            })
            .collect();
        if with.recursive {
            self.ctes.extend(ctes.iter().map(|c| c.ctename.clone()));
        }
        for cte in ctes {
            if let Some(q) = &cte.ctequery {
                self.dispatch(q);
            }
            if !with.recursive {
                self.ctes.push(cte.ctename.clone());
            }
        }
    }

    /// One FROM-list item: registers its visible name in the current scope.
    pub(super) fn walk_from_item(&mut self, item: &Node) {
        let Some(n) = &item.node else { return };
        match n {
            N::RangeVar(rv) => self.range_var_in_scope(rv),
            N::JoinExpr(j) => {
                if let Some(l) = &j.larg {
                    self.walk_from_item(l);
                }
                if let Some(r) = &j.rarg {
                    self.walk_from_item(r);
                }
                self.opt_expr(j.quals.as_deref());
                if let Some(a) = &j.alias {
                    self.push_scope_rel(a.aliasname.clone(), None);
                }
            }
            N::RangeSubselect(sub) => {
                if let Some(q) = &sub.subquery {
                    self.dispatch(q);
                }
                let name = sub.alias.as_ref().map(|a| a.aliasname.clone());
                self.push_scope_rel(name.unwrap_or_default(), None);
            }
            N::RangeFunction(f) => {
                for func in &f.functions {
                    // Each item is a List of (call, column definitions).
                    self.expr(func);
                }
                let name = f.alias.as_ref().map(|a| a.aliasname.clone());
                self.push_scope_rel(name.unwrap_or_default(), None);
            }
            N::RangeTableSample(t) => {
                if let Some(r) = &t.relation {
                    self.walk_from_item(r);
                }
                self.exprs(&t.args);
                self.opt_expr(t.repeatable.as_deref());
            }
            N::RangeTableFunc(t) => {
                self.opt_expr(t.docexpr.as_deref());
                self.opt_expr(t.rowexpr.as_deref());
                let name = t.alias.as_ref().map(|a| a.aliasname.clone());
                self.push_scope_rel(name.unwrap_or_default(), None);
            }
            _ => self.expr(item),
        }
    }

    fn push_scope_rel(&mut self, name: String, table: Option<String>) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(ScopeRel { name, table });
        }
    }

    /// A relation in FROM (or a DML target): a CTE reference or a table.
    pub(super) fn range_var_in_scope(&mut self, rv: &RangeVar) {
        let visible = rv
            .alias
            .as_ref()
            .map_or_else(|| rv.relname.clone(), |a| a.aliasname.clone());
        if rv.schemaname.is_empty() && self.ctes.contains(&rv.relname) {
            self.cte_refs.insert(i64::from(rv.location));
            self.push_scope_rel(visible, None);
            return;
        }
        let table = names::range_var(rv, self.search_path());
        self.push_scope_rel(visible, Some(table));
    }

    /// The target of INSERT/UPDATE/DELETE/MERGE: written, and in scope for its columns.
    pub(super) fn dml_target(&mut self, rv: Option<&RangeVar>) -> Option<String> {
        self.wrote = true;
        let rv = rv?;
        let table = self.write_target(rv);
        self.note_catalog_write(rv, &table);
        let visible = rv
            .alias
            .as_ref()
            .map_or_else(|| rv.relname.clone(), |a| a.aliasname.clone());
        self.push_scope_rel(visible, Some(table.clone()));
        Some(table)
    }

    /// Columns named by `SET col = …` / `INSERT (col, …)`: they belong to the target.
    pub(super) fn target_columns(&mut self, table: Option<&str>, targets: &[Node]) {
        for t in targets {
            if let Some(N::ResTarget(rt)) = &t.node {
                if let (Some(table), false) = (table, rt.name.is_empty()) {
                    self.column(table, &rt.name);
                }
                self.opt_expr(rt.val.as_deref());
                self.exprs(&rt.indirection);
            }
        }
    }

    pub(super) fn insert(&mut self, s: &InsertStmt) {
        let mark = self.ctes.len();
        self.with_clause(s.with_clause.as_ref());
        self.scopes.push(Vec::new());
        let table = self.dml_target(s.relation.as_ref());
        self.target_columns(table.as_deref(), &s.cols);
        if let Some(q) = &s.select_stmt {
            // The source query has its own scope; the target is not visible in it.
            let saved = self.scopes.pop();
            self.dispatch(q);
            self.scopes.extend(saved);
        }
        if let Some(oc) = &s.on_conflict_clause {
            self.push_scope_rel("excluded".into(), table.clone());
            self.target_columns(table.as_deref(), &oc.target_list);
            self.opt_expr(oc.where_clause.as_deref());
            if let Some(infer) = &oc.infer {
                self.exprs(&infer.index_elems);
                self.opt_expr(infer.where_clause.as_deref());
            }
        }
        self.exprs(&s.returning_list);
        self.scopes.pop();
        self.ctes.truncate(mark);
    }

    pub(super) fn update(&mut self, s: &UpdateStmt) {
        let mark = self.ctes.len();
        self.with_clause(s.with_clause.as_ref());
        self.scopes.push(Vec::new());
        let table = self.dml_target(s.relation.as_ref());
        for item in &s.from_clause {
            self.walk_from_item(item);
        }
        self.target_columns(table.as_deref(), &s.target_list);
        self.opt_expr(s.where_clause.as_deref());
        self.filter(s.where_clause.as_deref());
        self.exprs(&s.returning_list);
        self.scopes.pop();
        self.ctes.truncate(mark);
    }

    pub(super) fn delete(&mut self, s: &DeleteStmt) {
        let mark = self.ctes.len();
        self.with_clause(s.with_clause.as_ref());
        self.scopes.push(Vec::new());
        self.dml_target(s.relation.as_ref());
        for item in &s.using_clause {
            self.walk_from_item(item);
        }
        self.opt_expr(s.where_clause.as_deref());
        self.filter(s.where_clause.as_deref());
        self.exprs(&s.returning_list);
        self.scopes.pop();
        self.ctes.truncate(mark);
    }

    pub(super) fn copy(&mut self, s: &CopyStmt) {
        if let Some(rel) = &s.relation {
            if s.is_from {
                let table = self.write_target(rel);
                self.note_catalog_write(rel, &table);
                self.wrote = true;
            }
        }
        if let Some(q) = &s.query {
            self.dispatch(q);
        }
        if s.is_program {
            self.danger(DangerFamily::Programs);
        } else if !s.filename.is_empty() {
            self.danger(DangerFamily::ServerFiles);
        }
        self.scopes.push(Vec::new());
        if let Some(rel) = &s.relation {
            let table = names::range_var(rel, self.search_path());
            self.push_scope_rel(rel.relname.clone(), Some(table));
        }
        self.opt_expr(s.where_clause.as_deref());
        self.scopes.pop();
    }

    /// EXPLAIN runs its statement only with ANALYZE; otherwise the inner statement's writes
    /// are only planned, so they count as reads.
    pub(super) fn explain(&mut self, s: &ExplainStmt) -> (C, String) {
        let analyze = s.options.iter().any(|o| match &o.node {
            Some(N::DefElem(d)) => d.defname == "analyze" && !is_false_option(d.arg.as_deref()),
            _ => false,
        });
        let inner = s.query.as_deref().map(|q| self.dispatch(q));
        if analyze {
            let (class, _) = inner.unwrap_or((C::Opaque, String::new()));
            return (class, "EXPLAIN ANALYZE".into());
        }
        let written = std::mem::take(&mut self.facts.tables_written);
        self.facts.tables_read.extend(written);
        self.written.clear();
        self.filters.clear();
        // Only planned: no row changes, in the catalogs or anywhere.
        self.facts.catalog_writes.clear();
        self.facts.unfiltered_merge = false;
        self.facts.temp_tables_created.clear();
        self.wrote = false;
        (C::Read, "EXPLAIN".into())
    }

    /// PREPARE: the inner statement's facts are the prepared statement's facts, so policy
    /// refuses to prepare what it would refuse to run.
    pub(super) fn prepare(&mut self, s: &PrepareStmt) -> (C, String) {
        self.facts.prepared_name = Some(s.name.clone());
        let class = match &s.query {
            Some(q) => self.dispatch(q).0,
            None => C::Opaque,
        };
        (class, "PREPARE".into())
    }

    pub(super) fn create_table_as(&mut self, s: &CreateTableAsStmt) -> (C, String) {
        if let Some(rel) = s.into.as_ref().and_then(|i| i.rel.as_ref()) {
            self.created_table(rel);
        }
        if let Some(q) = &s.query {
            self.dispatch(q);
        }
        let tag = if s.is_select_into {
            "SELECT INTO"
        } else if ObjectType::try_from(s.objtype) == Ok(ObjectType::ObjectMatview) {
            "CREATE MATERIALIZED VIEW"
        } else {
            "CREATE TABLE AS"
        };
        (C::Ddl, tag.into())
    }

    /// A table the statement creates: written, and remembered if temporary.
    pub(super) fn created_table(&mut self, rel: &RangeVar) {
        self.write_target(rel);
        let temp_schema = rel.schemaname.starts_with("pg_temp");
        if rel.relpersistence == "t" || temp_schema {
            self.facts.temp_tables_created.insert(rel.relname.clone());
        }
    }
}

/// `ANALYZE false` / `ANALYZE off` / `ANALYZE 0` in an EXPLAIN option list.
fn is_false_option(arg: Option<&Node>) -> bool {
    let Some(n) = arg.and_then(|a| a.node.as_ref()) else {
        return false;
    };
    match n {
        N::String(s) => matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off" | "0"),
        N::Boolean(b) => !b.boolval,
        N::Integer(i) => i.ival == 0,
        _ => false,
    }
}

//! Top-level statements: what rows each returns and what values it copies.
//!
//! - Queries and DML: their result (RETURNING for DML). `SELECT … INTO`, `CREATE TABLE AS`
//!   and `CREATE MATERIALIZED VIEW` return nothing and write their query into the new table.
//! - `COPY (query) TO STDOUT` / `COPY table [(cols)] TO STDOUT`: the copied columns. COPY to
//!   a server file or program is unsupported: those values leave without passing the proxy.
//!   COPY FROM returns nothing.
//! - `DECLARE c CURSOR FOR q` and `PREPARE p AS q` return nothing themselves; their outputs
//!   here are those of `q`, for the caller to apply to later FETCH / EXECUTE results.
//!   FETCH and EXECUTE themselves are unsupported (the rows are those of an earlier
//!   statement the caller must track); MOVE returns nothing.
//! - EXPLAIN returns plan text: one column without sources, but the explained statement's
//!   predicates count (ANALYZE row counts answer them) and, with ANALYZE, its writes.
//! - DDL that copies values: `ALTER … TYPE … USING expr`, generated columns, `REFRESH
//!   MATERIALIZED VIEW`. Other DDL, session and transaction statements carry no values.
//! - DO, CALL and CREATE RULE run or install code whose effects are unknown: unsupported.
//!
//! The match is closed: a statement kind a future PostgreSQL adds is unsupported.

use super::flow::{Col, Flow, Rel};
use super::walker::Walker;
use super::{unsupported, ColumnRef, Result};
use pg_query::protobuf::{
    AlterTableType, ColumnDef, ConstrType, CopyStmt, CreateStmt, CreateTableAsStmt, IntoClause,
    Node, RangeVar,
};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    pub(crate) fn statement(&mut self, node: &Node) -> Result<Rel> {
        let Some(n) = &node.node else {
            return unsupported("empty statement");
        };
        match n {
            N::SelectStmt(s) => {
                let rel = self.select(s, &[])?;
                match s.into_clause.as_deref() {
                    Some(into) => self.created(into, rel),
                    None => Ok(rel),
                }
            }
            N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
                self.query(node, &[])
            }
            N::CopyStmt(c) => self.copy(c),
            N::CreateTableAsStmt(c) => self.create_table_as(c),
            N::DeclareCursorStmt(d) => self.inner(d.query.as_deref()),
            N::PrepareStmt(p) => self.inner(p.query.as_deref()),
            N::ExplainStmt(e) => self.explain(e),
            N::VariableShowStmt(s) => Ok(if s.name == "all" {
                ["name", "setting", "description"]
                    .into_iter()
                    .map(|c| Col::new(c, Flow::constant()))
                    .collect()
            } else {
                vec![Col::new(s.name.clone(), Flow::constant())]
            }),
            N::FetchStmt(f) if f.ismove => Ok(Vec::new()),
            N::FetchStmt(_) => unsupported("FETCH: rows are those of the cursor's DECLARE"),
            N::ExecuteStmt(_) => unsupported("EXECUTE: rows are those of the PREPARE"),
            N::DoStmt(_) => unsupported("DO block"),
            N::CallStmt(_) => unsupported("CALL of a procedure"),
            N::RuleStmt(_) => unsupported("CREATE RULE"),
            N::ReturnStmt(_) | N::PlassignStmt(_) => unsupported("PL/pgSQL statement"),
            N::CreateStmt(c) => self.create_table(c).map(|()| Vec::new()),
            N::AlterTableStmt(a) => self.alter_table(a).map(|()| Vec::new()),
            N::RefreshMatViewStmt(r) => self.refresh(r.relation.as_ref()).map(|()| Vec::new()),
            other if carries_no_values(other) => Ok(Vec::new()),
            other => unsupported(format!("statement {}", super::expr::kind(other))),
        }
    }

    fn inner(&mut self, q: Option<&Node>) -> Result<Rel> {
        match q {
            Some(q) => self.statement(q),
            None => unsupported("statement without a query"),
        }
    }

    fn copy(&mut self, c: &CopyStmt) -> Result<Rel> {
        if c.is_from {
            return Ok(Vec::new());
        }
        if c.is_program || !c.filename.is_empty() {
            return unsupported("COPY TO a server file or program");
        }
        if let Some(q) = c.query.as_deref() {
            return self.query(q, &[]);
        }
        let Some(rv) = c.relation.as_ref() else {
            return unsupported("COPY without a source");
        };
        let found = self.resolve_relation(&rv.schemaname, &rv.relname)?;
        let cols = self.relation_cols(found)?;
        if c.attlist.is_empty() {
            return Ok(cols);
        }
        super::from::strings(&c.attlist)?
            .into_iter()
            .map(|name| match cols.iter().find(|c| c.name == name) {
                Some(col) => Ok(col.clone()),
                None => unsupported(format!("COPY column {name} not found")),
            })
            .collect()
    }

    fn create_table_as(&mut self, c: &CreateTableAsStmt) -> Result<Rel> {
        let Some(into) = c.into.as_deref() else {
            return unsupported("CREATE TABLE AS without a target");
        };
        match c.query.as_deref().map(|q| &q.node) {
            Some(Some(N::ExecuteStmt(_))) => unsupported("CREATE TABLE AS EXECUTE"),
            Some(_) => {
                let rel = self.inner(c.query.as_deref())?;
                self.created(into, rel)
            }
            None => unsupported("CREATE TABLE AS without a query"),
        }
    }

    /// A new table filled from `rel`: each of its columns is written from the query's.
    fn created(&mut self, into: &IntoClause, rel: Rel) -> Result<Rel> {
        let Some(rv) = into.rel.as_ref() else {
            return unsupported("INTO without a table");
        };
        let names = super::from::strings(&into.col_names)?;
        let rel = super::flow::rename(rel, &names).ok_or_else(|| {
            super::LineageError::Unsupported("more column names than columns".into())
        })?;
        let schema = self.creation_schema(rv);
        for col in rel {
            let target = ColumnRef::new(&schema, &rv.relname, &col.name);
            self.wrote(Some(&target), &col.flow)?;
        }
        Ok(Vec::new())
    }

    /// Where CREATE puts an unqualified new relation.
    fn creation_schema(&self, rv: &RangeVar) -> String {
        if !rv.schemaname.is_empty() {
            return rv.schemaname.clone();
        }
        if rv.relpersistence == "t" {
            return "pg_temp".into();
        }
        crate::names::default_schema(self.search_path).to_owned()
    }

    fn explain(&mut self, e: &pg_query::protobuf::ExplainStmt) -> Result<Rel> {
        // ANALYZE's value decides whether the statement runs.
        self.literal_dependent = true;
        let analyze = e.options.iter().any(|o| match &o.node {
            Some(N::DefElem(d)) => d.defname == "analyze" && !is_false(d.arg.as_deref()),
            _ => false,
        });
        let before = self.written.len();
        self.inner(e.query.as_deref())?;
        if !analyze {
            // Only planned: nothing is written.
            self.written.truncate(before);
        }
        Ok(vec![Col::new("QUERY PLAN", Flow::constant())])
    }

    /// Generated columns copy other columns of each row into themselves.
    fn create_table(&mut self, c: &CreateStmt) -> Result<()> {
        let Some(rv) = c.relation.as_ref() else {
            return Ok(());
        };
        let schema = self.creation_schema(rv);
        let defs: Vec<&ColumnDef> = c
            .table_elts
            .iter()
            .filter_map(|e| match &e.node {
                Some(N::ColumnDef(d)) => Some(&**d),
                _ => None,
            })
            .collect();
        if !defs.iter().any(|d| generated(d).is_some()) {
            return Ok(());
        }
        let cols = defs
            .iter()
            .map(|d| {
                let flow = Flow::column(ColumnRef::new(&schema, &rv.relname, &d.colname));
                Col::new(d.colname.clone(), flow)
            })
            .collect();
        let items = [super::flow::Ns::item(Some(rv.relname.clone()), cols)];
        for d in defs {
            if let Some(expr) = generated(d) {
                let f = self.expr(expr, &[&items])?;
                let target = ColumnRef::new(&schema, &rv.relname, &d.colname);
                self.wrote(Some(&target), &f)?;
            }
        }
        Ok(())
    }

    /// `ALTER COLUMN c TYPE t USING expr`, `ADD COLUMN … GENERATED ALWAYS AS (expr)`,
    /// `ALTER COLUMN c SET EXPRESSION AS (expr)`: the table's rows are rewritten from expr.
    fn alter_table(&mut self, a: &pg_query::protobuf::AlterTableStmt) -> Result<()> {
        let mut writes: Vec<(String, &Node)> = Vec::new();
        for cmd in &a.cmds {
            let Some(N::AlterTableCmd(c)) = &cmd.node else {
                continue;
            };
            let def = c.def.as_deref().and_then(|d| d.node.as_ref());
            match (AlterTableType::try_from(c.subtype), def) {
                (Ok(AlterTableType::AtAlterColumnType), Some(N::ColumnDef(d))) => {
                    if let Some(using) = d.raw_default.as_deref() {
                        writes.push((c.name.clone(), using));
                    }
                }
                (Ok(AlterTableType::AtAddColumn), Some(N::ColumnDef(d))) => {
                    if let Some(expr) = generated(d) {
                        writes.push((d.colname.clone(), expr));
                    }
                }
                (Ok(AlterTableType::AtSetExpression), Some(_)) => {
                    if let Some(expr) = c.def.as_deref() {
                        writes.push((c.name.clone(), expr));
                    }
                }
                _ => {}
            }
        }
        if writes.is_empty() {
            return Ok(());
        }
        let Some(rv) = a.relation.as_ref() else {
            return unsupported("ALTER TABLE without a table");
        };
        let found = self.resolve_relation(&rv.schemaname, &rv.relname)?;
        let (schema, table) = (found.schema.clone(), found.name.clone());
        let items = [super::flow::Ns::item(
            Some(rv.relname.clone()),
            self.relation_cols(found)?,
        )];
        for (col, expr) in writes {
            let f = self.expr(expr, &[&items])?;
            self.wrote(Some(&ColumnRef::new(&schema, &table, &col)), &f)?;
        }
        Ok(())
    }

    /// REFRESH MATERIALIZED VIEW: its definition is run and stored again.
    fn refresh(&mut self, rv: Option<&RangeVar>) -> Result<()> {
        let Some(rv) = rv else {
            return unsupported("REFRESH without a view");
        };
        let found = self.resolve_relation(&rv.schemaname, &rv.relname)?;
        let (schema, name) = (found.schema.clone(), found.name.clone());
        if !found.is_view() {
            return unsupported(format!("definition of {schema}.{name} unknown"));
        }
        for col in self.relation_cols(found)? {
            self.wrote(Some(&ColumnRef::new(&schema, &name, &col.name)), &col.flow)?;
        }
        Ok(())
    }
}

/// The expression of `GENERATED ALWAYS AS (expr) STORED`, if the column has one.
fn generated(d: &ColumnDef) -> Option<&Node> {
    d.constraints.iter().find_map(|c| match &c.node {
        Some(N::Constraint(k)) if k.contype == ConstrType::ConstrGenerated as i32 => {
            k.raw_expr.as_deref()
        }
        _ => None,
    })
}

/// `ANALYZE false` / `off` / `0` in an EXPLAIN option list.
fn is_false(arg: Option<&Node>) -> bool {
    match arg.and_then(|a| a.node.as_ref()) {
        Some(N::String(s)) => matches!(s.sval.to_ascii_lowercase().as_str(), "false" | "off" | "0"),
        Some(N::Boolean(b)) => !b.boolval,
        Some(N::Integer(i)) => i.ival == 0,
        _ => false,
    }
}

/// Statements that return no rows and copy no values (schema objects, privileges, session
/// and transaction control, maintenance). Their other risks are policy's, not lineage's.
#[rustfmt::skip]
fn carries_no_values(n: &N) -> bool {
    matches!(
        n,
        N::TransactionStmt(_) | N::VariableSetStmt(_) | N::DiscardStmt(_) | N::ListenStmt(_) |
        N::UnlistenStmt(_) | N::NotifyStmt(_) | N::DeallocateStmt(_) | N::ClosePortalStmt(_) |
        N::ConstraintsSetStmt(_) | N::LockStmt(_) | N::TruncateStmt(_) | N::DropStmt(_) |
        N::DropOwnedStmt(_) | N::DropRoleStmt(_) | N::DropSubscriptionStmt(_) |
        N::DropTableSpaceStmt(_) | N::DropUserMappingStmt(_) | N::DropdbStmt(_) |
        N::ViewStmt(_) | N::IndexStmt(_) | N::CreateSchemaStmt(_) | N::CreateSeqStmt(_) |
        N::AlterSeqStmt(_) | N::CreateFunctionStmt(_) | N::AlterFunctionStmt(_) |
        N::CreateTrigStmt(_) | N::CreateEventTrigStmt(_) | N::AlterEventTrigStmt(_) |
        N::CreatePolicyStmt(_) | N::AlterPolicyStmt(_) | N::CreateRoleStmt(_) |
        N::AlterRoleStmt(_) | N::AlterRoleSetStmt(_) | N::GrantStmt(_) | N::GrantRoleStmt(_) |
        N::AlterDefaultPrivilegesStmt(_) | N::CommentStmt(_) | N::SecLabelStmt(_) |
        N::RenameStmt(_) | N::AlterOwnerStmt(_) | N::AlterObjectSchemaStmt(_) |
        N::AlterObjectDependsStmt(_) | N::ReassignOwnedStmt(_) | N::CompositeTypeStmt(_) |
        N::CreateEnumStmt(_) | N::AlterEnumStmt(_) | N::CreateRangeStmt(_) |
        N::CreateDomainStmt(_) | N::AlterDomainStmt(_) | N::DefineStmt(_) |
        N::AlterTypeStmt(_) | N::CreateExtensionStmt(_) | N::AlterExtensionStmt(_) |
        N::AlterExtensionContentsStmt(_) | N::CreateFdwStmt(_) | N::AlterFdwStmt(_) |
        N::CreateForeignServerStmt(_) | N::AlterForeignServerStmt(_) |
        N::CreateForeignTableStmt(_) | N::CreateUserMappingStmt(_) |
        N::AlterUserMappingStmt(_) | N::ImportForeignSchemaStmt(_) | N::CreateAmStmt(_) |
        N::CreatePlangStmt(_) | N::CreateOpClassStmt(_) | N::CreateOpFamilyStmt(_) |
        N::AlterOpFamilyStmt(_) | N::AlterOperatorStmt(_) | N::CreateCastStmt(_) |
        N::CreateConversionStmt(_) | N::CreateTransformStmt(_) | N::CreateStatsStmt(_) |
        N::AlterStatsStmt(_) | N::AlterTsdictionaryStmt(_) | N::AlterTsconfigurationStmt(_) |
        N::AlterCollationStmt(_) | N::CreateTableSpaceStmt(_) |
        N::AlterTableSpaceOptionsStmt(_) | N::AlterTableMoveAllStmt(_) | N::CreatedbStmt(_) |
        N::AlterDatabaseStmt(_) | N::AlterDatabaseSetStmt(_) |
        N::AlterDatabaseRefreshCollStmt(_) | N::CreatePublicationStmt(_) |
        N::AlterPublicationStmt(_) | N::CreateSubscriptionStmt(_) |
        N::AlterSubscriptionStmt(_) | N::ReplicaIdentityStmt(_) | N::VacuumStmt(_) |
        N::ClusterStmt(_) | N::ReindexStmt(_) | N::CheckPointStmt(_) | N::LoadStmt(_) |
        N::AlterSystemStmt(_)
    )
}

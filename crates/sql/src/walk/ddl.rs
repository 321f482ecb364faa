//! Schema changes: what is created, altered, dropped or truncated, and the code that
//! routines, triggers, rules and DO blocks will run.
//!
//! Code bodies are analysed where their language allows it (SQL and PL/pgSQL) and their facts
//! merged into the creating statement's, so creating a function that drops a table is
//! refused like dropping it; bodies in other languages are opaque.

use super::{merge, ScopeRel, Walker};
use crate::names;
use model::facts::{CommandClass as C, ObjectRef, RoutineDef};
use pg_query::protobuf::{
    AlterTableStmt, AlterTableType as AT, CreateFunctionStmt, CreateStmt, CreateTrigStmt, DefElem,
    DoStmt, DropStmt, Node, ObjectType as O, RangeVar, RuleStmt, TruncateStmt,
};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    pub(super) fn write_targets(&mut self, nodes: &[Node]) {
        for n in nodes {
            if let Some(N::RangeVar(rv)) = &n.node {
                self.write_target(rv);
            }
        }
    }

    pub(super) fn dropped(&mut self, kind: &str, name: &str, explicit_schema: bool) {
        self.facts.drops.insert(ObjectRef {
            kind: kind.to_owned(),
            name: name.to_owned(),
            explicit_schema,
        });
    }

    pub(super) fn create_table(&mut self, s: &CreateStmt) {
        if let Some(rel) = &s.relation {
            self.created_table(rel);
        }
    }

    pub(super) fn truncate(&mut self, s: &TruncateStmt) {
        for r in &s.relations {
            if let Some(N::RangeVar(rv)) = &r.node {
                let name = self.write_target(rv);
                self.note_catalog_write(rv, &name);
                self.facts.truncated.insert(name);
            }
        }
    }

    pub(super) fn drop(&mut self, s: &DropStmt) -> (C, String) {
        let kind = object_kind(s.remove_type);
        let in_schema = schema_scoped(s.remove_type);
        for obj in &s.objects {
            let Some((parts, explicit)) = object_name(obj, in_schema) else {
                continue;
            };
            self.dropped_safeguard(&kind, &parts);
            let name = if in_schema && !explicit {
                names::qualify_parts(&parts, self.search_path())
            } else {
                parts.join(".")
            };
            self.dropped(&kind, &name, explicit);
        }
        (C::Ddl, format!("DROP {}", kind.to_uppercase()))
    }

    pub(super) fn alter_table(&mut self, s: &AlterTableStmt) -> (C, String) {
        let table = s.relation.as_ref().map(|r| self.write_target(r));
        self.scopes.push(vec![ScopeRel {
            name: s
                .relation
                .as_ref()
                .map(|r| r.relname.clone())
                .unwrap_or_default(),
            table: table.clone(),
        }]);
        for cmd in &s.cmds {
            let Some(N::AlterTableCmd(c)) = &cmd.node else {
                continue;
            };
            let part = match AT::try_from(c.subtype) {
                Ok(AT::AtDropColumn) => Some("column"),
                Ok(AT::AtDropConstraint) => Some("constraint"),
                Ok(AT::AtChangeOwner) => {
                    self.facts.privileges = true;
                    None
                }
                _ => None,
            };
            if let (Some(kind), Some(t)) = (part, &table) {
                self.dropped(kind, &format!("{t}.{}", c.name), true);
            }
            if let Some(rv) = &s.relation {
                self.alter_table_safeguard(rv, c.subtype, &c.name);
            }
            self.opt_expr(c.def.as_deref());
        }
        self.scopes.pop();
        let kind = object_kind(s.objtype);
        (C::Ddl, format!("ALTER {}", kind.to_uppercase()))
    }

    /// A function the statement will make the server call (triggers, event triggers).
    pub(super) fn referenced_function(&mut self, funcname: &[Node]) {
        if let Some(parts) = names::strings(funcname) {
            let name = names::function_name(&parts);
            if let Some(f) = crate::danger::function_family(&name) {
                self.danger(f);
            }
            self.facts.functions.insert(name);
        }
    }

    pub(super) fn create_trigger(&mut self, s: &CreateTrigStmt) {
        if let Some(r) = &s.relation {
            self.write_target(r);
            if s.replace {
                // CREATE OR REPLACE TRIGGER: the trigger of that name may do nothing now.
                self.table_safeguard(super::safeguard::TRIGGER, r, Some(&s.trigname));
            }
        }
        self.referenced_function(&s.funcname);
        self.opt_expr(s.when_clause.as_deref());
    }

    /// CREATE/ALTER POLICY: row-security expressions over the table (they may hold
    /// subqueries).
    pub(super) fn row_policy(
        &mut self,
        table: Option<&RangeVar>,
        qual: Option<&Node>,
        check: Option<&Node>,
    ) {
        let name = table.map(|t| self.write_target(t));
        self.scopes.push(vec![ScopeRel {
            name: table.map(|t| t.relname.clone()).unwrap_or_default(),
            table: name,
        }]);
        self.opt_expr(qual);
        self.opt_expr(check);
        self.scopes.pop();
    }

    /// CREATE RULE: the rule rewrites (or suppresses) every matching statement on the table.
    pub(super) fn rule(&mut self, s: &RuleStmt) {
        if let Some(r) = &s.relation {
            self.write_target(r);
            self.table_safeguard(super::safeguard::RULE, r, Some(&s.rulename));
        }
        self.opt_expr(s.where_clause.as_deref());
        for action in &s.actions {
            self.dispatch(action);
        }
    }

    pub(super) fn create_function(&mut self, s: &CreateFunctionStmt) -> (C, String) {
        let opts = def_elems(&s.options);
        let language = opts
            .iter()
            .find(|d| d.defname == "language")
            .and_then(|d| def_string(d))
            .unwrap_or_else(|| "sql".to_owned())
            .to_lowercase();
        let name = names::strings(&s.funcname)
            .map(|p| names::function_name(&p))
            .unwrap_or_default();
        self.replaced_trigger_function(s, &name);
        self.routine_settings(&s.options);
        self.facts.routines.insert(RoutineDef {
            name,
            language: language.clone(),
        });
        if crate::danger::untrusted_language(&language) {
            self.facts.untrusted_language = true;
        }
        if let Some(body) = &s.sql_body {
            self.sql_body(body);
        } else if let Some(body) = opts.iter().find(|d| d.defname == "as") {
            self.routine_body(&language, body, &s.parameters);
        }
        let tag = if s.is_procedure {
            "CREATE PROCEDURE"
        } else {
            "CREATE FUNCTION"
        };
        (C::Ddl, tag.into())
    }

    /// `BEGIN ATOMIC … END` / `RETURN …`: statements already in this parse tree.
    fn sql_body(&mut self, body: &Node) {
        match &body.node {
            Some(N::List(l)) => l.items.iter().for_each(|i| self.sql_body(i)),
            Some(_) => {
                self.dispatch(body);
            }
            None => {}
        }
    }

    /// A body given as a string (`AS '…'` / `AS $$…$$`).
    fn routine_body(&mut self, language: &str, body: &DefElem, params: &[Node]) {
        let mut vars = self.ctx.vars.clone();
        for p in params {
            if let Some(N::FunctionParameter(fp)) = &p.node {
                vars.insert(fp.name.clone());
            }
        }
        let src = def_string(body);
        let inner = match (language, src) {
            ("plpgsql", Some(src)) => {
                crate::plpgsql::analyze_function(self.text, &src, self.ctx, &vars)
            }
            ("sql", Some(src)) => Ok(crate::nested(&src, self.ctx, &vars)),
            ("plpgsql" | "sql", None) => Err("function body is not a string".to_owned()),
            (other, _) => Err(format!("function body in language {other}")),
        };
        self.absorb(inner, false);
    }

    pub(super) fn do_block(&mut self, s: &DoStmt) {
        let opts = def_elems(&s.args);
        let language = opts
            .iter()
            .find(|d| d.defname == "language")
            .and_then(|d| def_string(d))
            .unwrap_or_else(|| "plpgsql".to_owned())
            .to_lowercase();
        if crate::danger::untrusted_language(&language) {
            self.facts.untrusted_language = true;
        }
        let body = opts
            .iter()
            .find(|d| d.defname == "as")
            .and_then(|d| def_string(d));
        let inner = match (language.as_str(), body) {
            ("plpgsql", Some(src)) => crate::plpgsql::analyze_do(&src, self.ctx),
            ("plpgsql", None) => Err("DO block without a body".to_owned()),
            (other, _) => Err(format!("DO block in language {other}")),
        };
        self.absorb(inner, true);
    }

    /// Merge facts of code the statement runs (or will run).
    fn absorb(&mut self, inner: Result<Vec<model::facts::StatementFacts>, String>, session: bool) {
        match inner {
            Ok(list) => {
                for f in list {
                    merge(&mut self.facts, f, session);
                }
            }
            Err(reason) => self.opaque(reason),
        }
        // Inner code's text is not this statement's literal-free shape: never cache by it.
        self.literal_sensitive = true;
    }
}

fn def_elems(nodes: &[Node]) -> Vec<&DefElem> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::DefElem(d)) => Some(d.as_ref()),
            _ => None,
        })
        .collect()
}

/// A DefElem argument that is a string, or a one-string list (how `AS '…'` arrives).
fn def_string(d: &DefElem) -> Option<String> {
    match d.arg.as_deref()?.node.as_ref()? {
        N::String(s) => Some(s.sval.clone()),
        N::List(l) if l.items.len() == 1 => names::strings(&l.items)?.pop(),
        _ => None,
    }
}

/// The dotted name of a dropped object and whether a schema was written.
fn object_name(obj: &Node, in_schema: bool) -> Option<(Vec<String>, bool)> {
    let parts = match obj.node.as_ref()? {
        N::List(l) => names::strings(&l.items)?,
        N::String(s) => vec![s.sval.clone()],
        N::ObjectWithArgs(o) => names::strings(&o.objname)?,
        N::TypeName(t) => names::strings(&t.names)?,
        _ => return None,
    };
    let explicit = !in_schema || parts.len() > 1;
    Some((parts, explicit))
}

/// Object kinds whose names live in a schema (so an unqualified name is resolved).
fn schema_scoped(kind: i32) -> bool {
    matches!(
        O::try_from(kind),
        Ok(O::ObjectTable
            | O::ObjectView
            | O::ObjectMatview
            | O::ObjectIndex
            | O::ObjectSequence
            | O::ObjectForeignTable
            | O::ObjectFunction
            | O::ObjectProcedure
            | O::ObjectRoutine
            | O::ObjectAggregate
            | O::ObjectType
            | O::ObjectDomain
            | O::ObjectCollation
            | O::ObjectConversion
            | O::ObjectStatisticExt)
    )
}

/// PostgreSQL's object kind in lower case ("table", "materialized view", …).
fn object_kind(kind: i32) -> String {
    let Ok(k) = O::try_from(kind) else {
        return "object".into();
    };
    let name = match k {
        O::ObjectMatview => "materialized view",
        O::ObjectForeignTable => "foreign table",
        O::ObjectForeignServer => "server",
        O::ObjectFdw => "foreign data wrapper",
        O::ObjectEventTrigger => "event trigger",
        O::ObjectAccessMethod => "access method",
        O::ObjectStatisticExt => "statistics",
        O::ObjectTabconstraint => "constraint",
        O::ObjectTsconfiguration => "text search configuration",
        O::ObjectTsdictionary => "text search dictionary",
        O::ObjectTsparser => "text search parser",
        O::ObjectTstemplate => "text search template",
        O::ObjectUserMapping => "user mapping",
        O::ObjectLargeobject => "large object",
        other => {
            // `ObjectTable` → "table": the enum names are PostgreSQL's OBJECT_* constants.
            return other
                .as_str_name()
                .trim_start_matches("OBJECT_")
                .to_lowercase()
                .replace('_', " ");
        }
    };
    name.into()
}

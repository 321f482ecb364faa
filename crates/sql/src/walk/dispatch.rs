//! Statement kinds: every statement node the grammar can produce, mapped to a command class
//! and tag, and handed to the walker that understands its parts.
//!
//! The match is exhaustive over statement variants on purpose: a statement kind added by a
//! future PostgreSQL lands in the final arm and is opaque until someone classifies it.

use super::tags::{foreign_tag, plain_ddl_tag, role_tag, transaction_tag};
use super::Walker;
use model::facts::{CommandClass as C, DangerFamily};
use pg_query::protobuf::Node;
use pg_query::NodeEnum as N;

impl Walker<'_> {
    /// Walk a statement node (top level or nested) and return its class and tag.
    pub(super) fn dispatch(&mut self, node: &Node) -> (C, String) {
        self.stmts_seen += 1;
        let Some(n) = &node.node else {
            self.opaque("empty statement node");
            return (C::Opaque, "UNKNOWN".into());
        };
        let (class, tag): (C, &str) = match n {
            N::SelectStmt(s) => return self.select_stmt(s),
            N::InsertStmt(s) => {
                self.insert(s);
                (C::Write, "INSERT")
            }
            N::UpdateStmt(s) => {
                self.update(s);
                (C::Write, "UPDATE")
            }
            N::DeleteStmt(s) => {
                self.delete(s);
                (C::Write, "DELETE")
            }
            N::MergeStmt(s) => {
                self.merge_stmt(s);
                (C::Write, "MERGE")
            }
            N::ExplainStmt(s) => return self.explain(s),
            N::CopyStmt(s) => {
                self.copy(s);
                (C::Copy, "COPY")
            }
            N::DeclareCursorStmt(s) => {
                // CURSOR_OPT_HOLD (PostgreSQL parsenodes.h): the cursor outlives COMMIT.
                const CURSOR_OPT_HOLD: i32 = 0x0020;
                self.facts.cursor = Some(model::facts::CursorOp::Declare {
                    name: s.portalname.clone(),
                    hold: s.options & CURSOR_OPT_HOLD != 0,
                });
                if let Some(q) = &s.query {
                    self.dispatch(q);
                }
                (C::Read, "DECLARE CURSOR")
            }
            N::FetchStmt(s) => {
                self.facts.cursor = Some(model::facts::CursorOp::Fetch {
                    name: s.portalname.clone(),
                    moves: s.ismove,
                });
                (C::Read, if s.ismove { "MOVE" } else { "FETCH" })
            }
            N::ClosePortalStmt(s) => {
                // An empty name is CLOSE ALL.
                let name = (!s.portalname.is_empty()).then(|| s.portalname.clone());
                self.facts.cursor = Some(model::facts::CursorOp::Close { name });
                (C::Read, "CLOSE CURSOR")
            }
            N::LockStmt(s) => {
                self.write_targets(&s.relations);
                (C::Write, "LOCK TABLE")
            }
            N::RefreshMatViewStmt(s) => {
                if let Some(r) = &s.relation {
                    self.write_target(r);
                }
                (C::Write, "REFRESH MATERIALIZED VIEW")
            }
            N::PrepareStmt(s) => return self.prepare(s),
            N::ExecuteStmt(s) => {
                self.facts.executes_prepared = Some(s.name.clone());
                self.opaque(format!("EXECUTE of prepared statement {:?}", s.name));
                (C::Opaque, "EXECUTE")
            }
            _ => return self.dispatch_session(n),
        };
        (class, tag.to_owned())
    }

    /// Transaction control, session state, DO/CALL and maintenance.
    fn dispatch_session(&mut self, n: &N) -> (C, String) {
        let (class, tag): (C, &str) = match n {
            N::DeallocateStmt(s) => {
                let name = (!s.isall && !s.name.is_empty()).then(|| s.name.clone());
                self.facts.deallocate = Some(name);
                (C::Session, "DEALLOCATE")
            }
            N::TransactionStmt(s) => {
                self.transaction_modes(&s.options, "");
                (C::Transaction, transaction_tag(s.kind))
            }
            N::ConstraintsSetStmt(_) => (C::Transaction, "SET CONSTRAINTS"),
            N::VariableSetStmt(s) => return self.variable_set(s),
            N::VariableShowStmt(_) => (C::Session, "SHOW"),
            N::DiscardStmt(s) => return self.discard(s),
            N::ListenStmt(_) => (C::Session, "LISTEN"),
            N::UnlistenStmt(_) => (C::Session, "UNLISTEN"),
            N::NotifyStmt(_) => (C::Session, "NOTIFY"),
            N::DoStmt(s) => {
                self.do_block(s);
                (C::CallDo, "DO")
            }
            N::CallStmt(s) => {
                if let Some(call) = &s.funccall {
                    self.exprs(&call.args);
                }
                (C::CallDo, "CALL")
            }
            N::ReturnStmt(s) => {
                self.opt_expr(s.returnval.as_deref());
                (C::Read, "RETURN")
            }
            N::VacuumStmt(s) => (
                C::Utility,
                if s.is_vacuumcmd { "VACUUM" } else { "ANALYZE" },
            ),
            N::ClusterStmt(_) => (C::Utility, "CLUSTER"),
            N::ReindexStmt(_) => (C::Utility, "REINDEX"),
            N::CheckPointStmt(_) => (C::Utility, "CHECKPOINT"),
            N::LoadStmt(_) => {
                self.facts.load = true;
                (C::Utility, "LOAD")
            }
            N::AlterSystemStmt(s) => {
                self.facts.alter_system = true;
                self.danger(DangerFamily::Settings);
                if let Some(set) = &s.setstmt {
                    self.stored_setting(set);
                }
                (C::Utility, "ALTER SYSTEM")
            }
            _ => return self.dispatch_ddl(n),
        };
        (class, tag.to_owned())
    }

    /// Schema, privilege and object statements.
    fn dispatch_ddl(&mut self, n: &N) -> (C, String) {
        let (class, tag): (C, &str) = match n {
            N::CreateStmt(s) => {
                self.create_table(s);
                (C::Ddl, "CREATE TABLE")
            }
            N::CreateTableAsStmt(s) => return self.create_table_as(s),
            N::ViewStmt(s) => {
                if let Some(v) = &s.view {
                    self.write_target(v);
                }
                if let Some(q) = &s.query {
                    self.dispatch(q);
                }
                (C::Ddl, "CREATE VIEW")
            }
            N::IndexStmt(s) => {
                if let Some(r) = &s.relation {
                    self.write_target(r);
                }
                (C::Ddl, "CREATE INDEX")
            }
            N::AlterTableStmt(s) => return self.alter_table(s),
            N::RenameStmt(s) => {
                if let Some(r) = &s.relation {
                    self.write_target(r);
                }
                (C::Ddl, "ALTER RENAME")
            }
            N::AlterObjectSchemaStmt(s) => {
                if let Some(r) = &s.relation {
                    self.write_target(r);
                }
                (C::Ddl, "ALTER SET SCHEMA")
            }
            N::DropStmt(s) => return self.drop(s),
            N::TruncateStmt(s) => {
                self.truncate(s);
                (C::Ddl, "TRUNCATE TABLE")
            }
            N::DropdbStmt(s) => {
                self.dropped("database", &s.dbname, true);
                (C::Ddl, "DROP DATABASE")
            }
            N::DropTableSpaceStmt(s) => {
                self.dropped("tablespace", &s.tablespacename, true);
                (C::Ddl, "DROP TABLESPACE")
            }
            N::DropRoleStmt(s) => {
                self.facts.privileges = true;
                for r in &s.roles {
                    if let Some(N::RoleSpec(spec)) = &r.node {
                        self.dropped("role", &spec.rolename, true);
                    }
                }
                (C::Dcl, "DROP ROLE")
            }
            N::DropOwnedStmt(_) => {
                self.facts.privileges = true;
                self.dropped("owned", "*", true);
                (C::Dcl, "DROP OWNED")
            }
            N::CreateFunctionStmt(s) => return self.create_function(s),
            N::AlterFunctionStmt(s) => {
                self.routine_settings(&s.actions);
                (C::Ddl, "ALTER FUNCTION")
            }
            N::AlterEventTrigStmt(s) => {
                self.alter_event_trigger(s);
                (C::Ddl, "ALTER EVENT TRIGGER")
            }
            N::CreateTrigStmt(s) => {
                self.create_trigger(s);
                (C::Ddl, "CREATE TRIGGER")
            }
            N::CreateEventTrigStmt(s) => {
                self.referenced_function(&s.funcname);
                (C::Ddl, "CREATE EVENT TRIGGER")
            }
            N::RuleStmt(s) => {
                self.rule(s);
                (C::Ddl, "CREATE RULE")
            }
            N::CreatePolicyStmt(s) => {
                self.row_policy(s.table.as_ref(), s.qual.as_deref(), s.with_check.as_deref());
                self.created_policy(s);
                (C::Ddl, "CREATE POLICY")
            }
            N::AlterPolicyStmt(s) => {
                self.row_policy(s.table.as_ref(), s.qual.as_deref(), s.with_check.as_deref());
                if let Some(t) = &s.table {
                    // New roles or expressions: it may open the table.
                    self.table_safeguard(super::safeguard::POLICY, t, Some(&s.policy_name));
                }
                (C::Ddl, "ALTER POLICY")
            }
            N::CreateSchemaStmt(s) => {
                for elt in &s.schema_elts {
                    self.dispatch(elt);
                }
                (C::Ddl, "CREATE SCHEMA")
            }
            N::CreateExtensionStmt(s) => {
                if let Some(f) = crate::danger::extension_family(&s.extname) {
                    self.danger(f);
                }
                (C::Ddl, "CREATE EXTENSION")
            }
            N::CreatePlangStmt(s) => {
                if !s.pltrusted || crate::danger::untrusted_language(&s.plname) {
                    self.facts.untrusted_language = true;
                }
                (C::Ddl, "CREATE LANGUAGE")
            }
            _ => return self.dispatch_dcl(n),
        };
        (class, tag.to_owned())
    }

    /// Privileges, roles, foreign data and settings stored in the catalog; then the plain
    /// schema statements.
    fn dispatch_dcl(&mut self, n: &N) -> (C, String) {
        let (class, tag): (C, &str) = match n {
            N::CreateForeignServerStmt(s) => {
                let file = s.fdwname.eq_ignore_ascii_case("file_fdw");
                self.danger(if file {
                    DangerFamily::ServerFiles
                } else {
                    DangerFamily::CrossDatabase
                });
                (C::Ddl, "CREATE SERVER")
            }
            N::CreateForeignTableStmt(s) => {
                self.danger(DangerFamily::CrossDatabase);
                if let Some(r) = s.base_stmt.as_ref().and_then(|b| b.relation.as_ref()) {
                    self.write_target(r);
                }
                (C::Ddl, "CREATE FOREIGN TABLE")
            }
            N::CreateFdwStmt(_)
            | N::AlterFdwStmt(_)
            | N::AlterForeignServerStmt(_)
            | N::CreateUserMappingStmt(_)
            | N::AlterUserMappingStmt(_)
            | N::DropUserMappingStmt(_)
            | N::ImportForeignSchemaStmt(_)
            | N::CreateSubscriptionStmt(_)
            | N::AlterSubscriptionStmt(_)
            | N::DropSubscriptionStmt(_) => {
                self.danger(DangerFamily::CrossDatabase);
                (C::Ddl, foreign_tag(n))
            }
            N::AlterDatabaseSetStmt(s) => {
                self.danger(DangerFamily::Settings);
                if let Some(set) = &s.setstmt {
                    self.stored_setting(set);
                }
                (C::Ddl, "ALTER DATABASE")
            }
            N::AlterRoleSetStmt(s) => {
                self.facts.privileges = true;
                self.danger(DangerFamily::Settings);
                if let Some(set) = &s.setstmt {
                    self.stored_setting(set);
                }
                (C::Dcl, "ALTER ROLE")
            }
            N::GrantStmt(s) => {
                self.facts.privileges = true;
                self.write_targets(&s.objects);
                (C::Dcl, if s.is_grant { "GRANT" } else { "REVOKE" })
            }
            N::GrantRoleStmt(s) => {
                self.facts.privileges = true;
                (
                    C::Dcl,
                    if s.is_grant {
                        "GRANT ROLE"
                    } else {
                        "REVOKE ROLE"
                    },
                )
            }
            N::CreateRoleStmt(s) => {
                self.facts.privileges = true;
                (C::Dcl, role_tag(s.stmt_type))
            }
            N::AlterRoleStmt(_) => {
                self.facts.privileges = true;
                (C::Dcl, "ALTER ROLE")
            }
            N::AlterDefaultPrivilegesStmt(_) => {
                self.facts.privileges = true;
                (C::Dcl, "ALTER DEFAULT PRIVILEGES")
            }
            N::ReassignOwnedStmt(_) => {
                self.facts.privileges = true;
                (C::Dcl, "REASSIGN OWNED")
            }
            N::AlterOwnerStmt(_) => {
                self.facts.privileges = true;
                (C::Ddl, "ALTER OWNER")
            }
            other => match plain_ddl_tag(other) {
                Some(tag) => (C::Ddl, tag),
                None => {
                    self.opaque("statement kind not understood");
                    (C::Opaque, "UNKNOWN")
                }
            },
        };
        (class, tag.to_owned())
    }
}

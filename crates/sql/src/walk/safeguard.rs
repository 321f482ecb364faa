//! Safeguards a statement turns off, removes or routes around: triggers, row-level security
//! and its policies, rules, event triggers; and settings stored on routines.
//!
//! These are what the server enforces by itself on every write, whoever sends it (audit
//! triggers, tenant isolation, "never delete" rules, DDL auditing by event trigger), so a
//! statement that switches one off is reported even when it drops nothing.
//! `ENABLE REPLICA TRIGGER/RULE` counts: such a trigger fires only while
//! `session_replication_role = replica`, so in ordinary sessions it is off. A permissive
//! policy whose expression is always true opens every row to the roles it names; a replaced
//! trigger or trigger function may do nothing any more.
//!
//! This module only describes; whether that is allowed is policy's call.

use super::Walker;
use crate::names;
use model::facts::ObjectRef;
use pg_query::protobuf::{
    AlterEventTrigStmt, AlterTableType as AT, CreateFunctionStmt, CreatePolicyStmt, Node, RangeVar,
};
use pg_query::NodeEnum as N;

pub(super) const TRIGGER: &str = "trigger";
pub(super) const ROW_SECURITY: &str = "row level security";
pub(super) const POLICY: &str = "policy";
pub(super) const RULE: &str = "rule";
pub(super) const EVENT_TRIGGER: &str = "event trigger";

impl Walker<'_> {
    fn safeguard(&mut self, kind: &str, name: String, explicit_schema: bool) {
        self.facts.disabled_safeguards.insert(ObjectRef {
            kind: kind.to_owned(),
            name,
            explicit_schema,
        });
    }

    /// A safeguard that belongs to a table (`table.object`, or the table itself).
    pub(super) fn table_safeguard(&mut self, kind: &str, rv: &RangeVar, object: Option<&str>) {
        let table = names::range_var(rv, self.search_path());
        let name = match object {
            Some(o) => format!("{table}.{o}"),
            None => table,
        };
        self.safeguard(kind, name, !rv.schemaname.is_empty());
    }

    /// One `ALTER TABLE` subcommand that switches a safeguard off.
    pub(super) fn alter_table_safeguard(&mut self, rv: &RangeVar, subtype: i32, object: &str) {
        let (kind, object) = match AT::try_from(subtype) {
            Ok(AT::AtDisableTrig | AT::AtEnableReplicaTrig) => (TRIGGER, Some(object)),
            Ok(AT::AtDisableTrigAll | AT::AtDisableTrigUser) => (TRIGGER, Some("*")),
            Ok(AT::AtDisableRule | AT::AtEnableReplicaRule) => (RULE, Some(object)),
            Ok(AT::AtDisableRowSecurity | AT::AtNoForceRowSecurity) => (ROW_SECURITY, None),
            _ => return,
        };
        self.table_safeguard(kind, rv, object);
    }

    /// `DROP TRIGGER/POLICY/RULE … ON table` (`parts` = [schema,] table, name) and `DROP
    /// EVENT TRIGGER name`.
    pub(super) fn dropped_safeguard(&mut self, kind: &str, parts: &[String]) {
        match kind {
            TRIGGER | POLICY | RULE => {
                let Some((object, table)) = parts.split_last() else {
                    return;
                };
                let table = names::qualify_parts(table, self.search_path());
                self.safeguard(kind, format!("{table}.{object}"), parts.len() > 2);
            }
            EVENT_TRIGGER => self.safeguard(kind, parts.join("."), true),
            _ => {}
        }
    }

    /// `ALTER EVENT TRIGGER … DISABLE` or `ENABLE REPLICA` (tgenabled 'D' / 'R', as in
    /// pg_event_trigger.evtenabled).
    pub(super) fn alter_event_trigger(&mut self, s: &AlterEventTrigStmt) {
        if matches!(s.tgenabled.as_str(), "D" | "R") {
            self.safeguard(EVENT_TRIGGER, s.trigname.clone(), true);
        }
    }

    /// A permissive `CREATE POLICY` whose USING or WITH CHECK expression holds for every row
    /// (policies combine with OR, so it opens the table). Called after its expressions are
    /// walked.
    pub(super) fn created_policy(&mut self, s: &CreatePolicyStmt) {
        if !s.permissive {
            return;
        }
        let always = [s.qual.as_deref(), s.with_check.as_deref()]
            .into_iter()
            .flatten()
            .any(|e| self.fold.is_tautology(e));
        if let (true, Some(table)) = (always, &s.table) {
            self.table_safeguard(POLICY, table, Some(&s.policy_name));
        }
    }

    /// `CREATE OR REPLACE FUNCTION … RETURNS trigger / event_trigger`: the new body runs in
    /// place of the old one in every trigger that uses it.
    pub(super) fn replaced_trigger_function(&mut self, s: &CreateFunctionStmt, name: &str) {
        if !s.replace {
            return;
        }
        let returns = s
            .return_type
            .as_ref()
            .and_then(|t| names::strings(&t.names))
            .and_then(|mut parts| parts.pop())
            .map(|t| t.to_lowercase());
        let kind = match returns.as_deref() {
            Some("trigger") => TRIGGER,
            Some("event_trigger") => EVENT_TRIGGER,
            _ => return,
        };
        self.safeguard(kind, name.to_owned(), true);
    }

    /// `SET`/`RESET` clauses of `CREATE FUNCTION` / `ALTER FUNCTION` (`DefElem "set"` holding
    /// a `VariableSetStmt`): settings stored on the routine, in force whenever it runs.
    pub(super) fn routine_settings(&mut self, options: &[Node]) {
        for o in options {
            let Some(N::DefElem(d)) = &o.node else {
                continue;
            };
            if d.defname != "set" {
                continue;
            }
            if let Some(N::VariableSetStmt(set)) = d.arg.as_deref().and_then(|a| a.node.as_ref()) {
                // A statement node of its own in the tree, understood here.
                self.stmts_seen += 1;
                self.stored_setting(set);
            }
        }
    }
}

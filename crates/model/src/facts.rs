//! What one SQL statement *is*, as the `sql` crate understood it from the real grammar.
//!
//! These facts are the only thing policy sees of a statement, so they are conservative: every
//! field is a property of the whole parse tree (DML inside CTEs, statements inside `DO` blocks
//! and function bodies, calls nested in subqueries), and anything the analyser could not
//! understand sets [`StatementFacts::opaque`] instead of being left out. Collections are
//! `BTreeSet`/`BTreeMap` so that facts serialise (and compare) deterministically.
//!
//! This module only describes; it neither parses SQL nor decides anything.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The broad kind of a statement; policy actions are named after these. The default is
/// `Opaque`, so a half-built fact fails closed.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CommandClass {
    /// SELECT, TABLE, VALUES, SHOW-like reads, EXPLAIN without ANALYZE, cursors.
    Read,
    /// INSERT, UPDATE, DELETE, MERGE (also at top level of CTE-bearing SELECTs), LOCK.
    Write,
    /// CREATE / ALTER / DROP / TRUNCATE / COMMENT and other schema changes.
    Ddl,
    /// GRANT / REVOKE, roles and users, default privileges, ownership reassignment.
    Dcl,
    /// COPY in either direction.
    Copy,
    /// BEGIN, COMMIT, ROLLBACK, SAVEPOINT and friends.
    Transaction,
    /// SET / RESET / SHOW / DISCARD and other per-session state.
    Session,
    /// Maintenance and administration: VACUUM, ANALYZE, CHECKPOINT, LOAD, ALTER SYSTEM, …
    Utility,
    /// CALL and DO: code whose effect is only partly visible.
    CallDo,
    /// Not parsed or not understood.
    #[default]
    Opaque,
}

impl CommandClass {
    /// Every class, in declaration order (policy builds one action per class).
    pub const ALL: [CommandClass; 10] = [
        CommandClass::Read,
        CommandClass::Write,
        CommandClass::Ddl,
        CommandClass::Dcl,
        CommandClass::Copy,
        CommandClass::Transaction,
        CommandClass::Session,
        CommandClass::Utility,
        CommandClass::CallDo,
        CommandClass::Opaque,
    ];

    /// The snake_case name, which is also the Cedar action id.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandClass::Read => "read",
            CommandClass::Write => "write",
            CommandClass::Ddl => "ddl",
            CommandClass::Dcl => "dcl",
            CommandClass::Copy => "copy",
            CommandClass::Transaction => "transaction",
            CommandClass::Session => "session",
            CommandClass::Utility => "utility",
            CommandClass::CallDo => "call_do",
            CommandClass::Opaque => "opaque",
        }
    }
}

impl fmt::Display for CommandClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Families of functions and statements that reach outside the database's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DangerFamily {
    /// Server-side files: `pg_read_file`, `pg_ls_dir`, `lo_import`/`lo_export` (server-side
    /// forms), COPY to or from a server file, `file_fdw`.
    ServerFiles,
    /// The large-object API (`lo_open`, `loread`, `lowrite`, `lo_get`, …), in SQL or through
    /// fastpath calls. Large objects live outside tables, with privileges of their own.
    LargeObjects,
    /// Running programs on the server: `COPY … PROGRAM`.
    Programs,
    /// Reaching other databases or servers: `dblink*`, foreign servers, subscriptions.
    CrossDatabase,
    /// Server configuration: `pg_reload_conf`, `ALTER SYSTEM`, `ALTER ROLE/DATABASE … SET`,
    /// `set_config` with a name that is not a constant.
    Settings,
    /// Deliberate waiting: `pg_sleep*`.
    Sleep,
    /// Other sessions and server processes: `pg_terminate_backend`, `pg_cancel_backend`, …
    Admin,
}

impl DangerFamily {
    pub fn as_str(self) -> &'static str {
        match self {
            DangerFamily::ServerFiles => "server_files",
            DangerFamily::LargeObjects => "large_objects",
            DangerFamily::Programs => "programs",
            DangerFamily::CrossDatabase => "cross_database",
            DangerFamily::Settings => "settings",
            DangerFamily::Sleep => "sleep",
            DangerFamily::Admin => "admin",
        }
    }
}

impl fmt::Display for DangerFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A dropped or truncated object. `kind` is PostgreSQL's object kind in lower case ("table",
/// "schema", "database", "index", "view", "function", "role", …; "column" and "constraint"
/// for `ALTER TABLE … DROP`). `name` is resolved against the search path where the kind lives
/// in a schema; `explicit_schema` says whether the statement named the schema itself (an
/// unqualified name may resolve to a session's temporary table instead).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: String,
    pub name: String,
    pub explicit_schema: bool,
}

/// A routine (function or procedure) the statement creates.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoutineDef {
    pub name: String,
    pub language: String,
}

/// Changes to per-session state that the proxy must track or police.
/// What a statement does to a cursor (a portal, on the server).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CursorOp {
    /// DECLARE name … CURSOR [WITH HOLD] FOR query: the query's facts are these facts.
    Declare { name: String, hold: bool },
    /// FETCH (rows of the cursor's query) or MOVE (no rows).
    Fetch { name: String, moves: bool },
    /// CLOSE name, or CLOSE ALL (`None`).
    Close { name: Option<String> },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SessionFacts {
    /// SET ROLE / RESET ROLE / SET SESSION AUTHORIZATION (or `set_config('role', …)`), and
    /// RESET ALL / DISCARD ALL, which reset the role too.
    pub role_switch: bool,
    /// The new search path when the statement sets it to a known value (`Some(vec![])` after
    /// RESET: the caller falls back to the server default).
    pub search_path: Option<Vec<String>>,
    /// The change is `SET LOCAL` (or `set_config(…, true)`): it ends with the transaction.
    pub local: bool,
    /// Names of `gatehouse.*` settings changed (lower case); `"*"` for RESET ALL/DISCARD ALL.
    pub gatehouse_settings: BTreeSet<String>,
    /// Every setting name the statement changes (lower case), including the ones above.
    pub settings: BTreeSet<String>,
    /// Settings (lower case) changed in a way that can weaken the server's own enforcement
    /// or auditing: `session_replication_role` other than `origin` (triggers and foreign keys
    /// stop firing), `row_security`, `default_transaction_read_only` or
    /// `transaction_read_only` turned off (including `SET TRANSACTION`/`BEGIN … READ WRITE`),
    /// any value of `log_*` and `pgaudit.*`, `lo_compat_privileges` or
    /// `allow_system_table_mods` turned on; every change of these stored for a role, a
    /// database, the server or a routine (`ALTER ROLE … SET/RESET`, `CREATE FUNCTION … SET`);
    /// `"*"` for a `set_config` whose name is computed and for a stored `RESET ALL`.
    /// Returning to the configured value (`RESET`, `SET … TO DEFAULT` in a session) is not a
    /// weakening.
    pub weakening_settings: BTreeSet<String>,
}

/// Everything policy needs to know about one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatementFacts {
    /// The statement's text as sent (one statement of a multi-statement string).
    pub text: String,
    pub class: CommandClass,
    /// A command tag in the server's style: "SELECT", "DROP TABLE", "UPDATE", …
    pub command: String,
    /// Relations read, schema-qualified ("public.accounts").
    pub tables_read: BTreeSet<String>,
    /// Relations whose rows or definition the statement changes, schema-qualified.
    pub tables_written: BTreeSet<String>,
    /// Columns referenced per relation, where the reference could be attributed ("*" for a
    /// star expansion).
    pub columns: BTreeMap<String, BTreeSet<String>>,
    /// For UPDATE / DELETE / MERGE (anywhere in the tree): `Some(true)` when every one of
    /// them has a WHERE (ON for MERGE); `None` when there are none.
    pub has_where: Option<bool>,
    /// Some UPDATE / DELETE / MERGE has a condition that is always true (or cannot restrict
    /// rows because it does not depend on them).
    pub where_tautology: bool,
    /// Functions called: schema-qualified when written so, else the bare lower-case name.
    pub functions: BTreeSet<String>,
    pub dangerous: BTreeSet<DangerFamily>,
    /// Objects dropped, including `ALTER TABLE … DROP COLUMN/CONSTRAINT` parts.
    pub drops: BTreeSet<ObjectRef>,
    /// Tables truncated (schema-qualified).
    pub truncated: BTreeSet<String>,
    /// The statement grants, revokes or creates/alters/drops roles.
    pub privileges: bool,
    /// Routines created or replaced (their bodies' facts are merged into these facts).
    pub routines: BTreeSet<RoutineDef>,
    /// Some routine or DO block uses an untrusted language (C, plpython3u, plperlu, …).
    pub untrusted_language: bool,
    /// Name given by PREPARE (its inner statement's facts are merged into these facts).
    pub prepared_name: Option<String>,
    /// Name run by EXECUTE: the caller substitutes the facts it kept for that PREPARE.
    pub executes_prepared: Option<String>,
    /// DECLARE, FETCH, MOVE or CLOSE of a cursor (SQL cursors and protocol portals share one
    /// namespace on the server).
    pub cursor: Option<CursorOp>,
    /// DEALLOCATE: `Some(None)` for DEALLOCATE ALL.
    pub deallocate: Option<Option<String>>,
    pub session: SessionFacts,
    /// Temporary tables created (bare names), so the session may later drop its own.
    pub temp_tables_created: BTreeSet<String>,
    pub load: bool,
    pub alter_system: bool,
    /// Safeguards on tables the statement turns off, removes or routes around. `kind` is
    /// "trigger" (`ALTER TABLE … DISABLE TRIGGER` / `ENABLE REPLICA TRIGGER`, `DROP TRIGGER`,
    /// `CREATE OR REPLACE TRIGGER`, `CREATE OR REPLACE FUNCTION … RETURNS trigger`),
    /// "row level security" (`DISABLE` / `NO FORCE ROW LEVEL SECURITY`), "policy" (`DROP` /
    /// `ALTER POLICY`, a permissive `CREATE POLICY` whose expression is always true), "rule"
    /// (`CREATE RULE`, `DROP RULE`, `DISABLE` / `ENABLE REPLICA RULE`) or "event trigger"
    /// (`DROP EVENT TRIGGER`, `ALTER EVENT TRIGGER … DISABLE` / `ENABLE REPLICA`). `name` is
    /// the table (schema-qualified) followed by the object's name where the statement names
    /// one (`*` for `ALL`/`USER`), or the event trigger's or function's name.
    pub disabled_safeguards: BTreeSet<ObjectRef>,
    /// System relations whose rows the statement changes (INSERT, UPDATE, DELETE, MERGE,
    /// TRUNCATE, COPY FROM anywhere in the tree), schema-qualified: everything in
    /// `pg_catalog`, `information_schema` and `pg_toast`, and, conservatively, every
    /// unqualified `pg_*` name (it is the catalog's unless the search path lists `pg_catalog`
    /// after a schema holding a table of that name).
    pub catalog_writes: BTreeSet<String>,
    /// Some MERGE has an UPDATE or DELETE action that reaches every target row: `WHEN NOT
    /// MATCHED BY SOURCE` without a restricting condition, or an ON condition that cannot
    /// restrict the target's rows (always true, or about the source only) together with a
    /// `WHEN MATCHED` condition that cannot either. Such a MERGE also counts in `has_where` /
    /// `where_tautology`.
    pub unfiltered_merge: bool,
    /// Why the statement (or part of it) could not be understood; `Some` must be refused.
    pub opaque: Option<String>,
}

impl StatementFacts {
    /// Facts for text that could not be analysed at all.
    pub fn opaque(text: &str, reason: impl Into<String>) -> Self {
        StatementFacts {
            text: text.to_owned(),
            class: CommandClass::Opaque,
            command: "UNKNOWN".to_owned(),
            opaque: Some(reason.into()),
            ..StatementFacts::default()
        }
    }

    /// Whether the statement drops something and every dropped object is a temporary table
    /// or view this session created (`session_temps` holds bare names, as in
    /// [`StatementFacts::temp_tables_created`]). An unqualified name counts only if it is one
    /// of them (PostgreSQL searches `pg_temp` first); a qualified one only under `pg_temp`.
    pub fn drops_only_session_temp(&self, session_temps: &BTreeSet<String>) -> bool {
        if self.drops.is_empty() || !self.truncated.is_empty() {
            return false;
        }
        self.drops.iter().all(|d| {
            let bare = d.name.rsplit('.').next().unwrap_or(&d.name);
            let temp_schema = !d.explicit_schema || d.name.starts_with("pg_temp");
            (d.kind == "table" || d.kind == "view") && temp_schema && session_temps.contains(bare)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drop(name: &str, explicit: bool) -> ObjectRef {
        ObjectRef {
            kind: "table".into(),
            name: name.into(),
            explicit_schema: explicit,
        }
    }

    #[test]
    fn temp_drops_need_every_object_to_be_ours() {
        let temps: BTreeSet<String> = ["scratch".to_owned()].into();
        let mut f = StatementFacts::default();
        assert!(!f.drops_only_session_temp(&temps), "nothing dropped");
        f.drops.insert(drop("public.scratch", false));
        assert!(f.drops_only_session_temp(&temps));
        f.drops.insert(drop("pg_temp.scratch", true));
        assert!(f.drops_only_session_temp(&temps));
        f.drops.insert(drop("public.scratch", true));
        assert!(!f.drops_only_session_temp(&temps), "explicit public");
    }

    #[test]
    fn facts_serialise_deterministically() {
        let mut f = StatementFacts::opaque("x", "why");
        f.dangerous.insert(DangerFamily::Sleep);
        f.dangerous.insert(DangerFamily::Admin);
        let a = serde_json::to_string(&f).unwrap_or_default();
        assert!(a.contains(r#""dangerous":["sleep","admin"]"#), "{a}");
        assert!(a.contains(r#""class":"opaque""#));
    }
}

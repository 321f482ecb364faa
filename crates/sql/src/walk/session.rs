//! Session state: SET / RESET / DISCARD and `set_config(…)`, reported so the caller can track
//! the search path and policy can refuse role switches and changes to `gatehouse.*`.
//!
//! Setting names are compared in lower case, as PostgreSQL's GUC lookup does, so
//! `SET "GateHouse".identity` is still a `gatehouse.*` setting. Whether a change weakens the
//! server's own enforcement is [`super::weaken`]'s call; this module says how it is changed.

use super::weaken::{weakens, Change};
use super::Walker;
use crate::sweep::CallSite;
use model::facts::{CommandClass as C, DangerFamily};
use pg_query::protobuf::{a_const, DiscardMode, Node, VariableSetKind as K, VariableSetStmt};
use pg_query::NodeEnum as N;

impl Walker<'_> {
    pub(super) fn variable_set(&mut self, s: &VariableSetStmt) -> (C, String) {
        // Values are literals: facts of SET depend on them.
        self.literal_sensitive = true;
        self.facts.session.local = s.is_local;
        let kind = K::try_from(s.kind).unwrap_or(K::Undefined);
        match kind {
            K::VarSetMulti => {
                // SET SESSION CHARACTERISTICS AS TRANSACTION … sets the session's defaults.
                let prefix = if s.name.eq_ignore_ascii_case("session characteristics") {
                    "default_"
                } else {
                    ""
                };
                self.transaction_modes(&s.args, prefix);
                return (C::Transaction, "SET TRANSACTION".into());
            }
            K::VarResetAll => {
                self.reset_everything();
                return (C::Session, "RESET".into());
            }
            K::Undefined => {
                self.opaque("SET of an unknown kind");
                return (C::Session, "SET".into());
            }
            _ => {}
        }
        let name = s.name.to_lowercase();
        self.setting_changed(&name);
        // A list value (`SET log_destination = a, b`) is not one constant: unknown.
        let value = match s.args.as_slice() {
            [one] => const_text(one),
            _ => None,
        };
        let change = match kind {
            // FROM CURRENT keeps the value the session already has.
            K::VarSetDefault | K::VarReset | K::VarSetCurrent => Change::Default,
            _ => Change::Session(value.as_deref()),
        };
        self.weakening(&name, change);
        if name == "search_path" {
            match kind {
                K::VarSetValue => {
                    let path: Option<Vec<String>> = s.args.iter().map(const_text).collect();
                    match path {
                        Some(p) => self.facts.session.search_path = Some(p),
                        None => self.opaque("search_path set to a value not understood"),
                    }
                }
                K::VarSetDefault | K::VarReset => {
                    self.facts.session.search_path = Some(Vec::new());
                }
                _ => {}
            }
        }
        let tag = if kind == K::VarReset { "RESET" } else { "SET" };
        (C::Session, tag.into())
    }

    pub(super) fn discard(&mut self, s: &pg_query::protobuf::DiscardStmt) -> (C, String) {
        let tag = match DiscardMode::try_from(s.target) {
            Ok(DiscardMode::DiscardAll) => {
                self.reset_everything();
                "DISCARD ALL"
            }
            Ok(DiscardMode::DiscardPlans) => "DISCARD PLANS",
            Ok(DiscardMode::DiscardSequences) => "DISCARD SEQUENCES",
            Ok(DiscardMode::DiscardTemp) => "DISCARD TEMP",
            _ => "DISCARD",
        };
        (C::Session, tag.into())
    }

    /// RESET ALL and DISCARD ALL reset the role and every custom setting, gatehouse.* included.
    fn reset_everything(&mut self) {
        let s = &mut self.facts.session;
        s.role_switch = true;
        s.gatehouse_settings.insert("*".into());
        s.settings.insert("*".into());
        s.search_path = Some(Vec::new());
    }

    /// Record a changed setting and what it implies.
    pub(super) fn setting_changed(&mut self, name: &str) {
        let name = name.to_lowercase();
        let s = &mut self.facts.session;
        if name == "role" || name == "session_authorization" {
            s.role_switch = true;
        }
        if name.starts_with("gatehouse.") {
            s.gatehouse_settings.insert(name.clone());
        }
        s.settings.insert(name);
    }

    /// Record a weakening change of `name` (lower case), if it is one.
    pub(super) fn weakening(&mut self, name: &str, change: Change<'_>) {
        if weakens(name, change) {
            self.facts
                .session
                .weakening_settings
                .insert(name.to_owned());
        }
    }

    /// A setting stored for a role, a database, the server (`ALTER … SET/RESET`) or a routine
    /// (`CREATE FUNCTION … SET`, `ALTER FUNCTION … SET/RESET`): it applies to later sessions
    /// or calls, not to this session now.
    pub(super) fn stored_setting(&mut self, set: &VariableSetStmt) {
        let name = set.name.to_lowercase();
        self.setting_changed(&name);
        if K::try_from(set.kind) == Ok(K::VarResetAll) {
            // Removes every stored value, stricter ones included.
            self.facts.session.weakening_settings.insert("*".into());
        } else {
            self.weakening(&name, Change::Stored);
        }
    }

    /// The modes of `BEGIN` / `START TRANSACTION` / `SET [SESSION CHARACTERISTICS AS]
    /// TRANSACTION`: `READ WRITE` turns `transaction_read_only` (or, for the session's
    /// characteristics, `default_transaction_read_only`) off.
    pub(super) fn transaction_modes(&mut self, options: &[Node], prefix: &str) {
        for o in options {
            let Some(N::DefElem(d)) = &o.node else {
                continue;
            };
            let name = format!("{prefix}{}", d.defname.to_lowercase());
            let value = d.arg.as_deref().and_then(const_text);
            self.setting_changed(&name);
            self.weakening(&name, Change::Session(value.as_deref()));
        }
    }

    /// `set_config(name, value, is_local)`: a constant name is a setting change like SET; a
    /// computed one could be anything, so it counts as every dangerous kind of change.
    pub(super) fn set_config(&mut self, call: &CallSite) {
        match call.const_args.first().cloned().flatten() {
            Some(name) => {
                let name = name.to_lowercase();
                self.setting_changed(&name);
                let value = call.const_args.get(1).cloned().flatten();
                self.weakening(&name, Change::Session(value.as_deref()));
                if name == "search_path" {
                    match call.const_args.get(1).cloned().flatten() {
                        Some(v) => self.facts.session.search_path = Some(split_path(&v)),
                        None => self.opaque("search_path set to a computed value"),
                    }
                }
            }
            None => self.any_setting(),
        }
    }

    /// A change of a setting the analysis cannot name: it could be any of them, so it counts
    /// as every dangerous kind of change.
    pub(super) fn any_setting(&mut self) {
        self.danger(DangerFamily::Settings);
        let s = &mut self.facts.session;
        s.role_switch = true;
        s.gatehouse_settings.insert("*".into());
        s.settings.insert("*".into());
        s.weakening_settings.insert("*".into());
    }
}

/// A SET argument: a string or identifier constant, or a number.
fn const_text(n: &Node) -> Option<String> {
    match n.node.as_ref()? {
        N::AConst(c) => match c.val.as_ref()? {
            a_const::Val::Sval(s) => Some(s.sval.clone()),
            a_const::Val::Ival(i) => Some(i.ival.to_string()),
            a_const::Val::Fval(f) => Some(f.fval.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// `'"$user", public'` → `["$user", "public"]`, the way the server splits the value.
fn split_path(v: &str) -> Vec<String> {
    v.split(',')
        .map(|p| {
            let p = p.trim();
            match p.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\"\"", "\""),
                None => p.to_lowercase(),
            }
        })
        .filter(|p| !p.is_empty())
        .collect()
}

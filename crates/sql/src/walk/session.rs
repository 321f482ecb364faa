//! Session state: SET / RESET / DISCARD and `set_config(…)`, reported so the caller can track
//! the search path and policy can refuse role switches and changes to `gatehouse.*`.
//!
//! Setting names are compared in lower case, as PostgreSQL's GUC lookup does, so
//! `SET "GateHouse".identity` is still a `gatehouse.*` setting.

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
            K::VarSetMulti => return (C::Transaction, "SET TRANSACTION".into()),
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

    /// `set_config(name, value, is_local)`: a constant name is a setting change like SET; a
    /// computed one could be anything, so it counts as every dangerous kind of change.
    pub(super) fn set_config(&mut self, call: &CallSite) {
        match call.const_args.first().cloned().flatten() {
            Some(name) => {
                let name = name.to_lowercase();
                self.setting_changed(&name);
                if name == "search_path" {
                    match call.const_args.get(1).cloned().flatten() {
                        Some(v) => self.facts.session.search_path = Some(split_path(&v)),
                        None => self.opaque("search_path set to a computed value"),
                    }
                }
            }
            None => {
                self.danger(DangerFamily::Settings);
                let s = &mut self.facts.session;
                s.role_switch = true;
                s.gatehouse_settings.insert("*".into());
                s.settings.insert("*".into());
            }
        }
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

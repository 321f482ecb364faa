//! Which setting changes weaken the server's own enforcement or auditing.
//!
//! Some settings are safeguards the server applies by itself, whatever the SQL: ordinary
//! triggers and foreign-key checks fire only while `session_replication_role` is `origin`;
//! `row_security`; read-only transactions (`default_transaction_read_only` on the upstream
//! role is how an operator makes a target read-only); the logs and audit trail the server
//! writes (`log_*`, `pgaudit.*`); and the superuser switches that turn checks off
//! (`lo_compat_privileges`, `allow_system_table_mods`). A session that turns them off escapes
//! what the operator configured, so a change counts as weakening unless its value is known to
//! keep the safeguard.
//!
//! Two changes never weaken: returning to the configured value (`RESET`, `SET … TO DEFAULT`)
//! and any setting not listed here (`statement_timeout = 0` included). Changes stored for a
//! role, a database, the server or a routine always count: there a RESET removes a stricter
//! value someone configured, and the value applies to sessions other than this one.
//!
//! Values are read the way the server's GUC code reads them: enum values without regard to
//! case, booleans with `parse_bool` rules (unique prefixes of true/false/yes/no, on/off, 1/0).

/// How a setting is changed.
#[derive(Debug, Clone, Copy)]
pub(super) enum Change<'a> {
    /// SET or `set_config` in this session; `None` when the value is not a constant.
    Session(Option<&'a str>),
    /// RESET or `SET … TO DEFAULT` in this session: back to the configured value.
    Default,
    /// A value stored for a role, a database, the server or a routine (set or reset).
    Stored,
}

/// What keeps a watched setting's safeguard on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Safe {
    /// Only this enum value (`session_replication_role = origin`).
    Only(&'static str),
    /// A boolean that is on.
    On,
    /// A boolean that is off.
    Off,
    /// No value: any change of a logging or auditing setting counts.
    Nothing,
    /// Any value that does not contain this text (case-insensitive).
    Without(&'static str),
}

fn watched(name: &str) -> Option<Safe> {
    match name {
        "session_replication_role" => Some(Safe::Only("origin")),
        "row_security" | "default_transaction_read_only" | "transaction_read_only" => {
            Some(Safe::On)
        }
        // Superuser-only switches that turn checks off: large-object privileges, and the
        // protection of the system catalogs' structure.
        "lo_compat_privileges" | "allow_system_table_mods" => Some(Safe::Off),
        n if n.starts_with("log_") || n.starts_with("pgaudit.") => Some(Safe::Nothing),
        // The server's views and logs name the identity behind a session by the
        // `gatehouse:<identity>` prefix Gatehouse gives application_name: a session may set
        // its own name, not one that claims an identity.
        "application_name" => Some(Safe::Without("gatehouse:")),
        _ => None,
    }
}

/// Whether changing `name` (lower case) this way can weaken enforcement or auditing.
pub(super) fn weakens(name: &str, change: Change<'_>) -> bool {
    let Some(safe) = watched(name) else {
        return false;
    };
    match change {
        Change::Default => false,
        Change::Stored => true,
        Change::Session(value) => match (safe, value) {
            (Safe::Only(keep), Some(v)) => !v.trim().eq_ignore_ascii_case(keep),
            (Safe::On, Some(v)) => parse_bool(v) != Some(true),
            (Safe::Off, Some(v)) => parse_bool(v) != Some(false),
            (Safe::Without(text), Some(v)) => v.to_ascii_lowercase().contains(text),
            (Safe::Only(_) | Safe::On | Safe::Off | Safe::Nothing | Safe::Without(_), _) => true,
        },
    }
}

/// PostgreSQL's `parse_bool` (src/backend/utils/adt/bool.c): case-insensitive, surrounding
/// whitespace ignored, unique prefixes of `true`/`false`/`yes`/`no`, `on`/`off` (at least two
/// letters), `1`/`0`.
fn parse_bool(v: &str) -> Option<bool> {
    let v = v.trim().to_ascii_lowercase();
    let prefix_of = |word: &str| !v.is_empty() && word.starts_with(v.as_str());
    let off = prefix_of("false") || prefix_of("no") || (v.len() >= 2 && prefix_of("off"));
    if prefix_of("true") || prefix_of("yes") || v == "on" || v == "1" {
        Some(true)
    } else if off || v == "0" {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn application_names_that_claim_an_identity() {
        let s = |v| Change::Session(Some(v));
        assert!(!weakens("application_name", s("psql")));
        assert!(!weakens("application_name", Change::Default));
        assert!(weakens("application_name", s("gatehouse:bob/psql")));
        assert!(weakens("application_name", s(" GateHouse:bob")));
        assert!(weakens("application_name", Change::Session(None)));
    }

    #[test]
    fn values_that_keep_the_safeguard() {
        let s = |v| Change::Session(Some(v));
        assert!(!weakens("session_replication_role", s("origin")));
        assert!(!weakens("session_replication_role", s(" ORIGIN ")));
        assert!(weakens("session_replication_role", s("replica")));
        assert!(weakens("session_replication_role", s("local")));
        assert!(weakens("session_replication_role", Change::Session(None)));
        assert!(!weakens("session_replication_role", Change::Default));
        assert!(weakens("session_replication_role", Change::Stored));
        for on in ["on", "ON", "true", "t", "tr", "yes", "y", "1"] {
            assert!(!weakens("row_security", s(on)), "{on}");
        }
        for off in ["off", "of", "false", "f", "no", "n", "0", "o", "maybe", ""] {
            assert!(weakens("row_security", s(off)), "{off}");
        }
        assert!(weakens("default_transaction_read_only", s("off")));
        assert!(!weakens("transaction_read_only", s("1")));
        assert!(weakens("log_statement", s("all")));
        assert!(weakens("log_min_duration_statement", s("-1")));
        assert!(weakens("pgaudit.log", s("none")));
        assert!(!weakens("log_statement", Change::Default));
        assert!(!weakens("statement_timeout", s("0")));
        assert!(!weakens("statement_timeout", Change::Stored));
        assert!(!weakens("logical_decoding_work_mem", s("1MB")));
        assert!(!weakens("search_path", s("public")));
        assert!(weakens("allow_system_table_mods", s("on")));
        assert!(!weakens("lo_compat_privileges", s("off")));
    }
}

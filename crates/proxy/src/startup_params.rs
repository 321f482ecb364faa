//! Which startup parameters a client may pass through, and the ones Gatehouse adds so the
//! upstream session carries the identity.
//!
//! Startup parameters are run-time settings applied before any SQL, so they bypass
//! statement analysis: only an allow-list of harmless client settings passes; `gatehouse.*`,
//! `role`, `session_authorization` and replication are refused, and `options` is checked
//! for the same settings.

use crate::config::TargetConfig;
use crate::error::SessionError;
use crate::events::EventCtx;
use model::Identity;

/// Client settings that only shape how values are presented or bound the session's own
/// resources.
const ALLOWED: &[&str] = &[
    "client_encoding",
    "datestyle",
    "timezone",
    "intervalstyle",
    "extra_float_digits",
    "search_path",
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "default_transaction_isolation",
    "default_transaction_read_only",
    "bytea_output",
    "geqo",
    "lc_messages",
    "lc_monetary",
    "lc_numeric",
    "lc_time",
    "standard_conforming_strings",
    "application_name",
    "options",
];

/// Settings a client must never set, in any spelling (GUC names are case-insensitive).
fn forbidden_setting(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("gatehouse.") || n == "role" || n == "session_authorization"
}

/// Filters the client's startup parameters; `user` and `database` are replaced later.
pub fn upstream_params(params: &[(String, String)]) -> Result<Vec<(String, String)>, SessionError> {
    let mut out = Vec::new();
    for (k, v) in params {
        let lower = k.to_ascii_lowercase();
        match lower.as_str() {
            "user" | "database" => continue,
            "replication" => {
                if !matches!(v.as_str(), "false" | "off" | "no" | "0") {
                    return Err(SessionError::ForbiddenParam(k.clone()));
                }
                continue;
            }
            "options" => check_options(v)?,
            _ if crate::lexing::unsafe_setting(&lower, v) => {
                return Err(SessionError::UnsafeSetting(format!("{k} = {v}")));
            }
            _ if forbidden_setting(&lower) || !ALLOWED.contains(&lower.as_str()) => {
                return Err(SessionError::ForbiddenParam(k.clone()));
            }
            _ => {}
        }
        out.push((k.clone(), v.clone()));
    }
    Ok(out)
}

/// `options` is a command line (`-c name=value`, `-cname=value`, `--name=value`): every
/// setting in it must be one a client may pass directly, with a safe value; anything else
/// (another switch, a setting off the allow-list) is refused.
fn check_options(options: &str) -> Result<(), SessionError> {
    let refuse = || SessionError::ForbiddenParam("options".into());
    let mut tokens = options.split_ascii_whitespace();
    while let Some(t) = tokens.next() {
        let setting = if t == "-c" {
            tokens.next().ok_or_else(refuse)?
        } else if let Some(rest) = t.strip_prefix("--").or_else(|| t.strip_prefix("-c")) {
            rest
        } else {
            return Err(refuse());
        };
        // Escaped spaces (`\ `) would hide a second setting inside a value: refused.
        if setting.contains('\\') {
            return Err(refuse());
        }
        let (name, value) = setting.split_once('=').ok_or_else(refuse)?;
        let name = name.to_ascii_lowercase().replace('-', "_");
        if name == "options"
            || forbidden_setting(&name)
            || !ALLOWED.contains(&name.as_str())
            || crate::lexing::unsafe_setting(&name, value)
        {
            return Err(refuse());
        }
    }
    Ok(())
}

/// Adds the upstream login (user, database) and the identity settings.
pub fn with_identity(
    mut params: Vec<(String, String)>,
    identity: &Identity,
    ctx: &EventCtx,
    target: &TargetConfig,
) -> Vec<(String, String)> {
    let client_app = params
        .iter()
        .position(|(k, _)| k.eq_ignore_ascii_case("application_name"))
        .map(|i| params.remove(i).1);
    let mut app = AppName::new(identity).prefix;
    if let Some(c) = client_app.filter(|c| !c.is_empty()) {
        app.push('/');
        app.push_str(&c);
    }
    // The server keeps the whole value (pg_stat_activity shows its first 63 bytes): the
    // identity at the front is always visible.
    // Identity names and session ids are restricted to characters that need no escaping
    // in `options` (see the identity crate).
    let mut options = format!(
        "-c gatehouse.identity={} -c gatehouse.identity_kind={} -c gatehouse.session={}",
        identity.name, identity.kind, ctx.session
    );
    if let Some(i) = params
        .iter()
        .position(|(k, _)| k.eq_ignore_ascii_case("options"))
    {
        let client = params.remove(i).1;
        options.push(' ');
        options.push_str(&client);
    }
    params.push(("user".into(), target.user.clone()));
    params.push(("database".into(), target.database.clone()));
    params.push(("application_name".into(), app));
    params.push(("options".into(), options));
    params
}

/// `application_name` upstream is `gatehouse:<identity>/<what the client set>`, so the
/// server's own views show who is behind a session; the client is told what it set.
#[derive(Clone, Debug, Default)]
pub struct AppName {
    prefix: String,
}

impl AppName {
    pub fn new(identity: &Identity) -> AppName {
        AppName {
            prefix: format!("gatehouse:{}", identity.name),
        }
    }

    /// The value to report to the client for a value the server reported: Gatehouse's
    /// prefix removed. A value the client set later with SET is reported as it is.
    pub fn for_client<'a>(&self, reported: &'a str) -> &'a str {
        match reported.strip_prefix(self.prefix.as_str()) {
            Some("") => "",
            Some(rest) => rest.strip_prefix('/').unwrap_or(reported),
            None => reported,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(k: &str, v: &str) -> (String, String) {
        (k.into(), v.into())
    }

    #[test]
    fn refuses_dangerous_settings() {
        for bad in [
            p("gatehouse.identity", "bob"),
            p("GateHouse.identity", "bob"),
            p("role", "postgres"),
            p("session_authorization", "postgres"),
            p("options", "-c gatehouse.identity=bob"),
            p("options", "--GATEHOUSE.identity=bob"),
            p("options", "-c role=postgres"),
            p("replication", "database"),
            p("shared_preload_libraries", "x"),
            p("client_encoding", "SJIS"),
            p("client_encoding", "win932"),
            p("standard_conforming_strings", "off"),
            p("options", "-c session_replication_role=replica"),
            p("options", "-crow_security=off"),
            p("options", "--log-statement=none"),
            p("options", "-c client_encoding=BIG5"),
            p("options", "-c standard_conforming_strings=off"),
            p("options", "-c statement_timeout=5\\ -c\\ role=x"),
            p("options", "-B 100"),
        ] {
            assert!(
                upstream_params(std::slice::from_ref(&bad)).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn application_name_as_the_client_set_it() {
        let id = Identity {
            name: "alice".into(),
            kind: model::IdentityKind::Human,
            groups: Vec::new(),
        };
        let app = AppName::new(&id);
        assert_eq!(app.for_client("gatehouse:alice/psql"), "psql");
        assert_eq!(app.for_client("gatehouse:alice"), "");
        assert_eq!(app.for_client("gatehouse:alice/"), "");
        assert_eq!(app.for_client("set later"), "set later");
        assert_eq!(app.for_client("gatehouse:alicexyz"), "gatehouse:alicexyz");
    }

    #[test]
    fn passes_harmless_settings() {
        let got = upstream_params(&[
            p("user", "alice"),
            p("database", "app"),
            p("client_encoding", "UTF8"),
            p("DateStyle", "ISO"),
            p("replication", "false"),
            p("options", "-c statement_timeout=5000 --lock-timeout=100"),
        ])
        .unwrap();
        assert_eq!(
            got,
            vec![
                p("client_encoding", "UTF8"),
                p("DateStyle", "ISO"),
                p("options", "-c statement_timeout=5000 --lock-timeout=100")
            ]
        );
    }
}

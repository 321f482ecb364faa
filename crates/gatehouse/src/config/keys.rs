//! Key-path checking over the raw TOML table, so that every unknown or mistyped key is
//! reported in one run (serde alone stops at the first).

use toml::{Table, Value};

const TOP: &[&str] = &[
    "data_dir",
    "listen",
    "tls",
    "audit",
    "limits",
    "targets",
    "policy",
    "sensitive",
    "masking",
    "approvals",
    "identity_providers",
];
const IDENTITY_PROVIDER: &[&str] = &[
    "name",
    "issuer",
    "audience",
    "client_id",
    "client_secret_env",
    "scopes",
    "identity_claim",
    "groups_claim",
    "kind",
    "allowed_groups",
    "group_map",
    "algorithms",
    "clock_skew_secs",
    "max_token_age_secs",
    "max_credential_ttl",
    "recheck_secs",
];
const IDENTITY_PROVIDER_REQUIRED: &[&str] = &["name", "issuer"];
const APPROVALS: &[&str] = &[
    "timeout_secs",
    "agent_timeout_secs",
    "in_transaction_timeout_secs",
    "request_ttl_secs",
    "grant_window_secs",
    "break_glass_group",
    "console_url",
    "webhooks",
];
const WEBHOOK: &[&str] = &[
    "name",
    "url",
    "groups",
    "format",
    "secret_env",
    "max_attempts",
];
const WEBHOOK_REQUIRED: &[&str] = &["name", "url", "secret_env"];
const MASKING: &[&str] = &["detect_all_text"];
const SENSITIVE: &[&str] = &["target", "columns", "tags", "mask", "predicates"];
const POLICY: &[&str] = &["paths", "mode", "builtin"];
const LISTEN: &[&str] = &["postgres", "admin"];
const TLS: &[&str] = &["cert", "key", "client_auth"];
const AUDIT: &[&str] = &[
    "on_failure",
    "queue_capacity",
    "max_batch",
    "param_max_bytes",
];
const LIMITS: &[&str] = &["max_message_bytes", "session_threads"];
const TARGET: &[&str] = &["name", "engine", "upstream", "password_env", "environment"];
const TARGET_REQUIRED: &[&str] = &["name", "upstream"];

pub fn check(table: &Table) -> Vec<String> {
    let mut errors = Vec::new();
    unknown(table, "", TOP, &mut errors);
    for (key, allowed) in [
        ("listen", LISTEN),
        ("tls", TLS),
        ("audit", AUDIT),
        ("limits", LIMITS),
        ("policy", POLICY),
        ("masking", MASKING),
        ("approvals", APPROVALS),
    ] {
        match table.get(key) {
            Some(Value::Table(t)) => unknown(t, key, allowed, &mut errors),
            Some(_) => errors.push(format!("{key}: must be a table")),
            None => {}
        }
    }
    if let Some(Value::Array(items)) = table.get("sensitive") {
        for (i, item) in items.iter().enumerate() {
            let path = format!("sensitive[{i}]");
            match item {
                Value::Table(t) => unknown(t, &path, SENSITIVE, &mut errors),
                _ => errors.push(format!("{path}: must be a table")),
            }
        }
    }
    entries(
        table.get("targets"),
        "targets",
        TARGET,
        TARGET_REQUIRED,
        &mut errors,
    );
    entries(
        table.get("identity_providers"),
        "identity_providers",
        IDENTITY_PROVIDER,
        IDENTITY_PROVIDER_REQUIRED,
        &mut errors,
    );
    if let Some(Value::Table(approvals)) = table.get("approvals") {
        entries(
            approvals.get("webhooks"),
            "approvals.webhooks",
            WEBHOOK,
            WEBHOOK_REQUIRED,
            &mut errors,
        );
    }
    errors
}

/// An array of tables (`[[path]]`): unknown and missing keys of each entry.
fn entries(
    value: Option<&Value>,
    path: &str,
    allowed: &[&str],
    required: &[&str],
    errors: &mut Vec<String>,
) {
    match value {
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let at = format!("{path}[{i}]");
                match item {
                    Value::Table(t) => {
                        unknown(t, &at, allowed, errors);
                        for req in required {
                            if !t.contains_key(*req) {
                                errors.push(format!("{at}.{req}: missing"));
                            }
                        }
                    }
                    _ => errors.push(format!("{at}: must be a table")),
                }
            }
        }
        Some(_) => errors.push(format!("{path}: must be an array of tables ([[{path}]])")),
        None => {}
    }
}

fn unknown(t: &Table, path: &str, allowed: &[&str], errors: &mut Vec<String>) {
    for k in t.keys() {
        if !allowed.contains(&k.as_str()) {
            let full = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            errors.push(format!(
                "{full}: unknown key (expected one of: {})",
                allowed.join(", ")
            ));
        }
    }
}

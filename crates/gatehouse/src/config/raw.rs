//! The configuration file as written. `deny_unknown_fields` backs up the key check in
//! `keys`, which reports every unknown key at once.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub data_dir: Option<String>,
    #[serde(default)]
    pub listen: RawListen,
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub audit: RawAudit,
    #[serde(default)]
    pub limits: RawLimits,
    #[serde(default)]
    pub targets: Vec<RawTarget>,
    #[serde(default)]
    pub policy: RawPolicy,
    #[serde(default)]
    pub sensitive: Vec<RawSensitive>,
    #[serde(default)]
    pub masking: RawMasking,
    #[serde(default)]
    pub approvals: RawApprovals,
    #[serde(default)]
    pub identity_providers: Vec<RawIdentityProvider>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentityProvider {
    pub name: String,
    pub issuer: String,
    pub audience: Option<Vec<String>>,
    pub client_id: Option<String>,
    pub client_secret_env: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub identity_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub kind: Option<String>,
    pub allowed_groups: Option<Vec<String>>,
    #[serde(default)]
    pub group_map: std::collections::BTreeMap<String, String>,
    pub algorithms: Option<Vec<String>>,
    pub clock_skew_secs: Option<i64>,
    pub max_token_age_secs: Option<i64>,
    pub max_credential_ttl: Option<String>,
    pub recheck_secs: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApprovals {
    pub timeout_secs: Option<i64>,
    pub agent_timeout_secs: Option<i64>,
    pub in_transaction_timeout_secs: Option<i64>,
    pub request_ttl_secs: Option<i64>,
    pub grant_window_secs: Option<i64>,
    pub break_glass_group: Option<String>,
    pub console_url: Option<String>,
    #[serde(default)]
    pub webhooks: Vec<RawWebhook>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub groups: Vec<String>,
    pub format: Option<String>,
    pub secret_env: String,
    pub max_attempts: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMasking {
    pub detect_all_text: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSensitive {
    pub target: String,
    pub columns: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub mask: Option<String>,
    pub predicates: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicy {
    pub paths: Option<Vec<String>>,
    pub mode: Option<String>,
    pub builtin: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawListen {
    pub postgres: Option<String>,
    pub admin: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_auth: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    pub on_failure: Option<String>,
    pub queue_capacity: Option<i64>,
    pub max_batch: Option<i64>,
    pub param_max_bytes: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_message_bytes: Option<i64>,
    pub session_threads: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub name: String,
    pub engine: Option<String>,
    pub upstream: String,
    pub password_env: Option<String>,
    pub environment: Option<String>,
}

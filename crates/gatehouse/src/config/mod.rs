//! Configuration: the TOML file as written (`raw`), checked key by key so every mistake is
//! reported at once with its key path (`keys`), then turned into validated types that the
//! rest of the program uses (`Config`). Parse, don't validate: nothing downstream re-checks.

mod hooks;
mod idp;
mod keys;
mod raw;
mod sensitive;
mod tls;
mod upstream;

use anyhow::Context;
use proxy::{AuditFailureMode, ProxyConfig, TargetConfig};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A validated configuration.
#[derive(Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen_postgres: SocketAddr,
    pub listen_admin: Option<SocketAddr>,
    pub proxy: ProxyConfig,
    pub audit_queue: usize,
    pub audit_batch: usize,
    /// Threads that run client sessions (`limits.session_threads`; default half the CPUs).
    pub session_threads: usize,
    pub policy: PolicyConfig,
    /// `[[approvals.webhooks]]`: who is told of new approval requests (used by `serve`
    /// only, so kept out of the proxy's config).
    pub webhooks: Vec<webhooks::Webhook>,
}

/// Where policies come from and how they are enforced.
#[derive(Debug, Clone)]
pub struct PolicyConfig {
    /// `.cedar` files, resolved against the config file's directory.
    pub paths: Vec<PathBuf>,
    pub builtin: bool,
    pub mode: policy::Mode,
}

impl PolicyConfig {
    /// Reads the policy files and validates them with the built-in pack. Every error is
    /// reported with file:line.
    pub fn load(&self) -> Result<policy::Policies, Vec<String>> {
        let mut sources = Vec::new();
        let mut errors = Vec::new();
        for p in &self.paths {
            match std::fs::read_to_string(p) {
                Ok(text) => sources.push((p.display().to_string(), text)),
                Err(e) => errors.push(format!("{}: {e}", p.display())),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        policy::Policies::load(self.builtin, &sources)
            .map_err(|errs| errs.iter().map(|e| e.to_string()).collect())
    }
}

impl Config {
    /// Reads and validates `path` for serving. The error lists every problem found, one per
    /// line.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        Config::load_with(path, Secrets::Required)
    }

    /// For commands that only use the embedded store (tokens, audit): upstream passwords
    /// need not be in the environment.
    pub fn load_for_admin(path: &Path) -> anyhow::Result<Config> {
        Config::load_with(path, Secrets::Optional)
    }

    fn load_with(path: &Path, secrets: Secrets) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base, secrets).map_err(|errors| {
            anyhow::anyhow!(
                "invalid config {}:\n  {}",
                path.display(),
                errors.join("\n  ")
            )
        })
    }

    /// Validates config text; relative paths are resolved against `base`.
    pub fn parse(text: &str, base: &Path, secrets: Secrets) -> Result<Config, Vec<String>> {
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| vec![e.to_string()])?;
        let mut errors = keys::check(&table);
        if !errors.is_empty() {
            return Err(errors);
        }
        let raw: raw::RawConfig = table
            .try_into()
            .map_err(|e: toml::de::Error| vec![e.to_string()])?;
        let config = build(raw, base, secrets, &mut errors);
        match config {
            Some(c) if errors.is_empty() => Ok(c),
            _ => Err(errors),
        }
    }
}

/// Whether a missing upstream password variable is an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    Required,
    Optional,
}

fn build(
    raw: raw::RawConfig,
    base: &Path,
    secrets: Secrets,
    errors: &mut Vec<String>,
) -> Option<Config> {
    let data_dir = base.join(raw.data_dir.as_deref().unwrap_or("gatehouse-data"));
    let listen_postgres = parse_addr(
        "listen.postgres",
        raw.listen.postgres.as_deref().unwrap_or("127.0.0.1:6432"),
        errors,
    );
    let listen_admin = raw
        .listen
        .admin
        .as_deref()
        .and_then(|a| parse_addr("listen.admin", a, errors));
    let targets = build_targets(&raw.targets, secrets, errors);
    let targets = sensitive::attach(targets, &raw.sensitive, errors);
    let tls = raw
        .tls
        .as_ref()
        .and_then(|t| tls::server_config(t, base, errors));
    let cleartext_over_tls = match raw.tls.as_ref().and_then(|t| t.client_auth.as_deref()) {
        None | Some("scram") => false,
        Some("password") => true,
        Some(other) => {
            errors.push(format!(
                "tls.client_auth: {other:?} is not one of \"scram\", \"password\""
            ));
            false
        }
    };
    let on_audit_failure = match raw.audit.on_failure.as_deref() {
        None | Some("block") => AuditFailureMode::Block,
        Some("allow") => AuditFailureMode::Allow,
        Some(other) => {
            errors.push(format!(
                "audit.on_failure: {other:?} is not one of \"block\", \"allow\""
            ));
            AuditFailureMode::Block
        }
    };
    let audit_queue = positive(
        "audit.queue_capacity",
        raw.audit.queue_capacity,
        65_536,
        errors,
    );
    let audit_batch = positive("audit.max_batch", raw.audit.max_batch, 1024, errors);
    let mut proxy = ProxyConfig::new(targets);
    if let Some(tls) = tls {
        proxy.set_client_tls(tls);
    }
    proxy.cleartext_over_tls = cleartext_over_tls;
    proxy.detect_all_text = raw.masking.detect_all_text.unwrap_or(false);
    let secs = |key: &str, v: Option<i64>, default: u64, errors: &mut Vec<String>| {
        std::time::Duration::from_secs(positive(key, v, default as usize, errors) as u64)
    };
    let timeout = secs(
        "approvals.timeout_secs",
        raw.approvals.timeout_secs,
        300,
        errors,
    );
    proxy.approvals = proxy::ApprovalsConfig {
        timeout,
        agent_timeout: secs(
            "approvals.agent_timeout_secs",
            raw.approvals.agent_timeout_secs,
            30,
            errors,
        ),
        request_ttl: secs(
            "approvals.request_ttl_secs",
            raw.approvals.request_ttl_secs,
            timeout.as_secs(),
            errors,
        ),
        grant_window: secs(
            "approvals.grant_window_secs",
            raw.approvals.grant_window_secs,
            900,
            errors,
        ),
        in_transaction_timeout: secs(
            "approvals.in_transaction_timeout_secs",
            raw.approvals.in_transaction_timeout_secs,
            60,
            errors,
        ),
        break_glass_group: raw.approvals.break_glass_group.clone(),
        console_url: raw
            .approvals
            .console_url
            .clone()
            .or_else(|| listen_admin.map(|a| format!("http://{a}"))),
    };
    let webhooks = hooks::build(&raw.approvals.webhooks, secrets, errors);
    proxy.identity_providers = idp::build(&raw.identity_providers, secrets, errors);
    proxy.on_audit_failure = on_audit_failure;
    proxy.audit_param_max = positive(
        "audit.param_max_bytes",
        raw.audit.param_max_bytes,
        256,
        errors,
    );
    proxy.max_message_len = positive(
        "limits.max_message_bytes",
        raw.limits.max_message_bytes,
        64 << 20,
        errors,
    );
    // Half the CPUs by default: most of a session's cost is the kernel's socket work, and
    // one event loop serving many sessions gathers more of it per wake-up (measured in
    // `bench/pgbench.sh`: on 2 cores, one loop used 14% less CPU per statement than two).
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let session_threads = positive(
        "limits.session_threads",
        raw.limits.session_threads,
        (cpus / 2).max(1),
        errors,
    );
    if session_threads > 1024 {
        errors.push(format!(
            "limits.session_threads: at most 1024, got {session_threads}"
        ));
    }
    if cleartext_over_tls && proxy.tls.is_none() && raw.tls.is_some() {
        errors.push("tls.client_auth: \"password\" needs tls.cert and tls.key".into());
    }
    let mode = match raw.policy.mode.as_deref() {
        None | Some("enforce") => policy::Mode::Enforce,
        Some("shadow") => policy::Mode::Shadow,
        Some(other) => {
            errors.push(format!(
                "policy.mode: {other:?} is not one of \"enforce\", \"shadow\""
            ));
            policy::Mode::Enforce
        }
    };
    let policy = PolicyConfig {
        paths: raw
            .policy
            .paths
            .unwrap_or_default()
            .iter()
            .map(|p| base.join(p))
            .collect(),
        builtin: raw.policy.builtin.unwrap_or(true),
        mode,
    };
    // Admin commands (tokens, audit) must work even when policy files are broken.
    if secrets == Secrets::Required {
        if let Err(errs) = policy.load() {
            errors.extend(errs.into_iter().map(|e| format!("policy: {e}")));
        }
    }
    Some(Config {
        policy,
        data_dir,
        listen_postgres: listen_postgres?,
        listen_admin,
        proxy,
        audit_queue,
        audit_batch,
        session_threads,
        webhooks,
    })
}

fn positive(key: &str, v: Option<i64>, default: usize, errors: &mut Vec<String>) -> usize {
    match v {
        None => default,
        Some(n) if n > 0 => usize::try_from(n).unwrap_or(default),
        Some(n) => {
            errors.push(format!("{key}: must be positive, got {n}"));
            default
        }
    }
}

fn parse_addr(key: &str, s: &str, errors: &mut Vec<String>) -> Option<SocketAddr> {
    match s.parse() {
        Ok(a) => Some(a),
        Err(_) => {
            errors.push(format!(
                "{key}: {s:?} is not an address like 127.0.0.1:6432"
            ));
            None
        }
    }
}

fn build_targets(
    raw: &[raw::RawTarget],
    secrets: Secrets,
    errors: &mut Vec<String>,
) -> HashMap<String, Arc<TargetConfig>> {
    let mut targets = HashMap::new();
    if raw.is_empty() {
        errors.push("targets: at least one [[targets]] entry is required".into());
    }
    for (i, t) in raw.iter().enumerate() {
        let key = format!("targets[{i}]");
        if t.name.is_empty() || t.name.len() > 63 {
            errors.push(format!("{key}.name: must be 1 to 63 bytes"));
        }
        if targets.contains_key(&t.name) {
            errors.push(format!("{key}.name: duplicate target {:?}", t.name));
        }
        match t.engine.as_deref().unwrap_or("postgres") {
            "postgres" => {}
            "mysql" => errors.push(format!("{key}.engine: \"mysql\" is not supported yet")),
            other => errors.push(format!(
                "{key}.engine: {other:?} is not one of \"postgres\""
            )),
        }
        let password = match &t.password_env {
            Some(var) => match std::env::var(var) {
                Ok(p) => Some(p),
                Err(_) if secrets == Secrets::Optional => None,
                Err(_) => {
                    errors.push(format!(
                        "{key}.password_env: environment variable {var} is not set"
                    ));
                    None
                }
            },
            None => None,
        };
        let environment = t.environment.clone().unwrap_or_else(|| "default".into());
        if let Some(target) =
            upstream::target(&key, &t.name, &t.upstream, password, environment, errors)
        {
            targets.insert(t.name.clone(), Arc::new(target));
        }
    }
    targets
}

#[cfg(test)]
mod tests;

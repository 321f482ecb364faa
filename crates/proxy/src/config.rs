//! The proxy's validated configuration. The binary parses and checks the TOML file and builds
//! these; nothing here reads files or the environment.

use std::collections::HashMap;
use std::sync::Arc;

/// What to do with a statement when its audit event cannot be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFailureMode {
    /// Refuse the statement (the default: no unaudited statement runs).
    Block,
    /// Let it run and count the missed event (explicit opt-out).
    Allow,
}

/// How Gatehouse connects to an upstream, from the URL's `sslmode`.
#[derive(Debug, Clone)]
pub enum UpstreamTls {
    Disable,
    /// Encrypt, do not verify the certificate (libpq's `require`).
    Require,
    /// Encrypt and verify the chain and host name against these roots (`verify-full`).
    VerifyFull(Arc<rustls::RootCertStore>),
}

#[derive(Debug, Clone)]
pub struct TargetConfig {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    pub password: Option<String>,
    pub tls: UpstreamTls,
    /// Free-form environment label (`production`, `staging`…) for policies and audit.
    pub environment: String,
    /// Sensitive columns of this target (`[[sensitive]]`).
    pub sensitive: Arc<SensitiveSet>,
}

/// How one sensitive column is treated.
#[derive(Debug, Clone)]
pub struct SensitiveColumn {
    pub tags: Vec<String>,
    pub strategy: masking::Strategy,
    /// Refuse filtering, joining, grouping or ordering on it (for principals who may not
    /// unmask it): `WHERE ssn LIKE '1%'` would reveal it character by character.
    pub deny_predicates: bool,
}

/// The sensitive columns of a target, keyed by `schema.table.column`.
#[derive(Debug, Clone, Default)]
pub struct SensitiveSet {
    pub columns: HashMap<sql::lineage::ColumnRef, SensitiveColumn>,
}

impl SensitiveSet {
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub targets: HashMap<String, Arc<TargetConfig>>,
    /// TLS towards clients; without it SSLRequest is answered `N`.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `tls-server-end-point` data of the certificate in `tls` (`client_tls::ClientTls`); with
    /// it, clients over TLS are offered SCRAM-SHA-256-PLUS. Set both from one `ClientTls`.
    pub tls_end_point: Option<Vec<u8>>,
    /// Over TLS, ask for the token in a PasswordMessage instead of SCRAM (for clients without
    /// SCRAM, and for bearer tokens that cannot be SCRAM-verified).
    pub cleartext_over_tls: bool,
    /// Largest client message accepted (bytes).
    pub max_message_len: usize,
    /// Bound on each bound parameter value recorded in the audit trail (bytes).
    pub audit_param_max: usize,
    pub on_audit_failure: AuditFailureMode,
    /// Secret mixed into the salt shown to unknown identities, so probing reveals nothing.
    pub fake_salt_secret: Vec<u8>,
    /// Run the value detectors over every text column of every result, masked or not
    /// (`[masking] detect_all_text`, opt-in: it costs a scan per cell).
    pub detect_all_text: bool,
    /// Holding statements that need approval (`[approvals]`).
    pub approvals: ApprovalsConfig,
    /// `[[identity_providers]]`: whose JWTs are accepted as passwords over TLS (and whose ID
    /// tokens `gatehouse login` exchanges for credentials, on the admin listener).
    pub identity_providers: Vec<identity::oidc::ProviderSpec>,
}

/// How long a held statement waits, and where approvers are told to go.
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    /// A person's session waits this long for a decision, then its statement is refused.
    pub timeout: std::time::Duration,
    /// An agent's session waits this long (agents often cannot wait as long as people).
    pub agent_timeout: std::time::Duration,
    /// A request stays open for a decision this long (at least as long as any wait): after
    /// a session stopped waiting, an approval still lets the same statement run once (a
    /// one-time grant).
    pub request_ttl: std::time::Duration,
    /// After its approval, a grant may be used by a re-run for this long.
    pub grant_window: std::time::Duration,
    /// Inside a transaction block (locks stay held) the wait is at most this.
    pub in_transaction_timeout: std::time::Duration,
    /// Members of this group may approve any request alone (flagged in the evidence).
    pub break_glass_group: Option<String>,
    /// The admin listener's base URL, shown to the client and in requests (e.g.
    /// `http://127.0.0.1:9187`).
    pub console_url: Option<String>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        ApprovalsConfig {
            timeout: std::time::Duration::from_secs(300),
            agent_timeout: std::time::Duration::from_secs(30),
            request_ttl: std::time::Duration::from_secs(300),
            grant_window: std::time::Duration::from_secs(900),
            in_transaction_timeout: std::time::Duration::from_secs(60),
            break_glass_group: None,
            console_url: None,
        }
    }
}

impl ProxyConfig {
    /// Defaults for everything but the targets.
    pub fn new(targets: HashMap<String, Arc<TargetConfig>>) -> Self {
        ProxyConfig {
            targets,
            tls: None,
            tls_end_point: None,
            cleartext_over_tls: false,
            max_message_len: 64 << 20,
            audit_param_max: 256,
            on_audit_failure: AuditFailureMode::Block,
            fake_salt_secret: Vec::new(),
            detect_all_text: false,
            approvals: ApprovalsConfig::default(),
            identity_providers: Vec::new(),
        }
    }

    /// TLS towards clients, with the binding data of its certificate.
    pub fn set_client_tls(&mut self, tls: crate::client_tls::ClientTls) {
        self.tls = Some(tls.config);
        self.tls_end_point = tls.end_point;
    }
}

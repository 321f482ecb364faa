//! Audit events: the record of who connected, what they ran and how it ended.
//!
//! The field order of [`AuditEvent`] is part of the hash chain's canonical form (see the
//! `audit` crate): add new fields at the end, with `#[serde(default)]` and skipped when empty,
//! so events written before a field existed still hash to what they hashed to then.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A client connection was accepted (before authentication).
    Connect,
    /// The client proved its identity.
    Authenticated,
    /// Authentication failed (wrong, expired or revoked token, unknown identity).
    AuthFailure,
    /// The connection was refused after or outside authentication (unknown target,
    /// malformed protocol, upstream unavailable, forbidden startup options).
    Refused,
    /// One statement (one per statement of a multi-statement query; one per Execute).
    Statement,
    /// The connection ended.
    Disconnect,
    /// A step of an approval request (see `approval`): requested, a vote, expired, withdrawn,
    /// released.
    Approval,
    /// `gatehouse login`: a credential issued for a person the identity provider vouched for
    /// (`idp` says which provider, issuer and subject), a login refused, or a logout.
    Login,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Connect => "connect",
            AuditKind::Authenticated => "authenticated",
            AuditKind::AuthFailure => "auth_failure",
            AuditKind::Refused => "refused",
            AuditKind::Statement => "statement",
            AuditKind::Disconnect => "disconnect",
            AuditKind::Approval => "approval",
            AuditKind::Login => "login",
        }
    }
}

/// How something ended: fine, or an error with its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Error {
        sqlstate: String,
        message: String,
    },
    /// The statement was forwarded but its result never arrived (the client or the upstream
    /// went away, or the session was closed because responses no longer matched requests):
    /// it may or may not have run.
    Unknown {
        reason: String,
    },
}

/// One audit record. `id`, `prev_hash` and `hash` are assigned by the audit writer when the
/// event joins the chain; producers leave them empty.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: u64,
    /// RFC 3339 UTC timestamp with microseconds, set by the producer from its clock.
    pub time: String,
    pub kind: AuditKind,
    pub identity: Option<String>,
    pub identity_kind: Option<String>,
    pub groups: Vec<String>,
    pub session: String,
    pub client_addr: Option<String>,
    pub application_name: Option<String>,
    pub target: Option<String>,
    pub statement: Option<String>,
    pub params: Vec<Option<String>>,
    pub outcome: Outcome,
    pub rows: Option<u64>,
    pub duration_us: Option<u64>,
    pub prev_hash: String,
    pub hash: String,
    /// Policy decision for a statement: `allow`, `deny`, `needs_approval`, or `shadow_deny`
    /// (would have been refused; shadow mode let it run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// Ids of the policies that produced the decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<String>,
    /// Command class and tag of the statement (e.g. `write`, `UPDATE`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Tables read and written (schema-qualified).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<String>,
    /// Masked output columns with their tags (`name:tag,tag`); never the values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub masked: Vec<String>,
    /// The approval request a statement was held for, or the step an `approval` event records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<ApprovalStep>,
    /// Where the identity came from when an identity provider vouched for it (a JWT
    /// presented as a password, or the ID token of `gatehouse login`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idp: Option<IdpRef>,
}

/// An identity provider's word for who someone is: its configured name, its `iss` and the
/// token's `sub`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdpRef {
    pub provider: String,
    pub issuer: String,
    pub subject: String,
}

/// One step of an approval request, as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStep {
    /// The request id (`ap_…`), shared by every step and by the statement's own event.
    pub request: String,
    /// `requested`, `approve`, `deny`, `approved`, `denied`, `expired`, `withdrawn`,
    /// `released` (forwarded after approval).
    pub step: String,
    /// Who voted (for `approve`/`deny`), or who decided last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approver_groups: Vec<String>,
    /// The vote came through the break-glass group.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

impl AuditEvent {
    /// An event of `kind` for `session` at `time`, every other field empty.
    pub fn new(kind: AuditKind, session: &str, time: String) -> Self {
        AuditEvent {
            id: 0,
            time,
            kind,
            identity: None,
            identity_kind: None,
            groups: Vec::new(),
            session: session.to_owned(),
            client_addr: None,
            application_name: None,
            target: None,
            statement: None,
            params: Vec::new(),
            outcome: Outcome::Ok,
            rows: None,
            duration_us: None,
            prev_hash: String::new(),
            hash: String::new(),
            decision: None,
            policies: Vec::new(),
            command: None,
            tables: Vec::new(),
            masked: Vec::new(),
            approval: None,
            idp: None,
        }
    }
}

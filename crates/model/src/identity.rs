//! Identities and the stored form of their tokens.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whether a principal is a person or an automated agent. Policies (and auditors) treat them
/// differently, so the kind is part of the identity, not a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityKind {
    Human,
    Agent,
}

impl IdentityKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::Human => "human",
            IdentityKind::Agent => "agent",
        }
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdentityKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(IdentityKind::Human),
            "agent" => Ok(IdentityKind::Agent),
            other => Err(format!(
                "unknown identity kind {other:?} (expected human or agent)"
            )),
        }
    }
}

/// A verified principal. Only the authentication code constructs one after a successful
/// credential check; everything downstream trusts it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub kind: IdentityKind,
    pub groups: Vec<String>,
}

/// SCRAM-SHA-256 verifier (RFC 5802 / RFC 7677): what the server keeps instead of the secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScramVerifier {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub stored_key: [u8; 32],
    pub server_key: [u8; 32],
}

/// A token as stored: never the token itself, only its SHA-256 and a SCRAM verifier.
/// Times are seconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Short public id used to list and revoke (not secret).
    pub id: String,
    pub identity: String,
    pub kind: IdentityKind,
    pub groups: Vec<String>,
    pub created_at: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    /// Hex SHA-256 of the token string.
    pub token_hash: String,
    pub scram: ScramVerifier,
}

impl TokenRecord {
    /// A token is usable when it is neither revoked nor expired at `now` (epoch seconds).
    pub fn is_active(&self, now: i64) -> bool {
        self.revoked_at.is_none() && now < self.expires_at
    }

    pub fn identity(&self) -> Identity {
        Identity {
            name: self.identity.clone(),
            kind: self.kind,
            groups: self.groups.clone(),
        }
    }
}

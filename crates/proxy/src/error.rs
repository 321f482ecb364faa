//! Session errors and the one gate that decides what a client may see of them: a SQLSTATE
//! and a message that never includes internal details (addresses, upstream errors, paths).

use wire_pg::WireError;

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("protocol violation: {0}")]
    Wire(#[from] WireError),
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("authentication failed")]
    AuthFailed,
    /// Authentication failed for a reason the audit trail records (an identity provider's
    /// token that did not verify); the client is told no more than for `AuthFailed`.
    #[error("authentication failed: {0}")]
    AuthRefused(String),
    /// The credential the session logged in with was revoked or expired.
    #[error("session ended because {0}")]
    CredentialEnded(String),
    #[error("unknown target {0:?}")]
    UnknownTarget(String),
    #[error("startup parameter {0:?} is not allowed")]
    ForbiddenParam(String),
    #[error("upstream: {0}")]
    Upstream(String),
    #[error("audit trail unavailable: {0}")]
    AuditUnavailable(String),
    #[error("TLS: {0}")]
    Tls(String),
    #[error("internal: {0}")]
    Internal(String),
    /// A response did not match what the session's requests called for: the proxy's model
    /// of the session can no longer be trusted, so the session ends.
    #[error("desynchronised: {0}")]
    Desync(String),
    /// The session uses a setting under which the server would read statements differently
    /// from Gatehouse's analysis (see `lexing`).
    #[error("unsupported setting: {0}")]
    UnsafeSetting(String),
}

impl SessionError {
    /// SQLSTATE for the client (PostgreSQL appendix A).
    pub fn sqlstate(&self) -> &'static str {
        match self {
            SessionError::Wire(_) | SessionError::Protocol(_) | SessionError::Desync(_) => "08P01",
            SessionError::UnsafeSetting(_) => "0A000",
            SessionError::Io(_) | SessionError::Tls(_) => "08006",
            SessionError::AuthFailed | SessionError::AuthRefused(_) => "28P01",
            SessionError::CredentialEnded(_) => "57P01",
            SessionError::UnknownTarget(_) => "3D000",
            SessionError::ForbiddenParam(_) => "42501",
            SessionError::Upstream(_) => "08001",
            SessionError::AuditUnavailable(_) => "58000",
            SessionError::Internal(_) => "XX000",
        }
    }

    /// The message a client may see.
    pub fn client_message(&self, user: &str) -> String {
        match self {
            SessionError::Wire(e) => format!("gatehouse: invalid frontend message: {e}"),
            SessionError::Protocol(what) => format!("gatehouse: protocol violation: {what}"),
            SessionError::Io(_) | SessionError::Tls(_) => "gatehouse: connection failure".into(),
            // The same text PostgreSQL uses, saying nothing of which part was wrong.
            SessionError::CredentialEnded(why) => {
                format!("gatehouse: terminating connection because {why}")
            }
            SessionError::AuthFailed | SessionError::AuthRefused(_) => {
                format!("password authentication failed for user \"{user}\"")
            }
            SessionError::UnknownTarget(t) => format!("database \"{t}\" does not exist"),
            SessionError::ForbiddenParam(p) => {
                format!("gatehouse: startup parameter \"{p}\" is not allowed through the proxy")
            }
            SessionError::Upstream(_) => "gatehouse: the upstream database is unavailable".into(),
            SessionError::AuditUnavailable(_) => {
                "gatehouse: the audit trail is unavailable; no statement may run unaudited".into()
            }
            SessionError::Internal(_) => "gatehouse: internal error".into(),
            SessionError::UnsafeSetting(s) => format!(
                "gatehouse: {s} is not supported through Gatehouse: under it the server would \
                 read statements differently from how they are checked; use UTF8 (or another \
                 encoding whose multi-byte characters never contain ASCII bytes) and \
                 standard_conforming_strings = on"
            ),
            SessionError::Desync(_) => "gatehouse: the server's responses no longer match this \
                session's requests; the session was closed"
                .into(),
        }
    }
}

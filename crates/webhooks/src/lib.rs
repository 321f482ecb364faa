//! Outgoing webhook notifications of approval requests: who is told of a new request
//! ([`Webhook::wants`]), what they are sent ([`payload`]: generic JSON or a Slack
//! incoming-webhook message), how a receiver knows it came from us ([`sign`]: HMAC-SHA256 over
//! `timestamp.body`), and how it is delivered ([`deliver`]: bounded attempts with exponential
//! backoff).
//!
//! This crate owns no request and decides nothing: a notification is a courtesy to the
//! approvers. A delivery that fails changes nothing about the request (it stays pending in the
//! registry until someone decides or it expires); the caller records each outcome in the audit
//! trail. Listening to the registry and auditing live in the binary (`serve_webhooks`).
#![forbid(unsafe_code)]

pub mod deliver;
pub mod payload;
pub mod sign;

pub use deliver::{deliver, Backoff, Delivery};
pub use payload::{body, Links};
pub use sign::{signature, verify, VerifyError, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// What a webhook's body looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Our own JSON document (see [`payload::json`]).
    Json,
    /// A Slack incoming-webhook message (`text` and `blocks`).
    Slack,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Slack => "slack",
        }
    }
}

/// The shared secret of a webhook; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(bytes.into())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// One configured webhook (`[[approvals.webhooks]]`).
#[derive(Clone)]
pub struct Webhook {
    pub name: String,
    /// http or https. Slack's URLs carry their own secret in the path: never logged.
    pub url: String,
    /// Approver groups it is for; empty: every request.
    pub groups: Vec<String>,
    pub format: Format,
    pub secret: Secret,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
}

impl Webhook {
    /// Default of `max_attempts`.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
    /// Most `max_attempts` may be (with the default backoff, about 15 minutes of retries).
    pub const MAX_ATTEMPTS_LIMIT: u32 = 20;

    /// Whether this webhook is told of `request`: it is for all groups, or for one of the
    /// request's approver groups.
    pub fn wants(&self, request: &approvals::Request) -> bool {
        self.groups.is_empty()
            || request
                .spec
                .approver_groups
                .iter()
                .any(|g| self.groups.contains(g))
    }
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may be a bearer secret (Slack): show only where it goes.
        let host = self
            .url
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
            .and_then(|authority| authority.rsplit('@').next())
            .unwrap_or_default();
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("host", &host)
            .field("groups", &self.groups)
            .field("format", &self.format)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;

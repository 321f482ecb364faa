//! Persistence for Gatehouse: token records, the audit event log and approval requests.
//!
//! This crate stores and loads; it holds no business rules. It does not decide whether a token
//! is active (that is `identity`), nor compute or check hash chains (that is `audit`): an audit
//! event is written exactly as handed in and read back exactly as stored.
//!
//! The two traits, [`TokenStore`] and [`AuditLog`], are the seam for other backends (a shared
//! PostgreSQL store for several nodes). [`SqliteStore`] is the embedded default: one SQLite
//! database in WAL mode under the data directory, shared by the server and the CLI processes.
//! Approval requests ([`SqliteApprovals`], the `approvals` crate's `ApprovalStore`) live in a
//! second file beside it, `approvals.db`, written by the server only.
#![forbid(unsafe_code)]

mod approvals;
mod audit_log;
mod error;
mod schema;
mod tokens;

pub use approvals::SqliteApprovals;
pub use audit_log::SqliteAuditLog;
pub use error::StoreError;
pub use tokens::SqliteStore;

use model::{AuditEvent, TokenRecord};

/// File name of the embedded database inside the data directory.
pub const DB_FILE_NAME: &str = "gatehouse.db";
/// File name of the approval requests' database inside the data directory.
pub const APPROVALS_FILE_NAME: &str = "approvals.db";

/// Token records. Shared by every connection task, hence `Sync`.
pub trait TokenStore: Send + Sync {
    /// Adds a new record; fails if its id or token hash already exists.
    fn insert_token(&self, rec: &TokenRecord) -> Result<(), StoreError>;
    /// Every record (active or not) of one identity, oldest first.
    fn tokens_for_identity(&self, identity: &str) -> Result<Vec<TokenRecord>, StoreError>;
    /// The record whose token hashes to `token_hash_hex` (lower-case hex SHA-256).
    fn token_by_hash(&self, token_hash_hex: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// The record with this id.
    fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Every record, oldest first.
    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError>;
    /// Marks a token revoked at `at` (epoch seconds). Returns `false` when no token has this
    /// id or it was already revoked (the first revocation time is kept).
    fn revoke_token(&self, id: &str, at: i64) -> Result<bool, StoreError>;
    /// Records which identity provider vouched for the person a token was issued to
    /// (`gatehouse login`), and the provider's refresh token when it gave one.
    fn set_token_idp(
        &self,
        id: &str,
        idp: &model::IdpRef,
        refresh_token: Option<&str>,
    ) -> Result<(), StoreError>;
    /// The identity provider that vouched for a token's identity, if one did.
    fn token_idp(&self, id: &str) -> Result<Option<model::IdpRef>, StoreError>;
    /// Tokens active at `now` that a provider vouched for with a refresh token: the record,
    /// the provider's name and the refresh token.
    fn refreshable_tokens(
        &self,
        now: i64,
    ) -> Result<Vec<(TokenRecord, String, String)>, StoreError>;
    /// Replaces a token's refresh token (providers rotate them at each use).
    fn set_refresh_token(&self, id: &str, refresh_token: &str) -> Result<(), StoreError>;
}

/// The append-only audit event log. Owned by one writer (hence `Send` only); readers open
/// their own instance.
pub trait AuditLog: Send {
    /// Id and hash of the last stored event, `None` when the log is empty.
    fn head(&self) -> Result<Option<(u64, String)>, StoreError>;
    /// Stores `events` (ids, prev_hash and hash already assigned) in ONE transaction: all or
    /// none, so a batch is one commit (group commit).
    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// [`AuditLog::append`] for a caller that already has each event's JSON: `json[i]` must be
    /// exactly `serde_json::to_string(&events[i])`. A backend that stores the JSON uses it
    /// instead of serialising every event again; the default ignores it.
    fn append_serialized(
        &mut self,
        events: &[AuditEvent],
        json: &[&str],
    ) -> Result<(), StoreError> {
        let _ = json;
        self.append(events)
    }
    /// Up to `limit` events stored after position `after_id`, in ascending id order.
    fn read_after(&self, after_id: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
    /// The last `n` events, in ascending id order.
    fn read_last(&self, n: usize) -> Result<Vec<AuditEvent>, StoreError>;
}

//! The store's error type: what can go wrong opening, reading or writing persisted state.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create data directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make database file {path} private to its owner: {source}")]
    Permissions {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("database {path} cannot use WAL journaling (got journal_mode={mode}); is it on a network file system?")]
    NoWal { path: PathBuf, mode: String },
    #[error("database schema version {found} is newer than this build understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("cannot encode {what} as JSON: {source}")]
    Encode {
        what: &'static str,
        source: serde_json::Error,
    },
    /// A stored token row cannot be turned back into a record.
    #[error("stored token {id} is unreadable: {reason}")]
    CorruptToken { id: String, reason: String },
    /// A stored audit row cannot be turned back into an event (e.g. its JSON was edited into
    /// something that does not parse). `id` is the row's id, so a verifier can name it.
    #[error("stored audit event {id} is unreadable: {reason}")]
    CorruptEvent { id: u64, reason: String },
    /// A stored approval request's JSON does not parse back into a request.
    #[error("stored approval request {id} is unreadable: {reason}")]
    CorruptApproval { id: String, reason: String },
    #[error("value out of range: {0}")]
    OutOfRange(String),
}

//! The identity crate's error type.

use model::IdentityKind;
use store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// `what` is "identity" or "group".
    #[error("invalid {what} name {name:?}: {reason}")]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("invalid duration {input:?}: {reason} (examples: 90s, 30m, 8h, 7d, 1h30m)")]
    InvalidTtl { input: String, reason: String },
    #[error("identity {identity:?} already has active {existing} tokens; cannot issue a {requested} token for it")]
    KindMismatch {
        identity: String,
        existing: IdentityKind,
        requested: IdentityKind,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

//! The one error type of the masking crate. Messages name the problem, never the value: a
//! masking error may be logged or audited, and the value is what we are hiding.

/// Why a value could not be masked. The caller treats every variant as "fail closed": the
/// statement ends with an error rather than sending the value through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MaskError {
    /// A mask name in configuration that is not one of the known strategies.
    #[error("unknown mask strategy {0:?} (expected full, partial, hash, null, email or last4)")]
    UnknownStrategy(String),
    /// The hash strategy needs a non-empty key: an unkeyed hash of a small domain (SSNs,
    /// phone numbers) is reversible by enumeration.
    #[error("the hash mask needs a non-empty key")]
    EmptyKey,
    /// A cell that does not decode as its declared type (wrong binary length, not a number).
    #[error("cell is not a valid {type_name} value in {format} format")]
    BadValue {
        type_name: &'static str,
        format: &'static str,
    },
    /// A built-in detector pattern failed to compile (a bug in this crate, caught by tests).
    #[error("detector pattern failed to build: {0}")]
    Pattern(String),
    /// A json/jsonb value that is not well-formed JSON.
    #[error("invalid JSON at byte {offset}: {reason}")]
    InvalidJson { offset: usize, reason: &'static str },
    /// A jsonb binary value whose version byte this crate does not know.
    #[error("unsupported jsonb binary version {0}")]
    JsonbVersion(u8),
    /// A record (composite) text value that does not follow PostgreSQL's output syntax.
    #[error("invalid record text at byte {offset}: {reason}")]
    InvalidRecord { offset: usize, reason: &'static str },
    /// The mask plan names a record field the value does not have: the plan and the data
    /// disagree, so nothing about the value can be trusted.
    #[error("record has {fields} fields but the mask plan names field {index}")]
    RecordField { index: usize, fields: usize },
}

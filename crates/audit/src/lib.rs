//! The tamper-evident audit trail: the hash chain over events, the writer that puts events on
//! it off the hot path, and the verifier that checks a stored chain.
//!
//! - [`chain`]: the canonical bytes of an event and how each hash covers the previous one.
//! - [`AuditWriter`]: a dedicated thread owning the [`store::AuditLog`], fed through a bounded
//!   queue. Producers reserve a slot before doing the audited work, so nothing runs without its
//!   event being accepted; events are never dropped, a failing store is retried.
//! - [`verify()`]: walks a stored log and names the first event that was changed, removed or
//!   moved.
//!
//! Where events are persisted is the `store` crate's business; who produces them is the
//! proxy's.
#![forbid(unsafe_code)]

pub mod chain;
mod error;
mod verify;
mod worker;
mod writer;

pub use chain::{canonical_bytes, chain_hash, ChainHead, GENESIS_HASH};
pub use error::AuditError;
pub use verify::{verify, BadEvent, BadKind, VerifyReport};
pub use writer::{AuditHandle, AuditSlot, AuditWriter, RetryPolicy, WriterConfig, WriterJoin};

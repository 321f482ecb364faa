//! The shared vocabulary of Gatehouse: who is connected (`Identity`), what a token is
//! (`TokenRecord`), what a statement is (`facts`), what policy decided (`decision`), and
//! what the audit trail records (`AuditEvent`).
//!
//! This crate does no I/O, reads no clock and knows no wire format; every other crate speaks
//! in these types.
#![forbid(unsafe_code)]

mod audit;
pub mod decision;
pub mod facts;
mod identity;

pub use audit::{ApprovalStep, AuditEvent, AuditKind, IdpRef, Outcome};
pub use identity::{Identity, IdentityKind, ScramVerifier, TokenRecord};

//! Policy-as-code for Gatehouse: Cedar policies over the facts of a statement.
//!
//! [`Policies::load`] parses and validates (strictly, against the embedded schema) the
//! built-in guardrail pack and any policy files; [`decide`] is a pure function of the
//! policies, the verified principal, one statement's facts and the request context. It never
//! reads a clock (the hour is passed in) and fails closed: no permit, an evaluation error, or
//! anything unexpected is a denial.
//!
//! Decisions are expressed with annotations on policies: `@id("…")` names a policy in
//! decisions and the audit trail, `@reason`/`@hint` explain a forbid, and `@approval("group")`
//! on a forbid turns its denial into "needs approval by that group" when it is the only kind
//! of forbid that matched. A `permit` on the `approve` action is an automatic approval rule
//! ([`Policies::auto_approval`], `auto.rs`).
//!
//! This crate does no I/O: the caller reads policy files and hands over their text.
#![forbid(unsafe_code)]

mod auto;
mod cache;
mod context;
mod decide;
mod load;
mod unmask;

pub use auto::{AutoApprovalInput, AutoApproved};
pub use cache::DecisionCache;
pub use decide::{decide, decide_all};
pub use load::{Policies, PolicyError, BUILTIN_POLICIES, SCHEMA};
pub use model::decision::Decision;
pub use unmask::may_unmask;

use model::Identity;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What the caller does with a decision: refuse what is denied, or let everything run and
/// only record what would have been refused (to try policies on real traffic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Shadow,
}

/// The verified identity a statement is decided for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub identity: Identity,
}

/// Everything about the request that is not the statement itself.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RequestContext {
    /// The configured target's name (also the resource: `Gatehouse::Database::"<target>"`).
    pub target: String,
    /// The target's environment label ("production", "staging", …).
    pub environment: String,
    pub application_name: String,
    /// None for Unix-socket clients.
    pub source_ip: Option<IpAddr>,
    /// UTC hour of day (0-23), from the caller's clock.
    pub hour: u8,
    /// The statement is one of several in a query string (set by [`decide_all`]).
    pub multi_statement: bool,
    /// Every object the statement drops is a temporary table this session created (see
    /// `StatementFacts::drops_only_session_temp`).
    pub drops_only_session_temp: bool,
}

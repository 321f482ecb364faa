//! Policy tests (one test binary: Cedar and pg_query link once).
//!
//! - `builtin`: literal facts → exact decisions for the guardrail pack and an empty set;
//! - `enforcement`: the guardrails that keep the server's own enforcement on (settings,
//!   safeguards, catalog writes, unfiltered MERGE), and how an operator lifts one;
//! - `user`: user policy files (approval, permits, context attributes), `decide_all`, the
//!   decision cache;
//! - `load`: file:line errors, ids, validation;
//! - `guardrails`: SQL text through the real analyser to a decision.

mod builtin;
mod common;
mod enforcement;
mod guardrails;
mod load;
mod user;

//! Policy tests (one test binary: Cedar and pg_query link once).
//!
//! - `builtin`: literal facts → exact decisions for the guardrail pack and an empty set;
//! - `user`: user policy files (approval, permits, context attributes), `decide_all`, the
//!   decision cache;
//! - `load`: file:line errors, ids, validation;
//! - `guardrails`: SQL text through the real analyser to a decision.

mod builtin;
mod common;
mod guardrails;
mod load;
mod user;

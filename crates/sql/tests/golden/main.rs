//! Golden tables: SQL → the facts that matter, for every bypass class of the guardrail issue
//! and for the benign look-alikes that must not be flagged. Plus a no-panic fuzz pass.
//!
//! Every table is checked in full and all mismatches are reported together.

mod benign;
mod bypass;
mod catalog_merge;
mod fuzz;
mod harness;
mod safeguards;
mod session;
mod shapes;
mod weakening;

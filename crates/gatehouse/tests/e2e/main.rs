//! End-to-end tests: real clients (tokio-postgres, psql, psycopg 3, SQLAlchemy, pgbench and raw
//! sockets) through a real `gatehouse serve` process to a real PostgreSQL.
//!
//! One test binary, so one throwaway upstream cluster serves the whole run (see `harness`).
//! Every test starts its own proxy over its own database and can run in parallel with the rest.
//! Set `GATEHOUSE_TEST_PG_URL` to test against an existing server instead.

// In a test a failed unwrap is a failed test, with the location and value in the message;
// the workspace's production-code lints against them do not apply here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod raw;

mod approvals;
mod approvals_attacks;
mod approvals_store;
mod approvals_webhooks;
mod audit_block;
mod audit_events;
mod audit_verify;
mod auth;
mod clients;
mod guardrails;
mod identity;
mod loop_sharing;
mod malformed;
mod masking;
mod oidc;
mod pgbench;
mod psql;
mod python;
mod session_integrity;
mod tls_modern;
mod wire_attacks;
mod wire_drift;
mod wire_fidelity;

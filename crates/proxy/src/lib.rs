//! Client-facing PostgreSQL sessions: the only crate that owns client and upstream sockets.
//!
//! A connection goes through three phases, each in a module of its own:
//! `handshake` (SSL negotiation and the startup packet), `auth` (proving the identity with a
//! Gatehouse token), `upstream` (logging in to the real database with the target's
//! credentials), then `session` relays the query phase. The session is two tasks joined by
//! an ordered queue of expectations (`expect`): the client→upstream task decides what to
//! forward and what to answer itself; the upstream→client task matches each response to the
//! statement that caused it, completes that statement's audit event and (later) rewrites
//! result rows. Holding a statement means the first task simply waits.
#![forbid(unsafe_code)]

mod annotation;
mod auth;
mod cancel;
mod catalog;
pub mod classify;
pub mod client_tls;
mod clock;
mod config;
mod error;
pub mod estimate;
mod events;
mod expect;
mod guard;
mod handshake;
mod lexing;
pub mod live;
mod mask_plan;
mod pipeline;
mod probe;
mod relay_down;
mod relay_mask;
mod relay_up;
mod result;
mod server;
mod session;
mod startup_params;
mod state;
mod stream;
mod upstream;
mod upstream_tls;

pub use clock::{Clock, Entropy, OsEntropy, SystemClock};
pub use config::{
    ApprovalsConfig, AuditFailureMode, ProxyConfig, SensitiveColumn, SensitiveSet, TargetConfig,
    UpstreamTls,
};
pub use guard::PolicyEngine;
pub use server::{serve, ProxyState, SessionThreads};

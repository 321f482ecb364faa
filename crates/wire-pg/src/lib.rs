//! PostgreSQL frontend/backend protocol v3 codec, sans-IO.
//!
//! Owns: framing (`Frame`), the startup packets, typed views of the messages Gatehouse must
//! inspect, encoders for the messages it must produce, and the SCRAM-SHA-256 server exchange.
//! Does not own: sockets, configuration, or any decision about what to forward.
//!
//! Reference: <https://www.postgresql.org/docs/current/protocol-message-formats.html>.
//! Every length read from the network is checked against a caller-supplied maximum before any
//! allocation, and no function here panics on any input (see `fuzz/`).
#![forbid(unsafe_code)]

pub mod backend;
mod buf;
pub mod encode;
mod error;
mod frame;
pub mod frontend;
pub mod scram;
pub mod startup;

pub use error::WireError;
pub use frame::{decode_frame, Frame};

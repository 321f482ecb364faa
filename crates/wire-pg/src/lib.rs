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
pub mod encoding;
mod error;
mod frame;
pub mod frontend;
pub mod scram;
pub mod startup;

pub use error::WireError;
pub use frame::{decode_frame, Frame};

/// Runs every decoder over `data` (as a client stream, a server stream and SCRAM input).
/// The fuzz target and the no-panic tests call this; it must never panic.
#[doc(hidden)]
pub fn exercise(data: &[u8]) {
    let mut b = bytes::BytesMut::from(data);
    while let Ok(Some(_)) = startup::decode_startup(&mut b) {}
    let mut b = bytes::BytesMut::from(data);
    while let Ok(Some(f)) = decode_frame(&mut b, 1 << 16) {
        let _ = frontend::FrontendMessage::parse(&f);
        let _ = frontend::password::cleartext(&f);
        let _ = frontend::password::sasl_initial(&f);
        let _ = backend::Authentication::parse(&f);
        let _ = backend::ready_for_query(&f);
        let _ = backend::parameter_status(&f);
        let _ = backend::backend_key_data(&f);
        let _ = backend::error_fields(&f);
        let _ = backend::row_description(&f);
        let _ = backend::data_row(&f);
        if let Ok(t) = backend::command_complete(&f) {
            let _ = backend::rows_from_tag(&t);
        }
    }
    let plus = scram::Offer::Plus {
        end_point: b"end-point",
    };
    for (offer, mechanism) in [
        (scram::Offer::Plain, scram::MECHANISM),
        (plus, scram::MECHANISM),
        (plus, scram::MECHANISM_PLUS),
    ] {
        if let Ok((state, _)) = scram::start(offer, mechanism, data, b"salt", 4096, "nonce") {
            let _ = state.finish(data, &[([0; 32], [0; 32])]);
        }
    }
}

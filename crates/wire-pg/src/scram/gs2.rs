//! The GS2 header that opens a SCRAM client-first message (RFC 5802 §7) and the channel-binding
//! rules PostgreSQL applies to it (protocol docs, "SASL Authentication"; RFC 7677 for
//! SCRAM-SHA-256-PLUS; RFC 5929 §4 for `tls-server-end-point`).
//!
//! Owns: which mechanisms the server offers, whether the client's mechanism and cbind-flag
//! agree with that offer (including the downgrade check on `y`), and the exact bytes the
//! client-final `c=` attribute must carry. Does not own: the binding data itself; the caller
//! passes in the hash of the certificate it presented, as bytes.

use super::ScramError;

/// SCRAM without channel binding.
pub const MECHANISM: &str = "SCRAM-SHA-256";
/// SCRAM with channel binding (RFC 7677 §4); PostgreSQL offers it only over TLS.
pub const MECHANISM_PLUS: &str = "SCRAM-SHA-256-PLUS";
/// The one channel-binding type PostgreSQL supports (RFC 5929 §4).
pub const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// What the server offers, fixed before the client chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer<'a> {
    /// SCRAM-SHA-256 only: no TLS, or no binding data for the certificate.
    Plain,
    /// SCRAM-SHA-256-PLUS, then SCRAM-SHA-256 (PostgreSQL's order). `end_point` is the
    /// `tls-server-end-point` data: the hash of the certificate the server presented.
    Plus { end_point: &'a [u8] },
}

impl Offer<'_> {
    /// The mechanisms for AuthenticationSASL, preferred first.
    pub fn mechanisms(&self) -> &'static [&'static str] {
        match self {
            Offer::Plain => &[MECHANISM],
            Offer::Plus { .. } => &[MECHANISM_PLUS, MECHANISM],
        }
    }
}

/// A client-first message split after its GS2 header.
#[derive(Debug)]
pub(super) struct Header<'a> {
    /// client-first-message-bare.
    pub bare: &'a str,
    /// What the client-final `c=` attribute must decode to: the GS2 header, then the binding
    /// data when the client asked for binding (RFC 5802 §7, `cbind-input`).
    pub cbind_input: Vec<u8>,
}

/// Reads the GS2 header of `msg`, sent with `mechanism`, against what the server offered.
pub(super) fn parse<'a>(
    offer: Offer<'_>,
    mechanism: &str,
    msg: &'a str,
) -> Result<Header<'a>, ScramError> {
    let binding = match (mechanism, offer) {
        (MECHANISM, _) => None,
        (MECHANISM_PLUS, Offer::Plus { end_point }) => Some(end_point),
        _ => return Err(ScramError::Mechanism),
    };
    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    let mut parts = msg.splitn(3, ',');
    let flag = parts.next().ok_or(ScramError::Malformed)?;
    let authzid = parts.next().ok_or(ScramError::Malformed)?;
    let bare = parts.next().ok_or(ScramError::Malformed)?;
    // PostgreSQL takes the user from the startup packet and refuses an authorization identity.
    if !authzid.is_empty() {
        return Err(ScramError::Malformed);
    }
    let data: &[u8] = match (flag, binding) {
        ("n", None) => &[],
        // `y`: the client can bind but believes the server cannot. When PLUS was offered,
        // someone removed it on the way (RFC 5802 §6): refuse.
        ("y", None) if offer == Offer::Plain => &[],
        ("y", None) => return Err(ScramError::Downgrade),
        (f, Some(end_point)) if f.strip_prefix("p=") == Some(TLS_SERVER_END_POINT) => end_point,
        // Binding asked for with plain SCRAM, none with PLUS, or another binding type.
        ("n" | "y", Some(_)) => return Err(ScramError::ChannelBinding),
        (f, _) if f.starts_with("p=") => return Err(ScramError::ChannelBinding),
        _ => return Err(ScramError::Malformed),
    };
    // The header is everything up to the second comma, both commas included.
    let header = msg
        .get(..flag.len() + authzid.len() + 2)
        .ok_or(ScramError::Malformed)?;
    let mut cbind_input = Vec::with_capacity(header.len() + data.len());
    cbind_input.extend_from_slice(header.as_bytes());
    cbind_input.extend_from_slice(data);
    Ok(Header { bare, cbind_input })
}

#[cfg(test)]
mod tests;

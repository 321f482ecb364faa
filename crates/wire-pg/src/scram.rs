//! SCRAM-SHA-256 and SCRAM-SHA-256-PLUS server exchange (RFC 5802, RFC 7677) as PostgreSQL
//! clients speak it (protocol docs, "SASL Authentication"), with `tls-server-end-point`
//! channel binding when the caller offers it (see [`gs2`]).
//!
//! Typestate: [`start`] consumes the client-first message and yields [`AwaitingFinal`], the
//! only value that can check a client-final message. The caller supplies what it offered,
//! the salt and iteration count and, at the end, one or more candidate verifiers; several
//! candidates let one identity hold several tokens that share a salt.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

mod gs2;

pub use gs2::{Offer, MECHANISM, MECHANISM_PLUS, TLS_SERVER_END_POINT};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScramError {
    #[error("malformed SCRAM message")]
    Malformed,
    #[error("SASL mechanism was not offered")]
    Mechanism,
    /// The cbind-flag does not fit the mechanism, names another binding type, or the `c=`
    /// attribute does not carry the binding data of this connection.
    #[error("SCRAM channel binding check failed")]
    ChannelBinding,
    /// The client can bind but believes the server cannot, though the server offered it.
    #[error("SCRAM channel binding negotiation error")]
    Downgrade,
    #[error("SCRAM nonce mismatch")]
    Nonce,
    #[error("SCRAM proof does not match")]
    Proof,
}

/// The server's state between server-first and client-final.
#[derive(Debug)]
pub struct AwaitingFinal {
    client_first_bare: String,
    server_first: String,
    nonce: String,
    /// What `c=` must decode to (GS2 header and binding data).
    cbind_input: Vec<u8>,
}

/// Which candidate matched, and the server-final message to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    pub candidate: usize,
    pub server_final: Vec<u8>,
}

/// Handles client-first-message, sent with `mechanism` after the server made `offer`;
/// returns the state and the server-first-message.
pub fn start(
    offer: Offer<'_>,
    mechanism: &str,
    client_first: &[u8],
    salt: &[u8],
    iterations: u32,
    server_nonce: &str,
) -> Result<(AwaitingFinal, Vec<u8>), ScramError> {
    let msg = std::str::from_utf8(client_first).map_err(|_| ScramError::Malformed)?;
    let header = gs2::parse(offer, mechanism, msg)?;
    let client_nonce = attr(header.bare, "r").ok_or(ScramError::Malformed)?;
    if client_nonce.is_empty() || !client_nonce.bytes().all(|b| (0x21..=0x7e).contains(&b)) {
        return Err(ScramError::Malformed);
    }
    let nonce = format!("{client_nonce}{server_nonce}");
    let server_first = format!("r={nonce},s={},i={iterations}", B64.encode(salt));
    let state = AwaitingFinal {
        client_first_bare: header.bare.to_owned(),
        server_first: server_first.clone(),
        nonce,
        cbind_input: header.cbind_input,
    };
    Ok((state, server_first.into_bytes()))
}

impl AwaitingFinal {
    /// Checks client-final-message against each candidate `(stored_key, server_key)`.
    pub fn finish(
        self,
        client_final: &[u8],
        candidates: &[([u8; 32], [u8; 32])],
    ) -> Result<Verified, ScramError> {
        let msg = std::str::from_utf8(client_final).map_err(|_| ScramError::Malformed)?;
        let proof_at = msg.rfind(",p=").ok_or(ScramError::Malformed)?;
        let without_proof = msg.get(..proof_at).ok_or(ScramError::Malformed)?;
        let proof_b64 = msg.get(proof_at + 3..).ok_or(ScramError::Malformed)?;
        let cbind = attr(without_proof, "c").ok_or(ScramError::Malformed)?;
        let cbind = B64.decode(cbind).map_err(|_| ScramError::Malformed)?;
        // Constant time: the binding data is the hash of our certificate, not a secret, but
        // nothing about a comparison an attacker drives should depend on where it differs.
        if !ct_eq(&cbind, &self.cbind_input) {
            return Err(ScramError::ChannelBinding);
        }
        if attr(without_proof, "r") != Some(self.nonce.as_str()) {
            return Err(ScramError::Nonce);
        }
        let proof = B64.decode(proof_b64).map_err(|_| ScramError::Malformed)?;
        if proof.len() != 32 {
            return Err(ScramError::Malformed);
        }
        let auth_message = format!(
            "{},{},{}",
            self.client_first_bare, self.server_first, without_proof
        );
        // Check every candidate so the time taken does not reveal which one matched.
        let mut matched = None;
        for (i, (stored_key, _)) in candidates.iter().enumerate() {
            let signature = hmac(stored_key, auth_message.as_bytes());
            let client_key: Vec<u8> = proof.iter().zip(signature).map(|(p, s)| p ^ s).collect();
            let digest = Sha256::digest(&client_key);
            if ct_eq(&digest, stored_key) && matched.is_none() {
                matched = Some(i);
            }
        }
        let candidate = matched.ok_or(ScramError::Proof)?;
        let server_key = candidates
            .get(candidate)
            .map(|c| c.1)
            .ok_or(ScramError::Proof)?;
        let server_signature = hmac(&server_key, auth_message.as_bytes());
        Ok(Verified {
            candidate,
            server_final: format!("v={}", B64.encode(server_signature)).into_bytes(),
        })
    }
}

/// The value of `name=` in a comma-separated SCRAM attribute list.
fn attr<'a>(msg: &'a str, name: &str) -> Option<&'a str> {
    msg.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then_some(v)
    })
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so construction cannot fail.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut m) => {
            m.update(data);
            m.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;

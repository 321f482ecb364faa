//! Signing a delivery, and checking one as a receiver should.
//!
//! The signature is HMAC-SHA256, keyed with the webhook's shared secret, over the ASCII
//! decimal Unix timestamp, a `.`, and the body exactly as sent:
//!
//! ```text
//! X-Gatehouse-Timestamp: 1764460800
//! X-Gatehouse-Signature: v1=<hex of HMAC-SHA256(secret, "1764460800" + "." + body)>
//! ```
//!
//! Binding the timestamp into the MAC lets a receiver refuse replays of an old delivery
//! ([`verify`] rejects timestamps more than a tolerance away from its own clock). The `v1=`
//! prefix names the scheme so a later one can be added alongside.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Header carrying the Unix time (seconds) the signature was made at.
pub const TIMESTAMP_HEADER: &str = "X-Gatehouse-Timestamp";
/// Header carrying `v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "X-Gatehouse-Signature";
/// How far a receiver should let the timestamp be from its clock (5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length (a long one is hashed first), so `new_from_slice` never
    // fails; the fallback only keeps this total without a panic.
    let mut m = HmacSha256::new_from_slice(secret)
        .unwrap_or_else(|_| <HmacSha256 as hmac::digest::KeyInit>::new(&Default::default()));
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The `X-Gatehouse-Signature` value for `body` sent at `timestamp`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Why a delivery did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// The timestamp header is not a decimal integer.
    BadTimestamp,
    /// The timestamp is further than the tolerance from the receiver's clock (a replay, or
    /// a clock far off).
    Stale { age_secs: i64 },
    /// No `v1=` signature, or not hex.
    BadSignature,
    /// The MAC does not match (wrong secret, or the body was changed).
    Mismatch,
}

/// Checks a delivery as a receiver should: the timestamp is within `tolerance_secs` of
/// `now_secs`, and one of the signature header's comma-separated `v1=` values matches in
/// constant time.
pub fn verify(
    secret: &[u8],
    timestamp_header: &str,
    signature_header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    let ts: i64 = timestamp_header
        .trim()
        .parse()
        .map_err(|_| VerifyError::BadTimestamp)?;
    let age_secs = now_secs.saturating_sub(ts);
    if age_secs.saturating_abs() > tolerance_secs {
        return Err(VerifyError::Stale { age_secs });
    }
    let mut seen = false;
    for part in signature_header.split(',') {
        let Some(hex_mac) = part.trim().strip_prefix("v1=") else {
            continue;
        };
        let Ok(given) = hex::decode(hex_mac) else {
            continue;
        };
        seen = true;
        if mac(secret, ts, body).verify_slice(&given).is_ok() {
            return Ok(());
        }
    }
    Err(if seen {
        VerifyError::Mismatch
    } else {
        VerifyError::BadSignature
    })
}

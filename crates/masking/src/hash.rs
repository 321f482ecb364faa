//! Keyed hashing for the `hash` strategy. HMAC-SHA256 with a caller-held key: deterministic
//! (equal values give equal masks, so joins and GROUP BY still work on masked output) but not
//! reversible by enumerating a small domain without the key.

use crate::error::MaskError;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// HMAC-SHA256 of `value` under `key`.
pub(crate) fn mac(key: &[u8], value: &[u8]) -> Result<[u8; 32], MaskError> {
    if key.is_empty() {
        return Err(MaskError::EmptyKey);
    }
    // HMAC accepts keys of any length; the error arm is unreachable but kept typed.
    let mut m = HmacSha256::new_from_slice(key).map_err(|_| MaskError::EmptyKey)?;
    m.update(value);
    Ok(m.finalize().into_bytes().into())
}

/// Appends the lowercase hex of `bytes` to `out`.
pub(crate) fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 0x0f)]);
    }
}

/// 16 hex characters (the first 8 bytes of the MAC): 64 bits is plenty to keep joins
/// collision-free in practice while staying short enough for `name` (63 bytes) columns.
pub(crate) fn hex16(key: &[u8], value: &[u8]) -> Result<Vec<u8>, MaskError> {
    let m = mac(key, value)?;
    let mut out = Vec::with_capacity(16);
    push_hex(&mut out, &m[..8]);
    Ok(out)
}

/// Decodes hex digits (either case) into bytes; `None` on odd length or a non-hex byte.
pub(crate) fn decode_hex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks_exact(2)
        .map(|pair| Some(nibble(*pair.first()?)? << 4 | nibble(*pair.get(1)?)?))
        .collect()
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

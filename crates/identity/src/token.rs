//! Token strings: making them, hashing them, and checking one presented in cleartext.
//!
//! Format: `gh_` followed by 32 random bytes in unpadded base64url (43 characters). The prefix
//! makes a leaked token recognisable to secret scanners; 256 bits make guessing hopeless, which
//! is also why a plain (unsalted) SHA-256 is a sound way to store it: there is no dictionary
//! to attack, unlike with passwords.

use crate::IdentityError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use model::TokenRecord;
use rand::RngCore;
use sha2::{Digest, Sha256};
use store::TokenStore;
use subtle::ConstantTimeEq;

/// Every Gatehouse token starts with this.
pub const TOKEN_PREFIX: &str = "gh_";

/// Random bytes in a token.
const TOKEN_BYTES: usize = 32;

/// Longer inputs cannot be tokens; they are refused before hashing.
const MAX_TOKEN_LEN: usize = 256;

/// A new random token (`gh_` + 256 random bits, base64url without padding).
pub fn generate_token(rng: &mut impl RngCore) -> String {
    let mut bytes = [0u8; TOKEN_BYTES];
    rng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Lower-case hex SHA-256 of the token string: the form tokens are stored and looked up by.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Checks a token presented in cleartext (e.g. over TLS) for `identity` at `now`. Returns the
/// record when the token exists, belongs to `identity` and is neither expired nor revoked;
/// `None` otherwise, without saying which check failed.
pub fn verify_cleartext(
    store: &dyn TokenStore,
    identity: &str,
    token: &str,
    now: i64,
) -> Result<Option<TokenRecord>, IdentityError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let hash = hash_token(token);
    // The look-up is by hash, so its timing depends on the hash, not on how much of the
    // secret matched; the explicit comparison below is constant-time for the same reason.
    let Some(rec) = store.token_by_hash(&hash)? else {
        return Ok(None);
    };
    let same_hash: bool = rec.token_hash.as_bytes().ct_eq(hash.as_bytes()).into();
    if same_hash && rec.identity == identity && rec.is_active(now) {
        Ok(Some(rec))
    } else {
        Ok(None)
    }
}

/// Checks a bearer token (the admin API): the record of whoever holds it, when it exists and
/// is neither expired nor revoked.
pub fn verify_bearer(
    store: &dyn TokenStore,
    token: &str,
    now: i64,
) -> Result<Option<TokenRecord>, IdentityError> {
    if token.len() > MAX_TOKEN_LEN {
        return Ok(None);
    }
    let hash = hash_token(token);
    let Some(rec) = store.token_by_hash(&hash)? else {
        return Ok(None);
    };
    let same_hash: bool = rec.token_hash.as_bytes().ct_eq(hash.as_bytes()).into();
    Ok((same_hash && rec.is_active(now)).then_some(rec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn tokens_have_the_documented_shape() {
        let mut rng = StdRng::seed_from_u64(1);
        let token = generate_token(&mut rng);
        assert!(token.starts_with("gh_"));
        assert_eq!(token.len(), 3 + 43);
        let body = token.trim_start_matches("gh_");
        assert_eq!(URL_SAFE_NO_PAD.decode(body).map(|b| b.len()).ok(), Some(32));
        assert_ne!(token, generate_token(&mut rng));
    }

    #[test]
    fn hash_is_hex_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

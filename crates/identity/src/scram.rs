//! SCRAM-SHA-256 verifiers (RFC 5802, RFC 7677) for tokens, and the server-side proof checks.
//!
//! From the secret: `SaltedPassword = PBKDF2-HMAC-SHA-256(secret, salt, i)`,
//! `ClientKey = HMAC(SaltedPassword, "Client Key")`, `StoredKey = SHA-256(ClientKey)`,
//! `ServerKey = HMAC(SaltedPassword, "Server Key")`. Only StoredKey and ServerKey are kept.
//!
//! SCRAM normalizes passwords with SASLprep (RFC 4013) first. Tokens are printable ASCII
//! (`gh_` + base64url), which SASLprep leaves unchanged, so the secret is used as is; this
//! matches what libpq and other clients compute for the same string.

use hmac::{Hmac, Mac};
use model::ScramVerifier;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// PBKDF2 iterations for new verifiers: PostgreSQL's default (`scram_iterations`), which
/// clients expect and handle quickly.
pub const DEFAULT_ITERATIONS: u32 = 4096;

/// Bytes of a new salt (PostgreSQL uses 16 too).
pub const SALT_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// The verifier of `secret` with `salt` and `iterations` (see the module docs).
pub fn scram_verifier(secret: &str, salt: &[u8], iterations: u32) -> ScramVerifier {
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(secret.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    ScramVerifier {
        salt: salt.to_vec(),
        iterations,
        stored_key: Sha256::digest(client_key).into(),
        server_key: hmac(&salted, b"Server Key"),
    }
}

/// Whether `proof` (the decoded `p=` attribute of client-final-message) proves knowledge of the
/// secret behind `verifier` for this exchange's `auth_message` (RFC 5802 §3:
/// client-first-message-bare + "," + server-first-message + "," +
/// client-final-message-without-proof). Compares in constant time.
pub fn client_proof_matches(verifier: &ScramVerifier, auth_message: &[u8], proof: &[u8]) -> bool {
    if proof.len() != 32 {
        return false;
    }
    let client_signature = hmac(&verifier.stored_key, auth_message);
    let mut client_key = [0u8; 32];
    for (k, (p, s)) in client_key
        .iter_mut()
        .zip(proof.iter().zip(client_signature))
    {
        *k = p ^ s;
    }
    let stored_key: [u8; 32] = Sha256::digest(client_key).into();
    stored_key.ct_eq(&verifier.stored_key).into()
}

/// ServerSignature = HMAC(ServerKey, AuthMessage): what the server returns (`v=`) so the
/// client knows the server held the verifier.
pub fn server_signature(verifier: &ScramVerifier, auth_message: &[u8]) -> [u8; 32] {
    hmac(&verifier.server_key, auth_message)
}

/// A salt for an identity that has no active token, derived from a server secret so it is the
/// same on every attempt (a random one would differ between attempts and reveal that the
/// identity does not exist). Same length as real salts.
pub fn fake_salt(server_secret: &[u8], identity: &str) -> Vec<u8> {
    let mut msg = b"gatehouse fake scram salt\0".to_vec();
    msg.extend_from_slice(identity.as_bytes());
    let mut salt = hmac(server_secret, &msg).to_vec();
    salt.truncate(SALT_LEN);
    salt
}

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC is defined for keys of any length (RFC 2104 §2: longer keys are hashed first), and
    // `new_from_slice` for `Hmac` never fails; the fallback only avoids a panic path.
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        return [0u8; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_salt_is_stable_per_identity_and_secret() {
        let a = fake_salt(b"secret", "ghost");
        assert_eq!(a.len(), SALT_LEN);
        assert_eq!(a, fake_salt(b"secret", "ghost"));
        assert_ne!(a, fake_salt(b"secret", "ghost2"));
        assert_ne!(a, fake_salt(b"other", "ghost"));
    }

    #[test]
    fn hmac_accepts_long_keys() {
        assert_ne!(hmac(&[7u8; 200], b"x"), [0u8; 32]);
    }

    #[test]
    fn short_or_long_proofs_never_match() {
        let v = scram_verifier("gh_x", b"salt", 1);
        assert!(!client_proof_matches(&v, b"m", &[0u8; 31]));
        assert!(!client_proof_matches(&v, b"m", &[0u8; 33]));
        assert!(!client_proof_matches(&v, b"m", &[]));
    }
}

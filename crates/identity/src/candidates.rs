//! Which tokens a SCRAM exchange for one identity is checked against.
//!
//! The server must send the salt and iteration count before it learns which token the client
//! holds, so every active token of an identity shares one salt (see `issue`). The candidates
//! are the active tokens sharing the newest active token's salt and iterations; the client's
//! proof is checked against each of their StoredKeys. Tokens left on another salt (only possible
//! when two issues for a brand-new identity race) cannot pass SCRAM, but still pass cleartext.

use crate::scram::{client_proof_matches, fake_salt, DEFAULT_ITERATIONS};
use crate::IdentityError;
use model::TokenRecord;
use store::TokenStore;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCandidates {
    /// The salt to send in server-first-message.
    pub salt: Vec<u8>,
    /// The iteration count to send.
    pub iterations: u32,
    /// Active tokens with this salt and count; empty for a fake (unknown identity).
    pub tokens: Vec<TokenRecord>,
}

impl ScramCandidates {
    /// Plausible parameters for an identity without active tokens (see [`fake_salt`]): the
    /// exchange runs as usual and fails at the proof, revealing nothing.
    pub fn fake(server_secret: &[u8], identity: &str) -> Self {
        ScramCandidates {
            salt: fake_salt(server_secret, identity),
            iterations: DEFAULT_ITERATIONS,
            tokens: Vec::new(),
        }
    }

    /// The token whose verifier the client's proof matches, if any. Every candidate is
    /// checked (no early exit), so timing does not reveal how many tokens there are before it.
    pub fn match_proof(&self, auth_message: &[u8], proof: &[u8]) -> Option<&TokenRecord> {
        let mut found = None;
        for rec in &self.tokens {
            if client_proof_matches(&rec.scram, auth_message, proof) && found.is_none() {
                found = Some(rec);
            }
        }
        found
    }
}

/// The candidates for `identity` at `now`, or `None` when it has no active token.
pub fn scram_candidates(
    store: &dyn TokenStore,
    identity: &str,
    now: i64,
) -> Result<Option<ScramCandidates>, IdentityError> {
    let active: Vec<TokenRecord> = store
        .tokens_for_identity(identity)?
        .into_iter()
        .filter(|t| t.is_active(now))
        .collect();
    let Some(newest) = newest(&active) else {
        return Ok(None);
    };
    let (salt, iterations) = (newest.scram.salt.clone(), newest.scram.iterations);
    let tokens = active
        .into_iter()
        .filter(|t| t.scram.salt == salt && t.scram.iterations == iterations)
        .collect();
    Ok(Some(ScramCandidates {
        salt,
        iterations,
        tokens,
    }))
}

/// [`scram_candidates`], with [`ScramCandidates::fake`] standing in when there are none.
pub fn scram_candidates_or_fake(
    store: &dyn TokenStore,
    identity: &str,
    now: i64,
    server_secret: &[u8],
) -> Result<ScramCandidates, IdentityError> {
    Ok(scram_candidates(store, identity, now)?
        .unwrap_or_else(|| ScramCandidates::fake(server_secret, identity)))
}

/// The most recently created token; on equal times the one listed last (stores list oldest
/// first, in insertion order).
pub(crate) fn newest(tokens: &[TokenRecord]) -> Option<&TokenRecord> {
    // `max_by_key` returns the last of equal maxima.
    tokens.iter().max_by_key(|t| t.created_at)
}

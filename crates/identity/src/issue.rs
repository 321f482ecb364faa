//! Issuing a token: validate the request, pick the identity's shared SCRAM salt, store the
//! record, and hand the token back once (it is not kept anywhere).

use crate::candidates::newest;
use crate::names::{validate_group_name, validate_identity_name};
use crate::scram::{scram_verifier, DEFAULT_ITERATIONS, SALT_LEN};
use crate::token::{generate_token, hash_token};
use crate::IdentityError;
use model::{IdentityKind, TokenRecord};
use rand::RngCore;
use store::TokenStore;

/// Random bytes in a token's public id (16 hex characters).
pub const TOKEN_ID_BYTES: usize = 8;

/// What to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRequest {
    pub identity: String,
    pub kind: IdentityKind,
    pub groups: Vec<String>,
    /// Lifetime in seconds (see [`crate::parse_ttl`]); must be positive.
    pub ttl_secs: u64,
}

/// Issues a token for `req` at `now` (epoch seconds) and stores its record. Returns the token
/// (show it once) and the stored record.
///
/// All active tokens of an identity share one SCRAM salt and iteration count (the server sends
/// them before it knows which token the client holds), so the newest active token's are reused;
/// a fresh 16-byte salt is drawn only when the identity has none. An identity is either human or
/// agent: issuing the other kind while tokens of one kind are active is refused. Duplicate
/// groups are dropped, order kept.
pub fn issue_token(
    store: &dyn TokenStore,
    req: &IssueRequest,
    now: i64,
    rng: &mut impl RngCore,
) -> Result<(String, TokenRecord), IdentityError> {
    validate_identity_name(&req.identity)?;
    let groups = dedup_groups(&req.groups)?;
    let expires_at = expiry(now, req.ttl_secs)?;

    let active: Vec<TokenRecord> = store
        .tokens_for_identity(&req.identity)?
        .into_iter()
        .filter(|t| t.is_active(now))
        .collect();
    if let Some(other) = active.iter().find(|t| t.kind != req.kind) {
        return Err(IdentityError::KindMismatch {
            identity: req.identity.clone(),
            existing: other.kind,
            requested: req.kind,
        });
    }
    let (salt, iterations) = match newest(&active) {
        Some(t) => (t.scram.salt.clone(), t.scram.iterations),
        None => {
            let mut salt = vec![0u8; SALT_LEN];
            rng.fill_bytes(&mut salt);
            (salt, DEFAULT_ITERATIONS)
        }
    };

    let token = generate_token(rng);
    let mut id = [0u8; TOKEN_ID_BYTES];
    rng.fill_bytes(&mut id);
    let rec = TokenRecord {
        id: hex::encode(id),
        identity: req.identity.clone(),
        kind: req.kind,
        groups,
        created_at: now,
        expires_at,
        revoked_at: None,
        token_hash: hash_token(&token),
        scram: scram_verifier(&token, &salt, iterations),
    };
    store.insert_token(&rec)?;
    Ok((token, rec))
}

fn dedup_groups(groups: &[String]) -> Result<Vec<String>, IdentityError> {
    let mut out: Vec<String> = Vec::with_capacity(groups.len());
    for g in groups {
        validate_group_name(g)?;
        if !out.contains(g) {
            out.push(g.clone());
        }
    }
    Ok(out)
}

fn expiry(now: i64, ttl_secs: u64) -> Result<i64, IdentityError> {
    let invalid = |reason: &str| IdentityError::InvalidTtl {
        input: format!("{ttl_secs}s"),
        reason: reason.to_owned(),
    };
    if ttl_secs == 0 {
        return Err(invalid("must be positive"));
    }
    i64::try_from(ttl_secs)
        .ok()
        .and_then(|ttl| now.checked_add(ttl))
        .ok_or_else(|| invalid("too long"))
}

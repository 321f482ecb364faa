//! Who a client is: Gatehouse tokens (issuing, hashing, checking), their SCRAM-SHA-256
//! verifiers, and the names identities and groups may have.
//!
//! A token is shown once, at issue, and stored only as its SHA-256 (for cleartext checks and
//! look-ups) plus a SCRAM verifier (for password-less proof over plain connections). Time and
//! randomness come in as arguments so expiry and issuance test deterministically.
//!
//! This crate knows nothing of SQL or sockets: the SCRAM message exchange itself belongs to the
//! wire codec and proxy, which call [`ScramCandidates::match_proof`] and
//! [`server_signature`] here. Persistence is the `store` crate's.
#![forbid(unsafe_code)]

mod candidates;
mod error;
mod issue;
mod names;
pub mod oidc;
mod scram;
mod token;
mod ttl;

pub use candidates::{scram_candidates, scram_candidates_or_fake, ScramCandidates};
pub use error::IdentityError;
pub use issue::{issue_token, IssueRequest, TOKEN_ID_BYTES};
pub use names::{validate_group_name, validate_identity_name, MAX_NAME_LEN};
pub use scram::{
    client_proof_matches, fake_salt, scram_verifier, server_signature, DEFAULT_ITERATIONS, SALT_LEN,
};
pub use token::{generate_token, hash_token, verify_bearer, verify_cleartext, TOKEN_PREFIX};
pub use ttl::parse_ttl;

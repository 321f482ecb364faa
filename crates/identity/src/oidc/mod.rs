//! Identities from an OpenID Provider: JWTs verified against the provider's published keys
//! (workload tokens presented as passwords, ID tokens of the login flows) and mapped to
//! Gatehouse identities and groups by per-provider rules.

mod provider;
mod spec;
mod verify;

pub use provider::{check_url, Metadata, Provider, Providers, Refreshed, MIN_REFRESH};
pub use spec::ProviderSpec;
pub use verify::{
    looks_like_jwt, map_claims, parse_algorithm, peek, verify, Purpose, Refusal, Unverified,
    Verified, MAX_JWT_BYTES,
};

#[cfg(test)]
mod tests;

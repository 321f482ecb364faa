//! Verifying a JWT (an ID token from a login flow, or a workload token presented as a
//! password) against one provider's keys, and mapping its claims to a Gatehouse identity.
//!
//! Everything is checked here, by Gatehouse's clock, with a precise reason for each refusal
//! (for the audit trail; clients only ever see "authentication failed"): size, shape, the
//! header's algorithm against the provider's allow-list (never `none`, never an HMAC
//! algorithm: keys are public), the key by `kid`, the signature (`jsonwebtoken`, which also
//! checks that the key's type fits the algorithm), then `iss`, `aud`, `exp`, `nbf`, `iat`
//! with bounded clock skew, and the claims the mapping needs.

use super::spec::ProviderSpec;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use model::Identity;
use serde_json::Value;
use std::collections::HashSet;
use std::fmt;

/// Longest token accepted, in bytes (before anything is decoded).
pub const MAX_JWT_BYTES: usize = 16 * 1024;

/// Why a token was refused. Never contains the token itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    TooLarge(usize),
    Malformed(&'static str),
    /// No configured provider has this `iss`.
    UnknownIssuer(String),
    AlgorithmNotAllowed(String),
    /// No key with this `kid` (after a refresh of the provider's keys, when allowed).
    UnknownKey(Option<String>),
    /// The provider's keys could not be fetched.
    KeysUnavailable(String),
    BadSignature,
    WrongAudience,
    Expired {
        exp: i64,
        now: i64,
    },
    NotYetValid {
        nbf: i64,
        now: i64,
    },
    IssuedInFuture {
        iat: i64,
        now: i64,
    },
    TooOld {
        iat: i64,
        now: i64,
    },
    MissingClaim(String),
    /// The identity claim's value is not a usable identity name.
    BadIdentity(String),
    /// The login's `nonce` is not the one this login sent.
    WrongNonce,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::TooLarge(n) => {
                write!(f, "token too large ({n} bytes, at most {MAX_JWT_BYTES})")
            }
            Refusal::Malformed(what) => write!(f, "malformed token: {what}"),
            Refusal::UnknownIssuer(iss) => {
                write!(f, "issuer {iss:?} is not a configured identity provider")
            }
            Refusal::AlgorithmNotAllowed(alg) => write!(f, "algorithm {alg:?} is not allowed"),
            Refusal::UnknownKey(Some(kid)) => {
                write!(f, "no key with kid {kid:?} in the provider's key set")
            }
            Refusal::UnknownKey(None) => write!(
                f,
                "the token names no key (kid) and the provider has several"
            ),
            Refusal::KeysUnavailable(e) => {
                write!(f, "the provider's keys could not be fetched: {e}")
            }
            Refusal::BadSignature => write!(f, "bad signature"),
            Refusal::WrongAudience => write!(f, "wrong audience"),
            Refusal::Expired { exp, now } => write!(f, "expired (exp {exp}, now {now})"),
            Refusal::NotYetValid { nbf, now } => write!(f, "not yet valid (nbf {nbf}, now {now})"),
            Refusal::IssuedInFuture { iat, now } => {
                write!(f, "issued in the future (iat {iat}, now {now})")
            }
            Refusal::TooOld { iat, now } => write!(f, "issued too long ago (iat {iat}, now {now})"),
            Refusal::MissingClaim(c) => write!(f, "claim {c:?} missing or not a string"),
            Refusal::BadIdentity(why) => write!(f, "identity claim unusable: {why}"),
            Refusal::WrongNonce => write!(f, "nonce does not match the login"),
        }
    }
}

/// A verified token: who it names, for how long, and where from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub identity: Identity,
    /// The provider's configured name.
    pub provider: String,
    pub issuer: String,
    pub subject: String,
    /// `exp` of the token (epoch seconds).
    pub expires_at: i64,
    /// Groups the token carried that the mapping ignored (not allowed, or not valid names).
    pub ignored_groups: Vec<String>,
}

/// The header and payload of a compact JWS, decoded but not verified. Only to route a token
/// to its provider and to give precise reasons; nothing from it is trusted before `verify`.
#[derive(Debug)]
pub struct Unverified {
    pub alg: String,
    pub kid: Option<String>,
    pub claims: Value,
}

/// Whether `s` has the shape of a compact JWS (three base64url parts, a JSON header first).
pub fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.bytes().filter(|b| *b == b'.').count() == 2
}

pub fn peek(token: &str) -> Result<Unverified, Refusal> {
    if token.len() > MAX_JWT_BYTES {
        return Err(Refusal::TooLarge(token.len()));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(_s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Refusal::Malformed("not three dot-separated parts"));
    };
    let header: Value = decode_part(h).ok_or(Refusal::Malformed("header is not base64url JSON"))?;
    let claims: Value =
        decode_part(p).ok_or(Refusal::Malformed("payload is not base64url JSON"))?;
    if !claims.is_object() {
        return Err(Refusal::Malformed("payload is not a JSON object"));
    }
    let alg = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(Refusal::Malformed("header has no alg"))?
        .to_owned();
    if header.get("crit").is_some() {
        // RFC 7515 §4.1.11: extensions we do not understand must be refused.
        return Err(Refusal::Malformed("header has critical extensions"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(Refusal::Malformed("kid is not a string")),
    };
    Ok(Unverified { alg, kid, claims })
}

fn decode_part(part: &str) -> Option<Value> {
    let bytes = URL_SAFE_NO_PAD.decode(part).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Asymmetric algorithms a provider may allow (HMAC ones never: the keys are public).
pub fn parse_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// What a verification is for: a login's ID token must carry the login's nonce.
#[derive(Debug, Clone, Copy)]
pub enum Purpose<'a> {
    /// A JWT presented as a password.
    Password,
    /// The ID token of a login flow; `nonce` when the flow sent one.
    Login { nonce: Option<&'a str> },
}

/// Verifies `token` (already peeked) with `keys` of the provider `spec` at `now`.
pub fn verify(
    spec: &ProviderSpec,
    keys: &JwkSet,
    token: &str,
    peeked: &Unverified,
    now: i64,
    purpose: Purpose<'_>,
) -> Result<Verified, Refusal> {
    let alg = parse_algorithm(&peeked.alg)
        .filter(|a| spec.algorithms.contains(a))
        .ok_or_else(|| Refusal::AlgorithmNotAllowed(peeked.alg.clone()))?;
    let jwk = match &peeked.kid {
        Some(kid) => keys
            .keys
            .iter()
            .find(|k| k.common.key_id.as_deref() == Some(kid.as_str())),
        None if keys.keys.len() == 1 => keys.keys.first(),
        None => None,
    }
    .ok_or_else(|| Refusal::UnknownKey(peeked.kid.clone()))?;
    // A key published for one algorithm is not used with another.
    if let Some(key_alg) = jwk.common.key_algorithm {
        if format!("{key_alg:?}") != peeked.alg {
            return Err(Refusal::AlgorithmNotAllowed(format!(
                "{} (the key is for {key_alg:?})",
                peeked.alg
            )));
        }
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| Refusal::UnknownKey(peeked.kid.clone()))?;
    // Only the signature here; every claim is checked below with Gatehouse's clock.
    let mut validation = Validation::new(alg);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims = HashSet::new();
    let data =
        jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => {
                Refusal::AlgorithmNotAllowed(peeked.alg.clone())
            }
            _ => Refusal::BadSignature,
        })?;
    let claims = data.claims;
    check_claims(spec, &claims, now, purpose)?;
    map_identity(spec, &claims)
}

fn check_claims(
    spec: &ProviderSpec,
    claims: &Value,
    now: i64,
    purpose: Purpose<'_>,
) -> Result<(), Refusal> {
    let iss = string_claim(claims, "iss")?;
    if iss != spec.issuer {
        return Err(Refusal::UnknownIssuer(iss.to_owned()));
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => return Err(Refusal::MissingClaim("aud".into())),
    };
    // An ID token is for the login client; a password JWT for a workload audience, and never
    // the login client's (an ID token is not a workload credential).
    let client = spec.client_id.as_deref();
    let accepted: Vec<&str> = match purpose {
        Purpose::Login { .. } => client.into_iter().collect(),
        Purpose::Password => spec.audience.iter().map(String::as_str).collect(),
    };
    if !audiences.iter().any(|a| accepted.contains(a)) {
        return Err(Refusal::WrongAudience);
    }
    if let (Purpose::Password, Some(c)) = (purpose, client) {
        if audiences.contains(&c) {
            return Err(Refusal::WrongAudience);
        }
    }
    // OIDC Core §3.1.3.7: with several audiences, `azp` must be the client.
    if let (Purpose::Login { .. }, true) = (purpose, audiences.len() > 1) {
        let azp = claims.get("azp").and_then(Value::as_str);
        if azp.is_none() || azp != client {
            return Err(Refusal::WrongAudience);
        }
    }
    let skew = spec.clock_skew_secs;
    let exp = int_claim(claims, "exp")?.ok_or_else(|| Refusal::MissingClaim("exp".into()))?;
    if now >= exp.saturating_add(skew) {
        return Err(Refusal::Expired { exp, now });
    }
    if let Some(nbf) = int_claim(claims, "nbf")? {
        if now.saturating_add(skew) < nbf {
            return Err(Refusal::NotYetValid { nbf, now });
        }
    }
    if let Some(iat) = int_claim(claims, "iat")? {
        if now.saturating_add(skew) < iat {
            return Err(Refusal::IssuedInFuture { iat, now });
        }
        if let Some(max_age) = spec.max_token_age_secs {
            if now.saturating_sub(iat) > max_age.saturating_add(skew) {
                return Err(Refusal::TooOld { iat, now });
            }
        }
    } else if spec.max_token_age_secs.is_some() {
        return Err(Refusal::MissingClaim("iat".into()));
    }
    if let Purpose::Login { nonce: Some(want) } = purpose {
        let got = claims.get("nonce").and_then(Value::as_str);
        let same = got
            .is_some_and(|g| subtle::ConstantTimeEq::ct_eq(g.as_bytes(), want.as_bytes()).into());
        if !same {
            return Err(Refusal::WrongNonce);
        }
    }
    Ok(())
}

fn string_claim<'a>(claims: &'a Value, name: &str) -> Result<&'a str, Refusal> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::MissingClaim(name.to_owned()))
}

/// A NumericDate claim: absent is `None`; present but not a number is refused.
fn int_claim(claims: &Value, name: &str) -> Result<Option<i64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(v) => v
            .as_i64()
            .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or(Refusal::Malformed("a time claim is not a number")),
    }
}

/// A claim by name; a name with `/` in it may also be a path into nested objects
/// (`realm_access/roles`) when no top-level claim has that exact name (namespaced claims such
/// as `https://example.com/groups` are top-level names).
fn claim<'a>(claims: &'a Value, name: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(name) {
        return Some(v);
    }
    if name.contains("://") {
        return None;
    }
    name.split('/').try_fold(claims, |v, part| v.get(part))
}

/// The identity and groups `claims` give under `spec`'s mapping (for claims the provider
/// vouches for directly, such as its userinfo answer over TLS; `verify` uses it after the
/// signature and time checks).
pub fn map_claims(spec: &ProviderSpec, claims: &Value) -> Result<Verified, Refusal> {
    map_identity(spec, claims)
}

fn map_identity(spec: &ProviderSpec, claims: &Value) -> Result<Verified, Refusal> {
    let subject = string_claim(claims, "sub")?.to_owned();
    let raw = claim(claims, &spec.identity_claim)
        .and_then(Value::as_str)
        .ok_or_else(|| Refusal::MissingClaim(spec.identity_claim.clone()))?;
    // An email names a person only once the provider verified it (self sign-up and profile
    // edits let anyone claim any address).
    if spec.identity_claim == "email" && claims.get("email_verified") != Some(&Value::Bool(true)) {
        return Err(Refusal::BadIdentity("email_verified is not true".into()));
    }
    let name = spec.identity_name(raw);
    crate::validate_identity_name(&name).map_err(|e| Refusal::BadIdentity(e.to_string()))?;
    // A string is one group (a group name may have spaces: split, its words would count).
    let listed: Vec<String> = match claim(claims, &spec.groups_claim) {
        Some(Value::Array(list)) => list
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    };
    let (groups, ignored_groups) = spec.map_groups(&listed);
    let kind = spec.kind;
    let expires_at = int_claim(claims, "exp")?.unwrap_or_default();
    Ok(Verified {
        identity: Identity { name, kind, groups },
        provider: spec.name.clone(),
        issuer: spec.issuer.clone(),
        subject,
        expires_at,
        ignored_groups,
    })
}

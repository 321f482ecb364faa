//! `[[identity_providers]]`: OpenID Providers whose tokens Gatehouse accepts (JWTs as
//! passwords, ID tokens of `gatehouse login`). Every entry is checked here with the key path
//! of each error; the providers themselves are asked nothing until the server starts.

use super::{raw::RawIdentityProvider, Secrets};
use identity::oidc::{check_url, parse_algorithm, ProviderSpec};
use model::IdentityKind;

/// Longest credential a login may be given, whatever the config says.
const MAX_TTL_CAP_SECS: i64 = 7 * 24 * 3600;

pub fn build(
    raw: &[RawIdentityProvider],
    secrets: Secrets,
    errors: &mut Vec<String>,
) -> Vec<ProviderSpec> {
    let mut specs = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        let key = format!("identity_providers[{i}]");
        let before = errors.len();
        if identity::validate_group_name(&p.name).is_err() {
            errors.push(format!(
                "{key}.name: {:?} must be 1 to 63 ASCII letters, digits or . _ @ -",
                p.name
            ));
        }
        if raw.iter().take(i).any(|o| o.name == p.name) {
            errors.push(format!("{key}.name: duplicate provider {:?}", p.name));
        }
        if raw.iter().take(i).any(|o| o.issuer == p.issuer) {
            errors.push(format!(
                "{key}.issuer: another provider has issuer {:?}",
                p.issuer
            ));
        }
        if let Err(e) = check_url(&p.issuer) {
            errors.push(format!("{key}.issuer: {e}"));
        }
        // JWTs as passwords need an audience of their own; logins need a client id.
        let audience: Vec<String> = p.audience.clone().unwrap_or_default();
        if audience.is_empty() && p.client_id.is_none() {
            errors.push(format!(
                "{key}.audience: missing (JWTs as passwords need it; logins need client_id)"
            ));
        }
        if let Some(c) = p.client_id.as_ref().filter(|c| audience.contains(c)) {
            errors.push(format!(
                "{key}.audience: must not include the login client {c:?} (an ID token is not a password)"
            ));
        }
        if audience.iter().any(|a| a.trim().is_empty()) {
            errors.push(format!("{key}.audience: an audience is empty"));
        }
        let client_secret = match (&p.client_secret_env, &p.client_id) {
            (Some(_), None) => {
                errors.push(format!("{key}.client_secret_env: needs client_id"));
                None
            }
            (Some(var), Some(_)) => match std::env::var(var) {
                Ok(s) if !s.is_empty() => Some(s),
                _ if secrets == Secrets::Optional => None,
                _ => {
                    errors.push(format!(
                        "{key}.client_secret_env: environment variable {var} is not set"
                    ));
                    None
                }
            },
            (None, _) => None,
        };
        let kind = match p.kind.as_deref() {
            None => IdentityKind::Agent,
            Some(k) => k.parse().unwrap_or_else(|e| {
                errors.push(format!("{key}.kind: {e}"));
                IdentityKind::Agent
            }),
        };
        let mut algorithms = Vec::new();
        for a in p
            .algorithms
            .clone()
            .unwrap_or_else(|| vec!["RS256".into(), "ES256".into()])
        {
            match parse_algorithm(&a) {
                Some(alg) => algorithms.push(alg),
                None => errors.push(format!(
                    "{key}.algorithms: {a:?} is not allowed (asymmetric only: RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
                )),
            }
        }
        if algorithms.is_empty() && errors.len() == before {
            errors.push(format!("{key}.algorithms: must not be empty"));
        }
        let skew = p.clock_skew_secs.unwrap_or(60);
        if !(0..=300).contains(&skew) {
            errors.push(format!(
                "{key}.clock_skew_secs: must be 0 to 300, got {skew}"
            ));
        }
        if let Some(age) = p.max_token_age_secs {
            if age <= 0 {
                errors.push(format!(
                    "{key}.max_token_age_secs: must be positive, got {age}"
                ));
            }
        }
        let ttl = match p.max_credential_ttl.as_deref() {
            None => 8 * 3600,
            Some(t) => match identity::parse_ttl(t) {
                Ok(secs) if secs <= MAX_TTL_CAP_SECS as u64 => secs as i64,
                Ok(_) => {
                    errors.push(format!("{key}.max_credential_ttl: at most 7d"));
                    0
                }
                Err(e) => {
                    errors.push(format!("{key}.max_credential_ttl: {e}"));
                    0
                }
            },
        };
        let recheck = p.recheck_secs.unwrap_or(300);
        if !(0..=86_400).contains(&recheck) {
            errors.push(format!(
                "{key}.recheck_secs: must be 0 (never) to 86400, got {recheck}"
            ));
        }
        if p.allowed_groups
            .iter()
            .flatten()
            .any(|g| g.trim().is_empty())
        {
            errors.push(format!("{key}.allowed_groups: a group is empty"));
        }
        for (from, to) in &p.group_map {
            if identity::validate_group_name(to).is_err() {
                errors.push(format!(
                    "{key}.group_map.{from:?}: {to:?} is not a valid Gatehouse group name"
                ));
            }
        }
        for (what, claim) in [
            ("identity_claim", &p.identity_claim),
            ("groups_claim", &p.groups_claim),
        ] {
            if claim.as_deref().is_some_and(|c| c.trim().is_empty()) {
                errors.push(format!("{key}.{what}: must not be empty"));
            }
        }
        if errors.len() != before {
            continue;
        }
        let mut spec = ProviderSpec::new(&p.name, &p.issuer, "");
        spec.audience = audience;
        spec.client_id = p.client_id.clone();
        spec.client_secret = client_secret;
        if let Some(s) = &p.scopes {
            spec.scopes = s.clone();
            if !spec.scopes.iter().any(|s| s == "openid") {
                spec.scopes.insert(0, "openid".into());
            }
        }
        if let Some(c) = &p.identity_claim {
            spec.identity_claim = c.clone();
        }
        if let Some(c) = &p.groups_claim {
            spec.groups_claim = c.clone();
        }
        spec.kind = kind;
        spec.allowed_groups = p
            .allowed_groups
            .as_ref()
            .map(|l| l.iter().cloned().collect());
        spec.group_map = p.group_map.clone();
        spec.algorithms = algorithms;
        spec.clock_skew_secs = skew;
        spec.max_token_age_secs = p.max_token_age_secs;
        spec.max_credential_ttl_secs = ttl;
        spec.recheck_secs = recheck;
        specs.push(spec);
    }
    specs
}

//! One configured identity provider, as the verifier needs it (the server's config layer
//! builds it from `[[identity_providers]]`).

use jsonwebtoken::Algorithm;
use model::IdentityKind;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSpec {
    /// Gatehouse's name for it (in config, the audit trail and `gatehouse login --provider`).
    pub name: String,
    /// Exactly the `iss` its tokens carry; its discovery document is at
    /// `issuer + "/.well-known/openid-configuration"`.
    pub issuer: String,
    /// Accepted `aud` values of JWTs presented as passwords (empty: none are accepted). ID
    /// tokens of the login flows must name `client_id` instead, and a password JWT naming
    /// `client_id` is refused (an ID token is not a workload credential).
    pub audience: Vec<String>,
    /// For the login flows (device grant, authorization code + PKCE).
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Vec<String>,
    /// Claim naming the identity (`sub`, `email`, `preferred_username`, a namespaced claim,
    /// or a path like `realm_access/roles`).
    pub identity_claim: String,
    pub groups_claim: String,
    /// Kind of identities from JWTs presented as passwords (login flows are always human).
    pub kind: IdentityKind,
    /// IdP groups that count besides `group_map` keys (which always count); `None`: all
    /// of them when there is no `group_map`, none otherwise.
    pub allowed_groups: Option<BTreeSet<String>>,
    /// IdP group → Gatehouse group.
    pub group_map: BTreeMap<String, String>,
    pub algorithms: Vec<Algorithm>,
    pub clock_skew_secs: i64,
    /// Refuse tokens whose `iat` is older than this (workload tokens), when set.
    pub max_token_age_secs: Option<i64>,
    /// Longest life of a credential issued for a login.
    pub max_credential_ttl_secs: i64,
    /// How often a login's credential is re-checked at the provider with its refresh token
    /// (0: never).
    pub recheck_secs: i64,
}

impl ProviderSpec {
    /// A spec with the defaults the config documents, for `issuer` and `audience`.
    pub fn new(name: &str, issuer: &str, audience: &str) -> ProviderSpec {
        ProviderSpec {
            name: name.to_owned(),
            issuer: issuer.to_owned(),
            audience: vec![audience.to_owned()],
            client_id: None,
            client_secret: None,
            scopes: vec![
                "openid".into(),
                "email".into(),
                "profile".into(),
                "groups".into(),
            ],
            identity_claim: "sub".into(),
            groups_claim: "groups".into(),
            kind: IdentityKind::Agent,
            allowed_groups: None,
            group_map: BTreeMap::new(),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            clock_skew_secs: 60,
            max_token_age_secs: None,
            max_credential_ttl_secs: 8 * 3600,
            recheck_secs: 300,
        }
    }

    /// The identity name a claim value gives.
    pub fn identity_name(&self, raw: &str) -> String {
        raw.to_owned()
    }

    /// The Gatehouse groups for the IdP's `listed` groups, and those ignored (not allowed,
    /// or not a valid group name after mapping). Sorted, without duplicates.
    pub fn map_groups(&self, listed: &[String]) -> (Vec<String>, Vec<String>) {
        let mut groups = BTreeSet::new();
        let mut ignored = BTreeSet::new();
        for g in listed {
            let mapped = match self.group_map.get(g) {
                Some(to) => Some(to.clone()),
                None => match &self.allowed_groups {
                    Some(allowed) if allowed.contains(g) => Some(g.clone()),
                    Some(_) => None,
                    // A mapping table names the groups that count.
                    None if !self.group_map.is_empty() => None,
                    None => Some(g.clone()),
                },
            };
            match mapped {
                Some(m) if crate::validate_group_name(&m).is_ok() => {
                    groups.insert(m);
                }
                _ => {
                    ignored.insert(g.clone());
                }
            }
        }
        (groups.into_iter().collect(), ignored.into_iter().collect())
    }

    pub fn discovery_url(&self) -> String {
        format!(
            "{}/.well-known/openid-configuration",
            self.issuer.trim_end_matches('/')
        )
    }
}

/// Everything but the client secret.
impl std::fmt::Debug for ProviderSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSpec")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "(set)"),
            )
            .field("identity_claim", &self.identity_claim)
            .field("groups_claim", &self.groups_claim)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

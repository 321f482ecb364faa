//! A configured provider at run time: its discovery document and key set, fetched over HTTP
//! and cached. An unknown `kid` makes one refresh of the keys (key rotation), at most once
//! every [`MIN_REFRESH`] per provider, so forged `kid`s cannot make Gatehouse hammer the IdP.

use super::spec::ProviderSpec;
use super::verify::{self, Purpose, Refusal, Unverified, Verified};
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Shortest time between two fetches of one provider's keys.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The parts of the discovery document (OpenID Connect Discovery 1.0) Gatehouse uses.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Metadata {
    pub issuer: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
}

/// What a refresh at the provider gave.
#[derive(Debug)]
pub enum Refreshed {
    /// A token response (with a new ID token and refresh token when the provider sends them).
    Tokens(serde_json::Value),
    /// The provider refused (e.g. `invalid_grant`: the session ended, the user was disabled).
    Refused(String),
    /// The provider could not be asked (network, 5xx): nothing is known.
    Unavailable(String),
}

pub struct Provider {
    pub spec: ProviderSpec,
    http: reqwest::Client,
    metadata: RwLock<Option<Arc<Metadata>>>,
    keys: RwLock<Option<Arc<JwkSet>>>,
    /// When the last key set fetch began, and its failure if it failed.
    last_key_fetch: Mutex<Option<(Instant, Option<String>)>>,
    metadata_failed: Mutex<Option<(Instant, String)>>,
}

impl Provider {
    pub fn new(spec: ProviderSpec, http: reqwest::Client) -> Provider {
        Provider {
            spec,
            http,
            metadata: RwLock::new(None),
            keys: RwLock::new(None),
            last_key_fetch: Mutex::new(None),
            metadata_failed: Mutex::new(None),
        }
    }

    /// The discovery document, fetched once (and again after a failure, at most every
    /// `MIN_REFRESH`). Its `issuer` must be exactly the configured one (OpenID Connect
    /// Discovery §4.3).
    pub async fn metadata(&self) -> Result<Arc<Metadata>, String> {
        if let Some(m) = self
            .metadata
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Ok(m);
        }
        {
            let failed = self
                .metadata_failed
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((at, e)) = &*failed {
                if at.elapsed() < MIN_REFRESH {
                    return Err(e.clone());
                }
            }
        }
        let url = self.spec.discovery_url();
        let fetched = self.get_json::<Metadata>(&url).await.and_then(|m| {
            if m.issuer == self.spec.issuer {
                Ok(m)
            } else {
                Err(format!(
                    "discovery document at {url} names issuer {:?}, not {:?}",
                    m.issuer, self.spec.issuer
                ))
            }
        });
        match fetched {
            Ok(m) => {
                let m = Arc::new(m);
                *self.metadata.write().unwrap_or_else(|p| p.into_inner()) = Some(m.clone());
                Ok(m)
            }
            Err(e) => {
                *self
                    .metadata_failed
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), e.clone()));
                Err(e)
            }
        }
    }

    /// The key set as last fetched, fetching it when there is none yet.
    async fn keys(&self) -> Result<Arc<JwkSet>, String> {
        if let Some(k) = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(k);
        }
        self.fetch_keys().await
    }

    /// Fetches the key set now, unless a fetch began less than `MIN_REFRESH` ago (then the
    /// cached key set, or that fetch's failure): failures are rate-limited as successes are.
    pub async fn fetch_keys(&self) -> Result<Arc<JwkSet>, String> {
        {
            let mut last = self
                .last_key_fetch
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some((at, failure)) = &*last {
                if at.elapsed() < MIN_REFRESH {
                    let cached = self.keys.read().unwrap_or_else(|p| p.into_inner()).clone();
                    return match (cached, failure) {
                        (Some(k), _) => Ok(k),
                        (None, Some(e)) => Err(e.clone()),
                        (None, None) => Err("the key set is being fetched".into()),
                    };
                }
            }
            *last = Some((Instant::now(), None));
        }
        let fetched = self.fetch_key_set().await;
        match fetched {
            Ok(set) => {
                let set = Arc::new(set);
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(set.clone());
                Ok(set)
            }
            Err(e) => {
                *self
                    .last_key_fetch
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some((Instant::now(), Some(e.clone())));
                Err(e)
            }
        }
    }

    /// The provider's signing keys. Keys this verifier cannot read (other key types,
    /// encryption keys) are skipped, not fatal: one odd key must not disable the provider.
    async fn fetch_key_set(&self) -> Result<JwkSet, String> {
        #[derive(Deserialize)]
        struct Raw {
            keys: Vec<serde_json::Value>,
        }
        let m = self.metadata().await?;
        let raw: Raw = self.get_json(&m.jwks_uri).await?;
        let total = raw.keys.len();
        let keys: Vec<jsonwebtoken::jwk::Jwk> = raw
            .keys
            .into_iter()
            .filter(|k| k.get("use").and_then(serde_json::Value::as_str) != Some("enc"))
            .filter_map(|k| serde_json::from_value(k).ok())
            .collect();
        if keys.is_empty() {
            return Err(format!(
                "{}: none of its {total} keys is a signing key this verifier reads",
                m.jwks_uri
            ));
        }
        Ok(JwkSet { keys })
    }

    /// Verifies a token whose `iss` is this provider's.
    pub async fn verify(
        &self,
        token: &str,
        peeked: &Unverified,
        now: i64,
        purpose: Purpose<'_>,
    ) -> Result<Verified, Refusal> {
        let keys = self.keys().await.map_err(Refusal::KeysUnavailable)?;
        match verify::verify(&self.spec, &keys, token, peeked, now, purpose) {
            Err(Refusal::UnknownKey(_)) => {
                // Perhaps the provider rotated its keys since they were fetched.
                let fresh = self.fetch_keys().await.map_err(Refusal::KeysUnavailable)?;
                verify::verify(&self.spec, &fresh, token, peeked, now, purpose)
            }
            other => other,
        }
    }

    /// GET `url` as JSON: http(s) only, no redirects (the client's policy), bounded size.
    async fn get_json<T: for<'de> Deserialize<'de>>(&self, url: &str) -> Result<T, String> {
        check_url(url)?;
        let resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: HTTP {}", resp.status()));
        }
        let body = read_limited(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the expected JSON: {e}"))
    }

    /// POSTs a form to one of the provider's endpoints as the login client (HTTP Basic for a
    /// confidential client, RFC 6749 §2.3.1; `client_id` in the form for a public one); the
    /// HTTP status and the JSON answer.
    pub async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value), String> {
        check_url(url)?;
        let mut form = form.to_vec();
        let mut req = self.http.post(url).header("accept", "application/json");
        match (&self.spec.client_id, &self.spec.client_secret) {
            (Some(id), Some(secret)) => {
                // Both form-urlencoded before Basic encoding.
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                req = req.basic_auth(enc(id), Some(enc(secret)));
            }
            (Some(id), None) => form.push(("client_id", id)),
            _ => {}
        }
        let resp = req
            .form(&form)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = read_limited(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        match serde_json::from_slice(&body) {
            Ok(json) => Ok((status, json)),
            // An error page: the status says what happened.
            Err(_) if status >= 400 => Ok((status, serde_json::Value::Null)),
            Err(e) => Err(format!("POST {url}: HTTP {status}, not JSON: {e}")),
        }
    }

    /// One request to the token endpoint as the login client.
    pub async fn token_request(
        &self,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value), String> {
        let meta = self.metadata().await?;
        let endpoint = meta
            .token_endpoint
            .clone()
            .ok_or_else(|| "it has no token endpoint".to_owned())?;
        self.post_form(&endpoint, form).await
    }

    /// The userinfo claims (OIDC Core §5.3) for an access token; `None` when the provider
    /// has no userinfo endpoint.
    pub async fn userinfo(&self, access_token: &str) -> Result<Option<serde_json::Value>, String> {
        let meta = self.metadata().await?;
        let Some(url) = meta.userinfo_endpoint.clone() else {
            return Ok(None);
        };
        check_url(&url)?;
        let resp = self
            .http
            .get(&url)
            .bearer_auth(access_token)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let body = read_limited(resp, MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| format!("GET {url}: not JSON (signed userinfo is not supported): {e}"))
    }

    /// Asks the provider again with a login's refresh token (RFC 6749 §6). Only a refusal
    /// about the grant itself (`invalid_grant` and the like, any other 4xx) is `Refused`;
    /// the provider being down, busy or misconfigured for this client (5xx, 429,
    /// `temporarily_unavailable`, `server_error`, `invalid_client`, `unauthorized_client`,
    /// no answer) says nothing about the person: `Unavailable`.
    pub async fn refresh(&self, refresh_token: &str) -> Refreshed {
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ];
        let (status, v) = match self.token_request(&form).await {
            Ok(r) => r,
            Err(e) => return Refreshed::Unavailable(e),
        };
        let code = v.get("error").and_then(serde_json::Value::as_str);
        let described = || {
            let code = code.unwrap_or("no error code");
            match v
                .get("error_description")
                .and_then(serde_json::Value::as_str)
            {
                Some(d) => format!("HTTP {status}, {code}: {d}"),
                None => format!("HTTP {status}, {code}"),
            }
        };
        let transient = status >= 500
            || status == 429
            || matches!(
                code,
                Some(
                    "temporarily_unavailable"
                        | "server_error"
                        | "invalid_client"
                        | "unauthorized_client"
                )
            );
        if transient {
            Refreshed::Unavailable(described())
        } else if status >= 400 || code.is_some() {
            Refreshed::Refused(described())
        } else {
            Refreshed::Tokens(v)
        }
    }
}

/// `https://` anywhere; `http://` only to a loopback address (development and tests).
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "{url} must use https:// (http:// only to a loopback address)"
        )),
        other => Err(format!("{url}: scheme {other} is not http(s)")),
    }
}

fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    }
}

async fn read_limited(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > max {
            return Err(format!("response larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Every configured provider.
#[derive(Default)]
pub struct Providers {
    list: Vec<Arc<Provider>>,
}

impl Providers {
    pub fn new(specs: Vec<ProviderSpec>, http: reqwest::Client) -> Providers {
        Providers {
            list: specs
                .into_iter()
                .map(|s| Arc::new(Provider::new(s, http.clone())))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Provider>> {
        self.list.iter()
    }

    pub fn by_name(&self, name: &str) -> Option<&Arc<Provider>> {
        self.list.iter().find(|p| p.spec.name == name)
    }

    /// Verifies a JWT from any configured provider (chosen by its unverified `iss`, then
    /// checked against that provider's keys and rules).
    pub async fn verify(
        &self,
        token: &str,
        now: i64,
        purpose: Purpose<'_>,
    ) -> Result<Verified, Refusal> {
        let peeked = verify::peek(token)?;
        let iss = peeked
            .claims
            .get("iss")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| Refusal::MissingClaim("iss".into()))?;
        let provider = self
            .list
            .iter()
            .find(|p| p.spec.issuer == iss)
            .ok_or_else(|| Refusal::UnknownIssuer(iss.to_owned()))?;
        provider.verify(token, &peeked, now, purpose).await
    }

    /// Fetches every provider's discovery document and keys (at start): failures are
    /// returned for logging, never fatal (a provider that is down must not stop the server
    /// from serving existing credentials; tokens from it are refused until it answers).
    pub async fn warm(&self) -> Vec<(String, String)> {
        let mut failed = Vec::new();
        for p in &self.list {
            if let Err(e) = p.fetch_keys().await {
                failed.push((p.spec.name.clone(), e));
            }
        }
        failed
    }
}

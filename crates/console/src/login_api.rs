//! `gatehouse login` on the admin listener: people prove who they are to the company's
//! OpenID Provider, and Gatehouse exchanges the verified ID token for a short-lived Gatehouse
//! credential (kind human, groups from the IdP's claims) that works with every client through
//! SCRAM. The client secret and the IdP's device code never leave the server: the CLI only
//! holds a login id.
//!
//! Two flows:
//! - device authorization grant (RFC 8628): `POST /api/login/device` starts it (the user code
//!   and the page to enter it on come back), `POST /api/login/device/poll` asks the IdP once;
//! - authorization code with PKCE (RFC 7636) and a loopback redirect (RFC 8252):
//!   `POST /api/login/code` gives the authorization URL for the CLI's loopback redirect,
//!   `POST /api/login/code/finish` exchanges the code the browser brought back.
//!
//! `POST /api/login/logout` revokes the caller's credential. `GET /api/login/providers`
//! lists what may be used.

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use identity::oidc::{Provider, Providers, Purpose, Verified};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

/// Issues a credential for a verified login, living `ttl` seconds, keeping the provider's
/// refresh token (if it gave one) to ask it again later; gives the token and its expiry
/// (epoch seconds). Records the login in the audit trail.
pub type IssueCredential = Arc<
    dyn Fn(&Verified, i64, Option<&str>, Whence<'_>) -> Result<(String, i64), String> + Send + Sync,
>;
/// Revokes the credential a bearer token is (recorded); `Ok(false)`: no such active token.
pub type Revoke = Arc<dyn Fn(&str) -> Result<bool, String> + Send + Sync>;
/// Records a step of a login that issued nothing (with the provider's name).
pub type RecordLogin = Arc<dyn Fn(&str, LoginStep<'_>) + Send + Sync>;
/// Epoch seconds.
pub type NowSecs = Arc<dyn Fn() -> i64 + Send + Sync>;
/// Fills a buffer with random bytes.
pub type Random = Arc<dyn Fn(&mut [u8]) + Send + Sync>;

/// Which login a step belongs to: a reference (a digest of its login id, which itself is a
/// bearer handle and never recorded) and the client address that started it.
#[derive(Debug, Clone, Copy)]
pub struct Whence<'a> {
    pub login: &'a str,
    pub client: IpAddr,
}

/// What `RecordLogin` records.
#[derive(Debug, Clone, Copy)]
pub enum LoginStep<'a> {
    /// A login began (`flow`: device or browser).
    Started { flow: &'a str, whence: Whence<'a> },
    /// A login ended without a credential, and why.
    Refused { why: &'a str, whence: Whence<'a> },
}

/// Logins started and not finished, at most this many at once (the endpoints need no
/// credential, so their memory is bounded), and at most `MAX_PER_CLIENT` of them from one
/// client address.
const MAX_PENDING: usize = 1024;
const MAX_PER_CLIENT: usize = 16;

/// What the server does with logins: issue, revoke, record; its clock and randomness.
#[derive(Clone)]
pub struct LoginHooks {
    pub issue: IssueCredential,
    pub revoke: Revoke,
    pub record: RecordLogin,
    pub now: NowSecs,
    pub random: Random,
}

#[derive(Clone)]
pub struct LoginApi {
    pub providers: Arc<Providers>,
    pub hooks: LoginHooks,
    /// Where clients connect with the credential (`host:port`), for `--pgpass`.
    pub postgres_addr: String,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

impl LoginApi {
    pub fn new(providers: Arc<Providers>, hooks: LoginHooks, postgres_addr: String) -> LoginApi {
        LoginApi {
            providers,
            hooks,
            postgres_addr,
            pending: Arc::default(),
        }
    }

    fn now(&self) -> i64 {
        (self.hooks.now)()
    }

    fn refused(&self, provider: &str, why: &str, whence: Whence<'_>) {
        (self.hooks.record)(provider, LoginStep::Refused { why, whence });
    }

    fn id(&self, bytes: usize) -> String {
        let mut b = vec![0u8; bytes];
        (self.hooks.random)(&mut b);
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    /// Keeps a pending login under a fresh id, dropping expired ones first. One client
    /// (an IPv4 address, an IPv6 /64) may hold `MAX_PER_CLIENT`; when the whole table is full,
    /// the busiest client's oldest login is dropped, so a flood from many addresses pushes
    /// out its own logins before anyone else's.
    fn keep(&self, p: Pending) -> Result<String, Answer> {
        let now = self.now();
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|_, p| p.expires_at > now);
        if map.values().filter(|o| o.client == p.client).count() >= MAX_PER_CLIENT {
            return Err(error(
                StatusCode::TOO_MANY_REQUESTS,
                "too many logins in progress from this address; finish or wait for one",
            ));
        }
        while map.len() >= MAX_PENDING {
            let mut per_client: HashMap<IpAddr, usize> = HashMap::new();
            for o in map.values() {
                *per_client.entry(o.client).or_default() += 1;
            }
            let busiest = per_client
                .into_iter()
                .max_by_key(|(_, n)| *n)
                .map(|(c, _)| c);
            let oldest = map
                .iter()
                .filter(|(_, o)| Some(o.client) == busiest)
                .min_by_key(|(_, o)| o.started_at)
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => map.remove(&id),
                None => break,
            };
        }
        let id = self.id(16);
        let mut p = p;
        p.reference = reference(&id);
        map.insert(id.clone(), p);
        Ok(id)
    }

    fn take(&self, id: &str) -> Option<Pending> {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.now();
        map.remove(id).filter(|p| p.expires_at > now)
    }

    fn put_back(&self, id: String, p: Pending) {
        let mut map = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        map.insert(id, p);
    }
}

#[derive(Clone)]
struct Pending {
    provider: String,
    client: IpAddr,
    /// Recorded in place of the login id (see `Whence`).
    reference: String,
    started_at: i64,
    expires_at: i64,
    kind: Flow,
}

#[derive(Clone)]
enum Flow {
    Device {
        device_code: String,
        interval: i64,
        next_poll: i64,
    },
    Code {
        state: String,
        nonce: String,
        verifier: String,
        redirect_uri: String,
    },
}

impl Pending {
    fn whence(&self) -> Whence<'_> {
        Whence {
            login: &self.reference,
            client: self.client,
        }
    }
}

/// What the audit trail calls a login: the first 16 hex digits of its id's SHA-256.
fn reference(login_id: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(login_id.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

type Answer = (StatusCode, Json<Value>);

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    (status, Json(json!({ "error": message.into() })))
}

pub fn routes(api: LoginApi) -> Router {
    Router::new()
        .route("/api/login/providers", get(providers))
        .route("/api/login/device", post(device_start))
        .route("/api/login/device/poll", post(device_poll))
        .route("/api/login/code", post(code_start))
        .route("/api/login/code/finish", post(code_finish))
        .route("/api/login/logout", post(logout))
        .with_state(api)
}

async fn providers(State(api): State<LoginApi>) -> Answer {
    let mut list = Vec::new();
    for p in api.providers.iter() {
        let login = p.spec.client_id.is_some();
        list.push(json!({
            "name": p.spec.name,
            "issuer": p.spec.issuer,
            "login": login,
        }));
    }
    (StatusCode::OK, Json(Value::Array(list)))
}

#[derive(Deserialize)]
struct StartBody {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
}

/// The provider a login names (or the only one with a client id).
fn provider(api: &LoginApi, name: Option<&str>) -> Result<Arc<Provider>, Answer> {
    let usable: Vec<&Arc<Provider>> = api
        .providers
        .iter()
        .filter(|p| p.spec.client_id.is_some())
        .collect();
    let found = match name {
        Some(n) => usable.into_iter().find(|p| p.spec.name == n),
        None if usable.len() == 1 => usable.into_iter().next(),
        None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "several identity providers can log in: name one (--provider)",
            ))
        }
    };
    found.cloned().ok_or_else(|| {
        error(
            StatusCode::NOT_FOUND,
            "no identity provider with a client_id by that name",
        )
    })
}

/// The client a login is counted against: its IPv4 address, or its IPv6 /64 (one host
/// commonly holds a whole /64); unspecified when the server was not told the address.
fn client_ip(info: Option<ConnectInfo<SocketAddr>>) -> IpAddr {
    match info.map(|ConnectInfo(a)| a.ip()) {
        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        Some(v4) => v4,
    }
}

async fn device_start(
    State(api): State<LoginApi>,
    info: Option<ConnectInfo<SocketAddr>>,
    Json(body): Json<StartBody>,
) -> Answer {
    let client = client_ip(info);
    let p = match provider(&api, body.provider.as_deref()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let meta = match p.metadata().await {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("identity provider: {e}")),
    };
    let Some(endpoint) = meta.device_authorization_endpoint.clone() else {
        return error(
            StatusCode::BAD_REQUEST,
            "the identity provider offers no device authorization endpoint; use --browser",
        );
    };
    let scope = p.spec.scopes.join(" ");
    let form = vec![("scope", scope.as_str())];
    let (status, v) = match p.post_form(&endpoint, &form).await {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("identity provider: {e}")),
    };
    let (Some(device_code), Some(user_code), Some(uri)) = (
        v.get("device_code").and_then(Value::as_str),
        v.get("user_code").and_then(Value::as_str),
        v.get("verification_uri").and_then(Value::as_str),
    ) else {
        return error(
            StatusCode::BAD_GATEWAY,
            format!(
                "identity provider refused the device authorization (HTTP {status}): {}",
                idp_error(&v)
            ),
        );
    };
    let now = api.now();
    let expires_in = v
        .get("expires_in")
        .and_then(Value::as_i64)
        .unwrap_or(600)
        .clamp(1, 1800);
    let interval = v
        .get("interval")
        .and_then(Value::as_i64)
        .unwrap_or(5)
        .clamp(1, 60);
    let pending = Pending {
        provider: p.spec.name.clone(),
        client,
        reference: String::new(),
        started_at: now,
        expires_at: now + expires_in,
        kind: Flow::Device {
            device_code: device_code.to_owned(),
            interval,
            next_poll: now,
        },
    };
    let id = match api.keep(pending) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let login = reference(&id);
    let whence = Whence {
        login: &login,
        client,
    };
    (api.hooks.record)(
        &p.spec.name,
        LoginStep::Started {
            flow: "device",
            whence,
        },
    );
    (
        StatusCode::OK,
        Json(json!({
            "login_id": id,
            "provider": p.spec.name,
            "user_code": user_code,
            "verification_uri": uri,
            "verification_uri_complete": v.get("verification_uri_complete"),
            "expires_in": expires_in,
            "interval": interval,
        })),
    )
}

fn idp_error(v: &Value) -> String {
    let code = v.get("error").and_then(Value::as_str).unwrap_or("unknown");
    match v.get("error_description").and_then(Value::as_str) {
        Some(d) => format!("{code}: {d}"),
        None => code.to_owned(),
    }
}

#[derive(Deserialize)]
struct PollBody {
    login_id: String,
}

async fn device_poll(State(api): State<LoginApi>, Json(body): Json<PollBody>) -> Answer {
    let Some(mut pending) = api.take(&body.login_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "no such login in progress (expired or finished)",
        );
    };
    let Flow::Device {
        device_code,
        interval,
        next_poll,
    } = pending.kind.clone()
    else {
        return error(StatusCode::BAD_REQUEST, "not a device login");
    };
    let now = api.now();
    if now < next_poll {
        api.put_back(body.login_id, pending);
        return (
            StatusCode::ACCEPTED,
            Json(json!({ "status": "pending", "interval": interval })),
        );
    }
    let p = match provider_of(&api, &pending) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let form = vec![
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
    ];
    let v = match token_request(&p, form).await {
        Ok((_, v)) => v,
        Err(e) => {
            // The IdP could not be asked: the login stays, to be polled again.
            api.put_back(body.login_id, pending);
            return e;
        }
    };
    match v.get("error").and_then(Value::as_str) {
        Some(e @ ("authorization_pending" | "slow_down")) => {
            // RFC 8628 §3.5: slow_down adds 5 seconds to the interval for good.
            let interval = if e == "slow_down" {
                interval + 5
            } else {
                interval
            };
            pending.kind = Flow::Device {
                device_code,
                interval,
                next_poll: now + interval,
            };
            api.put_back(body.login_id, pending);
            (
                StatusCode::ACCEPTED,
                Json(json!({ "status": "pending", "interval": interval })),
            )
        }
        Some(_) => {
            let why = format!("the identity provider ended the login: {}", idp_error(&v));
            api.refused(&p.spec.name, &why, pending.whence());
            error(StatusCode::FORBIDDEN, why)
        }
        None => finish(&api, &p, &v, None, pending.whence()).await,
    }
}

/// The provider a pending login was started with.
fn provider_of(api: &LoginApi, pending: &Pending) -> Result<Arc<Provider>, Answer> {
    api.providers
        .by_name(&pending.provider)
        .cloned()
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                "identity provider no longer configured",
            )
        })
}

/// One request to the provider's token endpoint as the client; its HTTP status and JSON
/// answer.
async fn token_request(p: &Provider, form: Vec<(&str, &str)>) -> Result<(u16, Value), Answer> {
    p.token_request(&form)
        .await
        .map_err(|e| error(StatusCode::BAD_GATEWAY, format!("identity provider: {e}")))
}

/// Verifies the ID token of a successful token response and issues the credential.
async fn finish(
    api: &LoginApi,
    p: &Provider,
    tokens: &Value,
    nonce: Option<&str>,
    whence: Whence<'_>,
) -> Answer {
    let Some(id_token) = tokens.get("id_token").and_then(Value::as_str) else {
        let why = "the identity provider returned no ID token (is the openid scope allowed?)";
        api.refused(&p.spec.name, why, whence);
        return error(StatusCode::BAD_GATEWAY, why);
    };
    let now = api.now();
    let peeked = match identity::oidc::peek(id_token) {
        Ok(x) => x,
        Err(r) => return refused(api, p, &r.to_string(), whence),
    };
    let mut verified = match p
        .verify(id_token, &peeked, now, Purpose::Login { nonce })
        .await
    {
        Ok(v) => v,
        Err(r) => return refused(api, p, &r.to_string(), whence),
    };
    // People log in; whatever the provider's `kind` says for workload tokens.
    verified.identity.kind = model::IdentityKind::Human;
    // Never longer than the provider's session, where it says how long that is (Keycloak's
    // `refresh_expires_in`; 0 there means an offline session without an end).
    let session = tokens
        .get("refresh_expires_in")
        .and_then(Value::as_i64)
        .filter(|s| *s > 0);
    let ttl = session.map_or(p.spec.max_credential_ttl_secs, |s| {
        s.min(p.spec.max_credential_ttl_secs)
    });
    let refresh = tokens.get("refresh_token").and_then(Value::as_str);
    match (api.hooks.issue)(&verified, ttl, refresh, whence) {
        Ok((token, expires_at)) => (
            StatusCode::OK,
            Json(json!({
                "status": "ok",
                "identity": verified.identity.name,
                "groups": verified.identity.groups,
                "token": token,
                "expires_at": expires_at,
                "postgres": api.postgres_addr,
            })),
        ),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("issuing the credential: {e}"),
        ),
    }
}

fn refused(api: &LoginApi, p: &Provider, why: &str, whence: Whence<'_>) -> Answer {
    api.refused(&p.spec.name, why, whence);
    error(
        StatusCode::FORBIDDEN,
        format!("the identity provider's ID token was refused: {why}"),
    )
}

async fn code_start(
    State(api): State<LoginApi>,
    info: Option<ConnectInfo<SocketAddr>>,
    Json(body): Json<StartBody>,
) -> Answer {
    let client = client_ip(info);
    let p = match provider(&api, body.provider.as_deref()) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let Some(redirect_uri) = body.redirect_uri.clone() else {
        return error(StatusCode::BAD_REQUEST, "redirect_uri is required");
    };
    // RFC 8252 §7.3: a loopback IP literal over http, any port.
    let loopback = url::Url::parse(&redirect_uri).ok().is_some_and(|u| {
        let host = match u.host() {
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            _ => false,
        };
        u.scheme() == "http" && host
    });
    if !loopback {
        return error(
            StatusCode::BAD_REQUEST,
            "redirect_uri must be http://127.0.0.1:PORT/… (a loopback redirect)",
        );
    }
    let meta = match p.metadata().await {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_GATEWAY, format!("identity provider: {e}")),
    };
    let Some(endpoint) = meta.authorization_endpoint.clone() else {
        return error(
            StatusCode::BAD_REQUEST,
            "the identity provider has no authorization endpoint",
        );
    };
    let verifier = api.id(32);
    let challenge = {
        use sha2::Digest;
        let d = sha2::Sha256::digest(verifier.as_bytes());
        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, d)
    };
    let state = api.id(16);
    let nonce = api.id(16);
    let Ok(mut url) = url::Url::parse(&endpoint) else {
        return error(
            StatusCode::BAD_GATEWAY,
            "the identity provider's authorization endpoint is not a URL",
        );
    };
    let client_id = p.spec.client_id.clone().unwrap_or_default();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &p.spec.scopes.join(" "))
        .append_pair("state", &state)
        .append_pair("nonce", &nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let pending = Pending {
        provider: p.spec.name.clone(),
        client,
        reference: String::new(),
        started_at: api.now(),
        expires_at: api.now() + 600,
        kind: Flow::Code {
            state: state.clone(),
            nonce,
            verifier,
            redirect_uri,
        },
    };
    let id = match api.keep(pending) {
        Ok(id) => id,
        Err(e) => return e,
    };
    let login = reference(&id);
    let whence = Whence {
        login: &login,
        client,
    };
    (api.hooks.record)(
        &p.spec.name,
        LoginStep::Started {
            flow: "browser",
            whence,
        },
    );
    (
        StatusCode::OK,
        Json(json!({ "login_id": id, "authorization_url": url.as_str(), "state": state })),
    )
}

#[derive(Deserialize)]
struct FinishBody {
    login_id: String,
    code: String,
    state: String,
}

async fn code_finish(State(api): State<LoginApi>, Json(body): Json<FinishBody>) -> Answer {
    let Some(pending) = api.take(&body.login_id) else {
        return error(
            StatusCode::NOT_FOUND,
            "no such login in progress (expired or finished)",
        );
    };
    let Flow::Code {
        state,
        nonce,
        verifier,
        redirect_uri,
    } = &pending.kind
    else {
        return error(StatusCode::BAD_REQUEST, "not a browser login");
    };
    let same: bool = subtle::ConstantTimeEq::ct_eq(state.as_bytes(), body.state.as_bytes()).into();
    if !same {
        return error(StatusCode::BAD_REQUEST, "state does not match the login");
    }
    let p = match provider_of(&api, &pending) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let form = vec![
        ("grant_type", "authorization_code"),
        ("code", body.code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, v) = match token_request(&p, form).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    if v.get("error").is_some() || status >= 400 {
        let why = format!("the identity provider refused the code: {}", idp_error(&v));
        api.refused(&p.spec.name, &why, pending.whence());
        return error(StatusCode::FORBIDDEN, why);
    }
    finish(&api, &p, &v, Some(nonce), pending.whence()).await
}

async fn logout(State(api): State<LoginApi>, headers: HeaderMap) -> Answer {
    let token = match crate::approvals_api::bearer(&headers) {
        Ok(t) => t,
        Err(e) => return e,
    };
    match (api.hooks.revoke)(token) {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "revoked" }))),
        Ok(false) => error(
            StatusCode::UNAUTHORIZED,
            "invalid, expired or revoked token",
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

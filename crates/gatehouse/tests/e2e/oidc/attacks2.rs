//! Second OIDC red-team round (a helper with a fresh context): the login re-check
//! (`serve_login::spawn_recheck`), the per-address login bound (`console::login_api`),
//! refresh tokens at rest and the login audit events. Each finding below was fixed; each test
//! asserts the safe behaviour.
//!
//! - G1 a session opened before its credential was revoked kept running with the revoked
//!   credential's groups (now: `proxy::live` ends it);
//! - G2 a refresh answer without an `id_token` counted as "nothing changed" (now: userinfo,
//!   else revoked);
//! - G3 a 4xx refusal whose body is not JSON counted as "provider unavailable";
//! - G4 a transient `503 temporarily_unavailable` revoked every credential of the provider;
//! - G5 one hung provider delayed every other provider's revocations (now: a task per
//!   provider and a time limit per re-check);
//! - G6 many loopback source addresses evicted another person's pending login (now: the
//!   busiest client's oldest login goes first; IPv6 counted per /64);
//! - G7 refresh tokens outlived their credential, and the database files were world-readable
//!   in a directory that existed before;
//! - G8 the "credential issued" event carried no client address and nothing linked it to its
//!   login's start (now: both name the login by a digest of its id, and the address).
//!
//! The fake provider used by G2–G5 is an axum server that signs its ID tokens with the real
//! test IdP (`/test/sign`) and publishes the real IdP's key set, so verification is genuine;
//! only its token endpoint's refresh answers are scripted.

use super::idp::{alice, http, Idp};
use super::{login, login_proxy_with, psql};
use crate::harness::{Gatehouse, Options, OIDC_SECRET_ENV, WAIT};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// A scriptable provider.

#[derive(Clone)]
struct Fake {
    issuer: String,
    real: String,
    jwks_uri: String,
    /// What the refresh grant answers: "ok", "noid", "html400", "empty401", "temp503",
    /// "invalid_grant", "hang".
    mode: Arc<Mutex<String>>,
    groups: Arc<Mutex<Value>>,
    http: reqwest::Client,
}

struct FakeIdp {
    fake: Fake,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeIdp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeIdp {
    async fn start(real: &Idp, groups: Value) -> FakeIdp {
        let http = http();
        let disco: Value = http
            .get(format!("{}/.well-known/openid-configuration", real.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let fake = Fake {
            issuer,
            real: real.issuer.clone(),
            jwks_uri: disco["jwks_uri"].as_str().unwrap().to_owned(),
            mode: Arc::new(Mutex::new("ok".into())),
            groups: Arc::new(Mutex::new(groups)),
            http,
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/token", post(token))
            .with_state(fake.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeIdp { fake, task }
    }

    fn set(&self, mode: &str, groups: Option<Value>) {
        *self.fake.mode.lock().unwrap() = mode.to_owned();
        if let Some(g) = groups {
            *self.fake.groups.lock().unwrap() = g;
        }
    }
}

async fn discovery(State(f): State<Fake>) -> Json<Value> {
    Json(json!({
        "issuer": f.issuer,
        "jwks_uri": f.jwks_uri,
        "token_endpoint": format!("{}/token", f.issuer),
        "authorization_endpoint": format!("{}/auth", f.issuer),
    }))
}

async fn id_token(f: &Fake, sub: &str, nonce: Option<&str>) -> String {
    let groups = f.groups.lock().unwrap().clone();
    let mut claims = json!({
        "iss": f.issuer, "aud": "gatehouse", "sub": sub,
        "email": format!("{sub}@example.com"), "email_verified": true, "groups": groups,
    });
    if let Some(n) = nonce {
        claims["nonce"] = json!(n);
    }
    let v: Value = f
        .http
        .post(format!("{}/test/sign", f.real))
        .json(&json!({ "claims": claims, "header": {} }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["jwt"].as_str().unwrap().to_owned()
}

async fn token(State(f): State<Fake>, body: String) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    match form.get("grant_type").map(String::as_str) {
        // The test passes "<sub>:<nonce>" as the code.
        Some("authorization_code") => {
            let (sub, nonce) = form["code"].split_once(':').unwrap();
            let idt = id_token(&f, sub, Some(nonce)).await;
            Json(
                json!({ "access_token": "at", "token_type": "Bearer", "id_token": idt,
                         "refresh_token": format!("rt:{sub}") }),
            )
            .into_response()
        }
        Some("refresh_token") => {
            let sub = form["refresh_token"].trim_start_matches("rt:").to_owned();
            let mode = f.mode.lock().unwrap().clone();
            match mode.as_str() {
                "ok" => {
                    let idt = id_token(&f, &sub, None).await;
                    Json(
                        json!({ "access_token": "at", "token_type": "Bearer", "id_token": idt,
                                 "refresh_token": format!("rt:{sub}") }),
                    )
                    .into_response()
                }
                // OIDC Core §12.2: the refresh answer "might not contain an id_token".
                "noid" => {
                    Json(json!({ "access_token": "at", "token_type": "Bearer" })).into_response()
                }
                "html400" => (StatusCode::BAD_REQUEST, "<html>Bad Request</html>").into_response(),
                "empty401" => (StatusCode::UNAUTHORIZED, "").into_response(),
                "temp503" => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({ "error": "temporarily_unavailable" })),
                )
                    .into_response(),
                "invalid_grant" => (
                    StatusCode::BAD_REQUEST,
                    Json(json!({ "error": "invalid_grant" })),
                )
                    .into_response(),
                _ => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    StatusCode::GATEWAY_TIMEOUT.into_response()
                }
            }
        }
        _ => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "unsupported_grant_type" })),
        )
            .into_response(),
    }
}

/// Gatehouse with the fake provider(s) `(name, issuer)`, re-checking every second.
async fn fake_proxy(providers: &[(&str, &str)]) -> Gatehouse {
    let mut toml = String::from(
        "[[sensitive]]\ntarget = \"app\"\ncolumns = [\"public.people.ssn\"]\nmask = \"last4\"\n",
    );
    for (name, issuer) in providers {
        toml.push_str(&format!(
            "[[identity_providers]]\nname = \"{name}\"\nissuer = {issuer:?}\nclient_id = \"gatehouse\"\n\
             client_secret_env = \"{OIDC_SECRET_ENV}\"\nidentity_claim = \"email\"\n\
             max_credential_ttl = \"1h\"\nrecheck_secs = 1\n"
        ));
    }
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: super::PEOPLE.into(),
        policies: r#"
@id("dba-sees-ssn")
permit(principal in Gatehouse::Group::"dba", action == Gatehouse::Action::"unmask", resource);
"#
        .into(),
        extra_toml: toml,
    })
    .await
}

/// A browser login straight through the login API (the fake provider takes "<sub>:<nonce>"
/// as the code); the credential.
async fn fake_login(gh: &Gatehouse, provider: &str, sub: &str) -> String {
    let server = format!("http://127.0.0.1:{}", gh.admin_port.unwrap());
    let h = http();
    let start: Value = h
        .post(format!("{server}/api/login/code"))
        .json(&json!({ "provider": provider, "redirect_uri": "http://127.0.0.1:5555/cb" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = url::Url::parse(start["authorization_url"].as_str().unwrap()).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let done: Value = h
        .post(format!("{server}/api/login/code/finish"))
        .json(&json!({ "login_id": start["login_id"], "state": q["state"],
                       "code": format!("{sub}:{}", q["nonce"]) }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    done["token"]
        .as_str()
        .unwrap_or_else(|| panic!("login failed: {done}"))
        .to_owned()
}

/// Whether the credential still opens a session within `within`; polls.
async fn still_works_after(gh: &Gatehouse, user: &str, token: &str, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        let (ok, _) = psql(gh, user, token, "", "SELECT 1").await;
        if !ok {
            return false;
        }
        if Instant::now() > deadline {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

// ---------------------------------------------------------------------------------------

/// G1: the re-check revokes the credential, but a session authenticated with it before
/// keeps running with its old groups. Expected: sessions of a revoked credential end (or
/// lose the revoked groups).
#[tokio::test]
async fn a_session_opened_before_revocation_does_not_keep_the_removed_group() {
    let idp = Idp::start(json!([alice(&["dba", "eng"])])).await;
    let gh = login_proxy_with(&idp, "recheck_secs = 1\n").await;
    let token = login(&gh, &[], &idp, ("alice", "alice-pw")).await;
    let held = gh.connect("alice@example.com", &token).await;
    let row = held.query_one("SELECT ssn FROM people", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "123-45-6789");
    // Alice leaves dba at the IdP; the re-check revokes her credential.
    idp.set_users(json!([alice(&["eng"])])).await;
    assert!(
        !still_works_after(&gh, "alice@example.com", &token, WAIT).await,
        "the credential was not revoked"
    );
    // The session opened before is still there, still unmasking.
    match held.query_one("SELECT ssn FROM people", &[]).await {
        Err(_) => {}
        Ok(row) => {
            let ssn: String = row.get(0);
            assert_ne!(
                ssn, "123-45-6789",
                "G1: the revoked credential's session still unmasks as dba"
            );
        }
    }
}

/// G2: the provider renews without an ID token; Alice was removed from dba meanwhile.
/// Expected: the credential does not keep dba (revoked, or re-checked another way such as
/// the userinfo endpoint).
#[tokio::test]
async fn a_refresh_without_an_id_token_does_not_keep_removed_groups() {
    let idp = Idp::start(json!([])).await;
    let fake = FakeIdp::start(&idp, json!(["dba", "eng"])).await;
    let gh = fake_proxy(&[("corp", &fake.fake.issuer)]).await;
    let token = fake_login(&gh, "corp", "alice").await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &token,
        "",
        "SELECT ssn FROM people",
    )
    .await;
    assert!(ok && out == "123-45-6789", "{out}");
    fake.set("noid", Some(json!(["eng"])));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &token,
        "",
        "SELECT ssn FROM people",
    )
    .await;
    assert!(
        !ok || out != "123-45-6789",
        "G2: removed from dba at the IdP, the credential still unmasks after 5 re-checks: {out}"
    );
}

/// G3: the provider refuses the refresh with a 4xx that is not JSON. Expected: revoked
/// (a 4xx is a refusal, RFC 6749 §5.2), not "unavailable" forever.
#[tokio::test]
async fn a_4xx_refusal_without_a_json_body_revokes() {
    let idp = Idp::start(json!([])).await;
    let fake = FakeIdp::start(&idp, json!(["eng"])).await;
    let gh = fake_proxy(&[("corp", &fake.fake.issuer)]).await;
    for (mode, sub) in [("html400", "alice"), ("empty401", "bob")] {
        let token = fake_login(&gh, "corp", sub).await;
        fake.set(mode, None);
        let user = format!("{sub}@example.com");
        assert!(
            !still_works_after(&gh, &user, &token, Duration::from_secs(6)).await,
            "G3: refresh answered {mode}: the credential is never revoked"
        );
        fake.set("ok", None);
    }
}

/// G4: a transient provider error revokes every live login. Expected: a 5xx (whatever its
/// body) or `temporarily_unavailable` / `server_error` is "unavailable", not a refusal.
#[tokio::test]
async fn a_transient_idp_error_does_not_revoke() {
    let idp = Idp::start(json!([])).await;
    let fake = FakeIdp::start(&idp, json!(["eng"])).await;
    let gh = fake_proxy(&[("corp", &fake.fake.issuer)]).await;
    let token = fake_login(&gh, "corp", "alice").await;
    fake.set("temp503", None);
    assert!(
        still_works_after(&gh, "alice@example.com", &token, Duration::from_secs(4)).await,
        "G4: one 503 temporarily_unavailable revoked the credential"
    );
}

/// G5: provider "slow" hangs; provider "corp" says Bob's grant is gone. Expected: Bob is
/// revoked within a few re-check periods, whatever another provider does.
#[tokio::test]
async fn a_hung_provider_does_not_delay_another_providers_revocations() {
    let idp = Idp::start(json!([])).await;
    let slow = FakeIdp::start(&idp, json!(["eng"])).await;
    let corp = FakeIdp::start(&idp, json!(["eng"])).await;
    let gh = fake_proxy(&[("slow", &slow.fake.issuer), ("corp", &corp.fake.issuer)]).await;
    // Three logins at the slow provider, older than Bob's (re-checked first).
    for i in 0..3 {
        fake_login(&gh, "slow", &format!("m{i}")).await;
    }
    let bob = fake_login(&gh, "corp", "bob").await;
    slow.set("hang", None);
    tokio::time::sleep(Duration::from_secs(2)).await;
    corp.set("invalid_grant", None);
    assert!(
        !still_works_after(&gh, "bob@example.com", &bob, Duration::from_secs(8)).await,
        "G5: Bob's refused login was not revoked within 8 s (recheck_secs = 1) while another \
         provider hangs"
    );
}

/// G6: another person's browser login is pending; 64 loopback addresses × 16 starts fill
/// the table and the oldest (theirs) is dropped. Expected: their login still finishes.
#[tokio::test]
async fn many_loopback_addresses_cannot_evict_a_pending_login() {
    let idp = Idp::start(json!([])).await;
    let fake = FakeIdp::start(&idp, json!(["eng"])).await;
    let gh = fake_proxy(&[("corp", &fake.fake.issuer)]).await;
    let server = format!("http://127.0.0.1:{}", gh.admin_port.unwrap());
    let h = http();
    let start: Value = h
        .post(format!("{server}/api/login/code"))
        .json(&json!({ "redirect_uri": "http://127.0.0.1:5555/cb" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = url::Url::parse(start["authorization_url"].as_str().unwrap()).unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let mut tasks = Vec::new();
    for i in 1..=64u8 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::builder()
                .local_address(IpAddr::V4(Ipv4Addr::new(127, 0, 1, i)))
                .build()
                .unwrap();
            let mut ok = 0;
            for _ in 0..16 {
                let r = c
                    .post(format!("{server}/api/login/code"))
                    .json(&json!({ "redirect_uri": "http://127.0.0.1:1/cb" }))
                    .send()
                    .await
                    .unwrap();
                ok += usize::from(r.status().is_success());
            }
            ok
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += t.await.unwrap();
    }
    let r = h
        .post(format!("{server}/api/login/code/finish"))
        .json(&json!({ "login_id": start["login_id"], "state": q["state"],
                       "code": format!("alice:{}", q["nonce"]) }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "G6: {accepted} unauthenticated starts from 64 loopback addresses evicted the pending \
         login: {}",
        r.text().await.unwrap_or_default()
    );
}

/// G7: after logout (and after a re-check revocation) the provider's refresh token is still
/// in the database, whose files are readable by everyone. Expected: cleared (and revoked at
/// the IdP), and the files 0600.
#[tokio::test]
async fn refresh_tokens_do_not_outlive_their_credential_and_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let idp = Idp::start(json!([])).await;
    let fake = FakeIdp::start(&idp, json!(["eng"])).await;
    let gh = fake_proxy(&[("corp", &fake.fake.issuer)]).await;
    let token = fake_login(&gh, "corp", "alice").await;
    let r = http()
        .post(format!(
            "http://127.0.0.1:{}/api/login/logout",
            gh.admin_port.unwrap()
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let db = gh.data_dir().join("gatehouse.db");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let kept: Vec<String> = conn
        .prepare("SELECT refresh_token FROM token_idp WHERE refresh_token IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut loose = Vec::new();
    for name in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"] {
        let p = gh.data_dir().join(name);
        if let Ok(m) = std::fs::metadata(&p) {
            let mode = m.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                loose.push(format!("{name} {mode:o}"));
            }
        }
    }
    assert!(
        kept.is_empty() && loose.is_empty(),
        "G7: refresh tokens kept after logout: {kept:?}; database files not private: {loose:?}"
    );
}

/// G8: which address obtained a credential (device-code phishing, a stolen login id) cannot
/// be told from the trail. Expected: the "issued" event names the client address (and the
/// login it finishes).
#[tokio::test]
async fn the_issued_login_event_names_the_client_address() {
    let idp = Idp::start(json!([])).await;
    let fake = FakeIdp::start(&idp, json!(["eng"])).await;
    let gh = fake_proxy(&[("corp", &fake.fake.issuer)]).await;
    fake_login(&gh, "corp", "alice").await;
    let events = gh
        .wait_events("the issue", |evs| {
            evs.iter().any(|e| {
                e["kind"] == "login" && e["statement"].as_str().unwrap_or("").contains("issued")
            })
        })
        .await;
    let issued = events
        .iter()
        .find(|e| e["kind"] == "login" && e["statement"].as_str().unwrap_or("").contains("issued"))
        .unwrap();
    assert!(
        issued["client_addr"].is_string(),
        "G8: the credential's issue names no client address: {issued}"
    );
}

//! Attacks on the OIDC feature (security review). Each test asserts the SAFE behaviour, so a
//! failing test is an open finding. Wire with `mod oidc_attacks;` in `oidc.rs` (next to
//! `mod idp;`): it uses `super::psql` and `super::idp`.
//!
//! Findings reproduced here:
//! - F1 `email_verified: false` is ignored when `identity_claim = "email"`;
//! - F2 `group_map` without `allowed_groups` lets every unmapped IdP group through verbatim,
//!   and a string groups claim is split on spaces ("Not Database Admins dba" gives `dba`);
//! - F3 1024 unauthenticated `POST /api/login/code` block every login for 10 minutes;
//! - F4 a key set with one key the JWK library cannot parse (X25519, AKP…) makes the whole
//!   provider unusable, and while no key set is cached every JWT triggers a new fetch (the
//!   10 s rate limit only applies once a key set is cached).

use super::idp::Idp;
use super::psql;
use crate::harness::{Gatehouse, Options};
use crate::tls_modern::certs::{self, Kind};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

fn tls(cert: &certs::Cert) -> String {
    format!(
        "[tls]\ncert = {:?}\nkey = {:?}\nclient_auth = \"password\"\n",
        cert.crt.display().to_string(),
        cert.key.display().to_string()
    )
}

async fn email_proxy(idp: &Idp, cert: &certs::Cert) -> Gatehouse {
    Gatehouse::start_with(Options {
        extra_toml: format!(
            "{}[[identity_providers]]\nname = \"corp\"\nissuer = {:?}\nclient_id = \"gatehouse\"\n\
             client_secret_env = \"{}\"\nidentity_claim = \"email\"\n\
             audience = [\"gatehouse-db\"]\ngroup_map = {{ \"Database Admins\" = \"dba\" }}\n",
            tls(cert),
            idp.issuer,
            crate::harness::OIDC_SECRET_ENV,
        ),
        admin: true,
        ..Options::default()
    })
    .await
}

/// F1: an IdP that lets users set an unverified email (self sign-up, profile edit) lets them
/// become anyone by email. Expected: refused (`email_verified` must be true when the identity
/// claim is `email`).
#[tokio::test]
async fn unverified_email_is_not_an_identity() {
    let idp = Idp::start(json!([])).await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = email_proxy(&idp, &cert).await;
    let jwt = idp
        .sign(
            json!({ "sub": "mallory", "aud": "gatehouse-db", "email": "ceo@example.com",
                    "email_verified": false }),
            json!({}),
        )
        .await;
    let (ok, out) = psql(
        &gh,
        "ceo@example.com",
        &jwt,
        "sslmode=require",
        "SELECT current_setting('gatehouse.identity')",
    )
    .await;
    assert!(!ok, "F1: unverified email accepted as identity: {out}");
    let events = gh
        .wait_events("the refusal", |evs| {
            evs.iter().any(|e| e["kind"] == "auth_failure")
        })
        .await;
    assert!(
        events.iter().any(|e| e["kind"] == "auth_failure"
            && e["outcome"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("email_verified")),
        "refused for another reason: {events:?}"
    );
    // An ID token of the login client is not a password either.
    let id_token = idp
        .sign(
            json!({ "sub": "alice", "aud": "gatehouse", "email": "alice@example.com",
                    "email_verified": true }),
            json!({}),
        )
        .await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &id_token,
        "sslmode=require",
        "SELECT 1",
    )
    .await;
    assert!(
        !ok,
        "an ID token for the login client was accepted as a password: {out}"
    );
}

/// F2: with only `group_map` configured, unmapped groups pass through, and a space-separated
/// string splits a group name so a part of it becomes a group. Expected: only `dba` via the
/// mapping of "Database Admins"; the raw "dba" group and the pieces are ignored.
#[tokio::test]
async fn group_map_alone_does_not_pass_raw_groups() {
    let idp = Idp::start(json!([])).await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = email_proxy(&idp, &cert).await;
    let jwt = idp
        .sign(
            json!({ "sub": "m", "aud": "gatehouse-db", "email": "m@x.io", "email_verified": true,
                    "groups": "Not Database Admins dba" }),
            json!({}),
        )
        .await;
    let (ok, out) = psql(&gh, "m@x.io", &jwt, "sslmode=require", "SELECT 1").await;
    assert!(ok, "{out}");
    let events = gh
        .wait_events("jwt login", |evs| {
            evs.iter()
                .any(|e| e["kind"] == "authenticated" && e["identity"] == "m@x.io")
        })
        .await;
    let ev = events
        .iter()
        .find(|e| e["kind"] == "authenticated" && e["identity"] == "m@x.io")
        .unwrap();
    // Observed: ["Admins", "Database", "Not", "dba"].
    assert_eq!(ev["groups"], json!([]), "F2: groups {}", ev["groups"]);
}

/// F3: the pending-login table is global and unauthenticated. Expected: one client cannot
/// lock everyone out of `gatehouse login`.
#[tokio::test]
async fn login_table_cannot_be_filled_by_one_client() {
    let idp = Idp::start(json!([])).await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = email_proxy(&idp, &cert).await;
    let base = format!("http://127.0.0.1:{}", gh.admin_port.unwrap());
    let http = super::idp::http();
    let ok = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..1030 {
        let (http, base, ok) = (http.clone(), base.clone(), ok.clone());
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/login/code"))
                .json(&json!({ "redirect_uri": "http://127.0.0.1:1/cb" }))
                .send()
                .await
                .unwrap();
            if r.status().is_success() {
                ok.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // One address holds at most 16 logins in progress…
    let flooded = ok.load(Ordering::Relaxed);
    assert!(flooded <= 16, "one address started {flooded} logins");
    // …and a person at another address still logs in.
    let other = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let r = other
        .post(format!("{base}/api/login/device"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        status.as_u16(),
        200,
        "F3: after {flooded} junk logins, a real login is refused: {body}"
    );
    // The starts are in the trail with their addresses.
    let events = gh
        .wait_events("login starts", |evs| {
            evs.iter()
                .any(|e| e["kind"] == "login" && e["client_addr"] == "127.0.0.2")
        })
        .await;
    let starts = events
        .iter()
        .filter(|e| {
            e["kind"] == "login" && e["statement"].as_str().unwrap_or("").contains("started")
        })
        .count();
    assert_eq!(starts, flooded + 1);
}

/// A fake IdP on loopback: discovery, and a key set with one RS256 key the test signs with
/// plus an X25519 encryption key (as IdPs that encrypt ID tokens publish). Counts key set GETs.
async fn fake_idp(jwks_extra: Value) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let iss = format!("http://{}", listener.local_addr().unwrap());
    let hits = Arc::new(AtomicUsize::new(0));
    let (iss2, hits2) = (iss.clone(), hits.clone());
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            let (iss, hits, extra) = (iss2.clone(), hits2.clone(), jwks_extra.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let n = s.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let body = if req.starts_with("GET /.well-known/openid-configuration") {
                    json!({ "issuer": iss, "jwks_uri": format!("{iss}/jwks") }).to_string()
                } else {
                    hits.fetch_add(1, Ordering::Relaxed);
                    // One RSA signing key (its value matters not: no test token verifies) and
                    // the odd one.
                    let rsa = json!({ "kty": "RSA", "kid": "k0", "alg": "RS256", "use": "sig",
                                      "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1Wl", "e": "AQAB" });
                    json!({ "keys": [extra, rsa] }).to_string()
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (iss, hits)
}

fn unsigned_jwt(iss: &str) -> String {
    use base64::Engine;
    let e = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = chrono::Utc::now().timestamp();
    format!(
        "{}.{}.{}",
        e(json!({ "alg": "RS256", "kid": "k1" })),
        e(json!({ "iss": iss, "aud": "x", "sub": "s", "exp": now + 300 })),
        "AQID"
    )
}

/// F4: one unparseable key poisons the key set, and refusals then cost one IdP fetch each.
/// Expected: the bad key skipped (a token for another kid is refused for its signature, not
/// "keys could not be fetched"), and at most one fetch per 10 s.
#[tokio::test]
async fn one_odd_key_does_not_disable_the_provider_nor_unlock_refetches() {
    let (iss, hits) = fake_idp(json!({ "kty": "OKP", "crv": "X25519", "kid": "enc-1",
                                       "use": "enc", "x": "AAAA" }))
    .await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = Gatehouse::start_with(Options {
        extra_toml: format!(
            "{}[[identity_providers]]\nname = \"fake\"\nissuer = {iss:?}\naudience = [\"x\"]\n",
            tls(&cert)
        ),
        ..Options::default()
    })
    .await;
    let before = hits.load(Ordering::Relaxed);
    for _ in 0..5 {
        let (ok, _) = psql(&gh, "s", &unsigned_jwt(&iss), "sslmode=require", "SELECT 1").await;
        assert!(!ok);
    }
    let fetched = hits.load(Ordering::Relaxed) - before;
    let events = gh
        .wait_events("refusals", |evs| {
            evs.iter().filter(|e| e["kind"] == "auth_failure").count() >= 5
        })
        .await;
    let reason = events
        .iter()
        .find(|e| e["kind"] == "auth_failure")
        .map(|e| e["outcome"]["message"].to_string())
        .unwrap();
    assert!(
        fetched <= 1,
        "F4: {fetched} key set fetches for 5 bad tokens"
    );
    assert!(
        !reason.contains("could not be fetched"),
        "F4: one odd key disabled the provider: {reason}"
    );
}

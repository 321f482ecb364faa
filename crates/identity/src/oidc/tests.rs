//! The verifier against an in-process key set: every refusal the issue lists, and the claim
//! mapping. (The whole flow against a real OpenID Provider is in the server's e2e tests.)

use super::*;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const ISS: &str = "https://idp.example.com";
const NOW: i64 = 1_800_000_000;

struct Key {
    kid: String,
    der: Vec<u8>,
    jwk: Value,
}

fn ec_key(kid: &str) -> Key {
    let kp = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let der = kp.to_pkcs8v1().unwrap().as_ref().to_vec();
    let point = kp.public_key().as_ref().to_vec();
    assert_eq!(point.len(), 65);
    let jwk = json!({
        "kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..]),
    });
    Key {
        kid: kid.into(),
        der,
        jwk,
    }
}

fn set(keys: &[&Key]) -> JwkSet {
    serde_json::from_value(
        json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }),
    )
    .unwrap()
}

fn sign(key: &Key, claims: &Value) -> String {
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_ec_der(&key.der)).unwrap()
}

fn claims() -> Value {
    json!({
        "iss": ISS, "aud": "gatehouse", "sub": "ci-job-1",
        "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 300,
        "groups": ["deploy", "eng"],
    })
}

fn spec() -> ProviderSpec {
    let mut s = ProviderSpec::new("corp", ISS, "gatehouse");
    s.client_id = Some("login-client".into());
    s
}

fn check(spec: &ProviderSpec, keys: &JwkSet, token: &str) -> Result<Verified, Refusal> {
    let peeked = peek(token)?;
    verify(spec, keys, token, &peeked, NOW, Purpose::Password)
}

/// A token with its header replaced (signature kept).
fn with_header(token: &str, header: &Value) -> String {
    let rest = token.split_once('.').unwrap().1;
    format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header.to_string()))
}

#[test]
fn a_valid_token_gives_identity_kind_and_groups() {
    let k = ec_key("k1");
    let v = check(&spec(), &set(&[&k]), &sign(&k, &claims())).unwrap();
    assert_eq!(v.identity.name, "ci-job-1");
    assert_eq!(v.identity.kind, model::IdentityKind::Agent);
    assert_eq!(v.identity.groups, vec!["deploy", "eng"]);
    assert_eq!((v.issuer.as_str(), v.subject.as_str()), (ISS, "ci-job-1"));
    assert_eq!(v.expires_at, NOW + 300);
}

#[test]
fn every_claim_problem_is_refused_with_its_reason() {
    let k = ec_key("k1");
    let keys = set(&[&k]);
    let s = spec();
    type Expect = fn(&Refusal) -> bool;
    let cases: Vec<(Value, Expect)> = vec![
        (json!({"aud": "someone-else"}), |r| {
            *r == Refusal::WrongAudience
        }),
        (json!({"aud": ["a", "b"]}), |r| *r == Refusal::WrongAudience),
        (json!({"exp": NOW - 61}), |r| {
            matches!(r, Refusal::Expired { .. })
        }),
        (json!({"nbf": NOW + 61}), |r| {
            matches!(r, Refusal::NotYetValid { .. })
        }),
        (json!({"iat": NOW + 61}), |r| {
            matches!(r, Refusal::IssuedInFuture { .. })
        }),
        (json!({"iss": "https://evil.example.com"}), |r| {
            matches!(r, Refusal::UnknownIssuer(_))
        }),
        (json!({"exp": null}), |r| {
            *r == Refusal::MissingClaim("exp".into())
        }),
        (json!({"exp": "tomorrow"}), |r| {
            matches!(r, Refusal::Malformed(_))
        }),
        (json!({"sub": null}), |r| {
            matches!(r, Refusal::MissingClaim(_))
        }),
        (json!({"sub": "bad name with spaces"}), |r| {
            matches!(r, Refusal::BadIdentity(_))
        }),
    ];
    for (patch, expected) in cases {
        let mut c = claims();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let got = check(&s, &keys, &sign(&k, &c));
        assert!(matches!(&got, Err(r) if expected(r)), "{patch}: {got:?}");
    }
    // Within the skew: accepted.
    let mut c = claims();
    c["exp"] = json!(NOW - 30);
    c["nbf"] = json!(NOW + 30);
    assert!(check(&s, &keys, &sign(&k, &c)).is_ok());
    let mut strict = spec();
    strict.max_token_age_secs = Some(60);
    let mut c = claims();
    c["iat"] = json!(NOW - 600);
    assert!(matches!(
        check(&strict, &keys, &sign(&k, &c)),
        Err(Refusal::TooOld { .. })
    ));
}

#[test]
fn forged_tokens_are_refused() {
    let k = ec_key("k1");
    let other = ec_key("k1");
    let keys = set(&[&k]);
    let s = spec();
    let good = sign(&k, &claims());
    // Signed by another key claiming the same kid.
    assert_eq!(
        check(&s, &keys, &sign(&other, &claims())),
        Err(Refusal::BadSignature)
    );
    // A tampered payload (more groups) with the original signature.
    let parts: Vec<&str> = good.split('.').collect();
    let mut c = claims();
    c["groups"] = json!(["admin"]);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(c.to_string()),
        parts[2]
    );
    assert_eq!(check(&s, &keys, &tampered), Err(Refusal::BadSignature));
    // alg none, with and without a signature.
    let none = with_header(&good, &json!({"alg": "none", "kid": "k1"}));
    assert!(matches!(
        check(&s, &keys, &none),
        Err(Refusal::AlgorithmNotAllowed(_))
    ));
    let unsigned = format!("{}.", none.rsplit_once('.').unwrap().0);
    assert!(matches!(
        check(&s, &keys, &unsigned),
        Err(Refusal::AlgorithmNotAllowed(_))
    ));
    // HS256 keyed with the public key's bytes (the classic confusion attack).
    let public = serde_json::to_vec(&k.jwk).unwrap();
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&public)).unwrap();
    assert!(matches!(
        check(&s, &keys, &hs),
        Err(Refusal::AlgorithmNotAllowed(_))
    ));
    // An allowed algorithm the key was not published for.
    let rs = with_header(&good, &json!({"alg": "RS256", "kid": "k1"}));
    assert!(matches!(
        check(&s, &keys, &rs),
        Err(Refusal::AlgorithmNotAllowed(_))
    ));
    // Unknown kid; no kid with several keys.
    let mut h = Header::new(Algorithm::ES256);
    h.kid = Some("k9".into());
    let unknown = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_ec_der(&k.der)).unwrap();
    assert_eq!(
        check(&s, &keys, &unknown),
        Err(Refusal::UnknownKey(Some("k9".into())))
    );
    let two = set(&[&k, &ec_key("k2")]);
    let no_kid = with_header(&good, &json!({"alg": "ES256"}));
    assert_eq!(check(&s, &two, &no_kid), Err(Refusal::UnknownKey(None)));
    // Critical header extensions, garbage, oversize.
    let crit = with_header(
        &good,
        &json!({"alg": "ES256", "kid": "k1", "crit": ["exp"]}),
    );
    assert!(matches!(
        check(&s, &keys, &crit),
        Err(Refusal::Malformed(_))
    ));
    assert!(matches!(
        check(&s, &keys, "eyJ.a.b"),
        Err(Refusal::Malformed(_))
    ));
    let huge = format!("{good}{}", "A".repeat(MAX_JWT_BYTES));
    assert!(matches!(check(&s, &keys, &huge), Err(Refusal::TooLarge(_))));
}

#[test]
fn login_tokens_need_the_nonce_and_azp_with_several_audiences() {
    let k = ec_key("k1");
    let keys = set(&[&k]);
    let s = spec();
    let mut c = claims();
    c["aud"] = json!("login-client");
    c["nonce"] = json!("n-123");
    let t = sign(&k, &c);
    let peeked = peek(&t).unwrap();
    let login = |nonce| Purpose::Login { nonce: Some(nonce) };
    assert!(verify(&s, &keys, &t, &peeked, NOW, login("n-123")).is_ok());
    assert_eq!(
        verify(&s, &keys, &t, &peeked, NOW, login("n-999")),
        Err(Refusal::WrongNonce)
    );
    c["aud"] = json!(["login-client", "other"]);
    let t = sign(&k, &c);
    let peeked = peek(&t).unwrap();
    assert_eq!(
        verify(&s, &keys, &t, &peeked, NOW, login("n-123")),
        Err(Refusal::WrongAudience)
    );
    c["azp"] = json!("login-client");
    let t = sign(&k, &c);
    let peeked = peek(&t).unwrap();
    assert!(verify(&s, &keys, &t, &peeked, NOW, login("n-123")).is_ok());
}

#[test]
fn claims_map_by_name_path_table_and_allow_list() {
    let k = ec_key("k1");
    let keys = set(&[&k]);
    let mut s = spec();
    s.identity_claim = "email".into();
    s.groups_claim = "realm_access/roles".into();
    s.allowed_groups = Some(["eng".to_string()].into_iter().collect());
    s.group_map = [("Database Admins".to_string(), "dba".to_string())]
        .into_iter()
        .collect();
    let mut c = claims();
    c["email"] = json!("alice@example.com");
    c["email_verified"] = json!(true);
    c["realm_access"] = json!({"roles": ["eng", "Database Admins", "marketing", "eng"]});
    let v = check(&s, &keys, &sign(&k, &c)).unwrap();
    assert_eq!(v.identity.name, "alice@example.com");
    assert_eq!(v.identity.groups, vec!["dba", "eng"]);
    assert_eq!(v.ignored_groups, vec!["marketing"]);
    // A mapping table alone: only mapped groups count; a string claim is one group.
    s.allowed_groups = None;
    c["realm_access"] = json!({"roles": ["dba", "Database Admins"]});
    let v = check(&s, &keys, &sign(&k, &c)).unwrap();
    assert_eq!(v.identity.groups, vec!["dba"]);
    assert_eq!(v.ignored_groups, vec!["dba"]);
    c["realm_access"] = json!({"roles": "Database Admins"});
    let v = check(&s, &keys, &sign(&k, &c)).unwrap();
    assert_eq!(v.identity.groups, vec!["dba"]);
    // An email the provider did not verify names no one.
    c["email_verified"] = json!(false);
    assert!(matches!(
        check(&s, &keys, &sign(&k, &c)),
        Err(Refusal::BadIdentity(_))
    ));
    c["email_verified"] = json!(true);
    // A password JWT for the login client is an ID token, not a password.
    let mut id_token = c.clone();
    id_token["aud"] = json!("login-client");
    assert_eq!(
        check(&s, &keys, &sign(&k, &id_token)),
        Err(Refusal::WrongAudience)
    );
    // A namespaced claim is a top-level name, never a path.
    s.allowed_groups = Some(["eng".to_string()].into_iter().collect());
    s.groups_claim = "https://example.com/groups".into();
    c["https://example.com/groups"] = json!(["eng"]);
    let v = check(&s, &keys, &sign(&k, &c)).unwrap();
    assert_eq!(v.identity.groups, vec!["eng"]);
    // Missing identity claim.
    c.as_object_mut().unwrap().remove("email");
    assert_eq!(
        check(&s, &keys, &sign(&k, &c)),
        Err(Refusal::MissingClaim("email".into()))
    );
}

#[test]
fn urls_must_be_https_except_on_loopback() {
    assert!(check_url("https://idp.example.com/x").is_ok());
    assert!(check_url("http://127.0.0.1:8080/x").is_ok());
    assert!(check_url("http://[::1]:8080/x").is_ok());
    assert!(check_url("http://localhost/x").is_ok());
    assert!(check_url("http://idp.example.com/x").is_err());
    assert!(check_url("http://127.0.0.1.evil.com/x").is_err());
    assert!(check_url("file:///etc/passwd").is_err());
}

#[test]
fn jwt_shape() {
    assert!(looks_like_jwt("eyJhbGciOi.eyJ.sig"));
    assert!(!looks_like_jwt("gh_abcdef"));
    assert!(!looks_like_jwt("eyJ.only-two"));
}

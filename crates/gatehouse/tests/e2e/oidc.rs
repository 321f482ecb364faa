//! Identities from an OpenID Provider, end to end against a real one (`oidc-provider`):
//! workload JWTs as passwords over TLS (psql), every refusal with its reason in the audit
//! trail, key rotation; `gatehouse login` by the device grant and by the browser (PKCE,
//! loopback redirect), the credential used by psql, groups from the IdP deciding unmasking,
//! removal from a group taking effect at the next login, and logout.

mod attacks;
mod attacks2;
mod idp;

use crate::harness::{Gatehouse, Options, OIDC_SECRET_ENV, WAIT};
use crate::tls_modern::certs::{self, Kind};
use idp::{alice, Idp};
use serde_json::{json, Value};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

pub(crate) use crate::harness::psql_as as psql;

async fn jwt_proxy(idp: &Idp, cert: &certs::Cert) -> Gatehouse {
    Gatehouse::start_with(Options {
        extra_toml: format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_auth = \"password\"\n\
             [[identity_providers]]\nname = \"ci\"\nissuer = {:?}\naudience = [\"gatehouse-db\"]\n\
             allowed_groups = [\"deploy\"]\n",
            cert.crt.display().to_string(),
            cert.key.display().to_string(),
            idp.issuer
        ),
        ..Options::default()
    })
    .await
}

fn workload(sub: &str) -> Value {
    json!({ "sub": sub, "aud": "gatehouse-db", "groups": ["deploy", "marketing"] })
}

#[tokio::test]
async fn workload_jwt_as_password_over_tls() {
    let idp = Idp::start(json!([alice(&[])])).await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = jwt_proxy(&idp, &cert).await;
    let jwt = idp.sign(workload("ci-job-7"), json!({})).await;
    // By the provider's name, or by the identity the token names.
    for user in ["ci", "ci-job-7"] {
        let (ok, out) = psql(&gh, user, &jwt, "sslmode=require", "SELECT current_setting('gatehouse.identity'), current_setting('gatehouse.identity_kind')").await;
        assert!(ok, "{user}: {out}");
        assert_eq!(out, "ci-job-7|agent");
    }
    // ES256 keys of the provider too.
    let es = idp
        .sign(workload("ci-job-8"), json!({ "alg": "ES256" }))
        .await;
    let (ok, out) = psql(&gh, "ci", &es, "sslmode=require", "SELECT 1").await;
    assert!(ok, "{out}");
    // A Gatehouse token still works in the same password field.
    let token = gh.issue("bob", "human", &[]).await;
    let (ok, out) = psql(&gh, "bob", &token, "sslmode=require", "SELECT 1").await;
    assert!(ok, "{out}");
    // Never without TLS: the server asks for SCRAM, which a JWT cannot answer.
    let (ok, out) = psql(&gh, "ci", &jwt, "sslmode=disable", "SELECT 1").await;
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );
    // The evidence: identity, kind, mapped groups (marketing is not allowed) and the IdP.
    let events = gh
        .wait_events("jwt logins", |evs| {
            evs.iter()
                .filter(|e| e["kind"] == "authenticated" && e["identity"] == "ci-job-7")
                .count()
                >= 2
        })
        .await;
    let ev = events
        .iter()
        .find(|e| e["kind"] == "authenticated" && e["identity"] == "ci-job-7")
        .unwrap();
    assert_eq!(ev["identity_kind"], "agent");
    assert_eq!(ev["groups"], json!(["deploy"]));
    assert_eq!(
        ev["idp"],
        json!({ "provider": "ci", "issuer": idp.issuer, "subject": "ci-job-7" })
    );
    let stmt = events
        .iter()
        .find(|e| e["kind"] == "statement" && e["identity"] == "ci-job-7")
        .unwrap();
    assert_eq!(stmt["idp"]["subject"], "ci-job-7");
}

#[tokio::test]
async fn every_bad_workload_jwt_is_refused_with_its_reason() {
    let idp = Idp::start(json!([alice(&[])])).await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = jwt_proxy(&idp, &cert).await;
    let now = chrono::Utc::now().timestamp();
    let good = idp.sign(workload("ci-job-7"), json!({})).await;
    let tampered = {
        let parts: Vec<&str> = good.split('.').collect();
        let mut c = workload("ci-job-7");
        c["iss"] = json!(idp.issuer);
        c["exp"] = json!(now + 300);
        c["sub"] = json!("admin");
        use base64::Engine;
        let p = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c.to_string());
        format!("{}.{p}.{}", parts[0], parts[2])
    };
    let mut cases: Vec<(&str, String, &str)> = vec![
        (
            "wrong audience",
            idp.sign(json!({ "sub": "x", "aud": "other" }), json!({}))
                .await,
            "wrong audience",
        ),
        (
            "expired",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db", "exp": now - 3600, "iat": now - 7200 }),
                json!({}),
            )
            .await,
            "expired",
        ),
        (
            "not yet valid",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db", "nbf": now + 3600 }),
                json!({}),
            )
            .await,
            "not yet valid",
        ),
        (
            "wrong issuer",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db", "iss": "https://evil.example.com" }),
                json!({}),
            )
            .await,
            "not a configured identity provider",
        ),
        (
            "unknown key",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db" }),
                json!({ "kid": "no-such-key" }),
            )
            .await,
            "no key with kid",
        ),
        (
            "alg none",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db" }),
                json!({ "alg": "none" }),
            )
            .await,
            "algorithm",
        ),
        (
            "HS256 keyed with the public key",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db" }),
                json!({ "alg": "HS256" }),
            )
            .await,
            "algorithm",
        ),
        ("tampered payload", tampered, "bad signature"),
        (
            "oversized",
            idp.sign(
                json!({ "sub": "x", "aud": "gatehouse-db", "pad": "A".repeat(14_000) }),
                json!({}),
            )
            .await,
            "too large",
        ),
    ];
    cases.push(("another identity's user", good.clone(), "not user"));
    for (what, jwt, reason) in &cases {
        let user = if *what == "another identity's user" {
            "bob"
        } else {
            "ci"
        };
        let (ok, out) = psql(&gh, user, jwt, "sslmode=require", "SELECT 1").await;
        assert!(!ok, "{what}: accepted");
        assert!(
            out.contains(&format!(
                "password authentication failed for user \"{user}\""
            )),
            "{what}: {out}"
        );
        assert!(
            !out.contains(reason),
            "{what}: the client was told the reason: {out}"
        );
    }
    let events = gh
        .wait_events("refusals", |evs| {
            evs.iter().filter(|e| e["kind"] == "auth_failure").count() >= cases.len()
        })
        .await;
    let failures: Vec<String> = events
        .iter()
        .filter(|e| e["kind"] == "auth_failure")
        .map(|e| {
            e["outcome"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    for (what, jwt, reason) in &cases {
        assert!(
            failures.iter().any(|m| m.contains(reason)),
            "{what}: no audit reason containing {reason:?} in {failures:#?}"
        );
        let secret_part = jwt.rsplit('.').next().unwrap_or_default();
        if secret_part.len() > 10 {
            assert!(
                !events.iter().any(|e| e.to_string().contains(secret_part)),
                "{what}: token in the trail"
            );
        }
    }
}

/// Rotation: a token signed by a key published after the proxy fetched the key set is
/// accepted (one refresh on the unknown kid).
#[tokio::test]
async fn a_rotated_signing_key_is_fetched_at_its_first_token() {
    let idp = Idp::start(json!([alice(&[])])).await;
    let cert = certs::make(Kind::RsaSha256);
    let gh = jwt_proxy(&idp, &cert).await;
    let good = idp.sign(workload("ci-job-7"), json!({})).await;
    let (ok, out) = psql(&gh, "ci", &good, "sslmode=require", "SELECT 1").await;
    assert!(ok, "{out}");
    let kid = idp.rotate().await;
    // Fetched more than the minimum refresh interval ago (the first token, at most at start).
    tokio::time::sleep(identity::oidc::MIN_REFRESH).await;
    let rotated = idp.sign(workload("ci-job-9"), json!({})).await;
    let (ok, out) = psql(&gh, "ci", &rotated, "sslmode=require", "SELECT 1").await;
    assert!(ok, "token signed with rotated key {kid}: {out}");
    // The old key is still published: its tokens still verify.
    let (ok, out) = psql(&gh, "ci", &good, "sslmode=require", "SELECT 1").await;
    assert!(ok, "{out}");
}

const PEOPLE: &str = "
CREATE TABLE people (id int PRIMARY KEY, ssn text);
INSERT INTO people VALUES (1, '123-45-6789');
";

async fn login_proxy(idp: &Idp) -> Gatehouse {
    login_proxy_with(idp, "").await
}

/// `extra` is appended to the provider's table.
async fn login_proxy_with(idp: &Idp, extra: &str) -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: PEOPLE.into(),
        policies: r#"
@id("dba-sees-ssn")
permit(principal in Gatehouse::Group::"dba", action == Gatehouse::Action::"unmask", resource);
"#
        .into(),
        extra_toml: format!(
            "[[sensitive]]\ntarget = \"app\"\ncolumns = [\"public.people.ssn\"]\nmask = \"last4\"\n\
             [[identity_providers]]\nname = \"corp\"\nissuer = {:?}\nclient_id = \"gatehouse\"\n\
             client_secret_env = \"{OIDC_SECRET_ENV}\"\nidentity_claim = \"email\"\nkind = \"human\"\n\
             max_credential_ttl = \"1h\"\n{extra}",
            idp.issuer
        ),
    })
    .await
}

/// `gatehouse login` as a child process; its stderr lines are handed to `on_line` until it
/// returns true (the test then plays the user); the credential printed on stdout.
async fn login(gh: &Gatehouse, args: &[&str], idp: &Idp, person: (&str, &str)) -> String {
    let server = format!("http://127.0.0.1:{}", gh.admin_port.unwrap());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["login", "--server", &server])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        let line = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("login prints its instructions")
            .unwrap()
            .unwrap_or_else(|| panic!("login ended early: {seen:?}"));
        seen.push(line.clone());
        if let Some(code) = line.split("enter the code ").nth(1) {
            idp.complete_device(code.trim(), person.0, person.1).await;
            break;
        }
        if line.starts_with("http://") {
            idp.complete_code(line.trim(), person.0, person.1).await;
            break;
        }
    }
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout)
        .await
        .unwrap();
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .unwrap()
        .unwrap();
    while let Ok(Ok(Some(l))) =
        tokio::time::timeout(std::time::Duration::from_millis(100), lines.next_line()).await
    {
        seen.push(l);
    }
    assert!(status.success(), "login failed: {seen:?}");
    stdout.trim().to_owned()
}

#[tokio::test]
async fn device_login_groups_from_the_idp_decide_unmasking_until_the_next_login() {
    let idp = Idp::start(json!([alice(&["dba", "eng"])])).await;
    let gh = login_proxy(&idp).await;
    let first = login(&gh, &[], &idp, ("alice", "alice-pw")).await;
    assert!(first.starts_with("gh_"), "{first}");
    // SCRAM, no TLS: like any Gatehouse token.
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &first,
        "",
        "SELECT ssn FROM people",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "123-45-6789", "dba from the IdP may unmask");
    // The session's events name the provider that vouched for the credential's person.
    let events = gh
        .wait_events("the login session", |evs| {
            evs.iter()
                .any(|e| e["kind"] == "statement" && e["identity"] == "alice@example.com")
        })
        .await;
    let stmt = events
        .iter()
        .find(|e| e["kind"] == "statement" && e["identity"] == "alice@example.com")
        .unwrap();
    assert_eq!(stmt["idp"]["subject"], "alice");
    assert_eq!(stmt["idp"]["provider"], "corp");

    // Removed from dba at the IdP: the next login's credential no longer unmasks.
    idp.set_users(json!([alice(&["eng"])])).await;
    let second = login(&gh, &["--print"], &idp, ("alice", "alice-pw")).await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &second,
        "",
        "SELECT ssn FROM people",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "****6789");

    // Logout revokes the first credential.
    let server = format!("http://127.0.0.1:{}", gh.admin_port.unwrap());
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["logout", "--server", &server, "--token", &first])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, out) = psql(&gh, "alice@example.com", &first, "", "SELECT 1").await;
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );
    let (ok, _) = psql(&gh, "alice@example.com", &second, "", "SELECT 1").await;
    assert!(ok);
    // Approvers log in the same way: the credential is a person's bearer token for the
    // approvals API too; the revoked one is not.
    let approvals = format!("{server}/api/approvals");
    let r = idp::http()
        .get(&approvals)
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = idp::http()
        .get(&approvals)
        .bearer_auth(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Credentials issued and revoked (the starts of the two logins are recorded apart).
    let credential = |e: &&Value| {
        e["kind"] == "login"
            && e["statement"]
                .as_str()
                .unwrap_or("")
                .starts_with("credential")
    };
    let events = gh
        .wait_events("logins", |evs| evs.iter().filter(credential).count() >= 3)
        .await;
    let starts = events
        .iter()
        .filter(|e| {
            e["kind"] == "login"
                && e["statement"]
                    .as_str()
                    .unwrap_or("")
                    .contains("device login")
        })
        .count();
    assert_eq!(starts, 2);
    let logins: Vec<&Value> = events.iter().filter(credential).collect();
    assert_eq!(logins[0]["identity"], "alice@example.com");
    assert_eq!(logins[0]["identity_kind"], "human");
    assert_eq!(logins[0]["groups"], json!(["dba", "eng"]));
    assert_eq!(
        logins[0]["idp"],
        json!({ "provider": "corp", "issuer": idp.issuer, "subject": "alice" })
    );
    assert_eq!(logins[1]["groups"], json!(["eng"]));
    assert!(logins[2]["statement"]
        .as_str()
        .unwrap()
        .contains("revoked at logout"));
    assert_eq!(gh.verify().await.0, 0);
}

#[tokio::test]
async fn browser_login_with_pkce_and_a_loopback_redirect() {
    let idp = Idp::start(json!([alice(&["eng"])])).await;
    let gh = login_proxy(&idp).await;
    let token = login(&gh, &["--browser"], &idp, ("alice", "alice-pw")).await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &token,
        "",
        "SELECT current_setting('gatehouse.identity')",
    )
    .await;
    assert!(ok, "{out}");
    assert_eq!(out, "alice@example.com");
}

#[tokio::test]
async fn login_endpoints_refuse_unknown_logins_and_non_loopback_redirects() {
    let idp = Idp::start(json!([alice(&["dba"])])).await;
    let gh = login_proxy(&idp).await;
    let server = format!("http://127.0.0.1:{}", gh.admin_port.unwrap());
    let http = idp::http();
    // A login no one completes is pending; an unknown login id is refused.
    let v: Value = http
        .post(format!("{server}/api/login/device"))
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(v["user_code"].is_string(), "{v}");
    let r = http
        .post(format!("{server}/api/login/device/poll"))
        .json(&json!({ "login_id": "nope" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // A redirect that is not loopback is refused before anything reaches the IdP.
    let r = http
        .post(format!("{server}/api/login/code"))
        .json(&json!({ "redirect_uri": "http://evil.example.com/callback" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// The provider is asked again while a credential lives (its refresh token): removed from a
/// group, the person's credential is revoked at the next re-check, not at its expiry; and
/// one whose account is gone is revoked too.
#[tokio::test]
async fn a_credential_is_revoked_when_the_idp_no_longer_vouches_for_its_groups() {
    let bob = json!({ "sub": "bob", "password": "bob-pw", "email": "bob@example.com",
                      "name": "Bob", "groups": ["eng"] });
    let idp = Idp::start(json!([alice(&["dba", "eng"]), bob.clone()])).await;
    let gh = login_proxy_with(&idp, "recheck_secs = 1\n").await;
    let alice_token = login(&gh, &[], &idp, ("alice", "alice-pw")).await;
    let bob_token = login(&gh, &[], &idp, ("bob", "bob-pw")).await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &alice_token,
        "",
        "SELECT ssn FROM people",
    )
    .await;
    assert!(ok && out == "123-45-6789", "{out}");
    // A session Alice keeps open (a pool's connection, a psql window).
    let held = gh.connect("alice@example.com", &alice_token).await;
    let ssn: String = held
        .query_one("SELECT ssn FROM people", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ssn, "123-45-6789");
    // Re-checks with nothing changed keep both credentials.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    for (user, token) in [
        ("alice@example.com", &alice_token),
        ("bob@example.com", &bob_token),
    ] {
        let (ok, out) = psql(&gh, user, token, "", "SELECT 1").await;
        assert!(ok, "{user}: {out}");
    }
    // Alice leaves dba; Bob's account is deleted.
    idp.set_users(json!([alice(&["eng"])])).await;
    let deadline = std::time::Instant::now() + WAIT;
    for (user, token) in [
        ("alice@example.com", &alice_token),
        ("bob@example.com", &bob_token),
    ] {
        loop {
            let (ok, out) = psql(&gh, user, token, "", "SELECT 1").await;
            if !ok {
                assert!(out.contains("password authentication failed"), "{out}");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{user}'s credential was not revoked"
            );
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    }
    // The open session ends with its credential (within a sweep of the live sessions).
    let until = std::time::Instant::now() + WAIT;
    while !held.is_closed() {
        assert!(
            std::time::Instant::now() < until,
            "the revoked credential's open session lives on"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(held.query_one("SELECT ssn FROM people", &[]).await.is_err());
    let events = gh
        .wait_events("revocations", |evs| {
            evs.iter()
                .filter(|e| {
                    e["kind"] == "login"
                        && e["statement"]
                            .as_str()
                            .unwrap_or("")
                            .contains("revoked because")
                })
                .count()
                >= 2
        })
        .await;
    let revoked: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["kind"] == "login"
                && e["statement"]
                    .as_str()
                    .unwrap_or("")
                    .contains("revoked because")
        })
        .collect();
    let of = |who: &str| {
        revoked
            .iter()
            .find(|e| e["identity"] == who)
            .unwrap_or_else(|| panic!("no revocation of {who}: {revoked:?}"))["statement"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        of("alice@example.com").contains("now gives groups [\"eng\"]"),
        "{}",
        of("alice@example.com")
    );
    assert!(
        of("bob@example.com").contains("refused to renew"),
        "{}",
        of("bob@example.com")
    );
    assert_eq!(revoked[0]["idp"]["provider"], "corp");
    // A new login gives Alice her groups of now.
    let again = login(&gh, &[], &idp, ("alice", "alice-pw")).await;
    let (ok, out) = psql(
        &gh,
        "alice@example.com",
        &again,
        "",
        "SELECT ssn FROM people",
    )
    .await;
    assert!(ok && out == "****6789", "{out}");
}

/// A provider that is down when the server starts does not stop it: Gatehouse tokens work,
/// and the provider's tokens are refused (with the reason) until it answers.
#[tokio::test]
async fn a_provider_that_is_down_does_not_stop_the_server() {
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let cert = certs::make(Kind::RsaSha256);
    let gh = Gatehouse::start_with(Options {
        extra_toml: format!(
            "[tls]\ncert = {:?}\nkey = {:?}\nclient_auth = \"password\"\n\
             [[identity_providers]]\nname = \"ci\"\nissuer = {issuer:?}\naudience = [\"db\"]\n",
            cert.crt.display().to_string(),
            cert.key.display().to_string(),
        ),
        ..Options::default()
    })
    .await;
    let token = gh.issue("bob", "human", &[]).await;
    let (ok, out) = psql(&gh, "bob", &token, "sslmode=require", "SELECT 1").await;
    assert!(ok, "{out}");
    // A token naming the unreachable issuer (its signature cannot even be looked at).
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let jwt = format!(
        "{}.{}.c2ln",
        b64(json!({ "alg": "RS256", "kid": "k" })),
        b64(
            json!({ "iss": issuer, "aud": "db", "sub": "job", "exp": chrono::Utc::now().timestamp() + 60 })
        )
    );
    let (ok, out) = psql(&gh, "ci", &jwt, "sslmode=require", "SELECT 1").await;
    assert!(
        !ok && out.contains("password authentication failed"),
        "{out}"
    );
    let events = gh
        .wait_events("the refusal", |evs| {
            evs.iter().any(|e| e["kind"] == "auth_failure")
        })
        .await;
    let reason = events
        .iter()
        .find(|e| e["kind"] == "auth_failure")
        .map(|e| e["outcome"]["message"].to_string())
        .unwrap();
    assert!(reason.contains("could not be fetched"), "{reason}");
    assert!(
        gh.log().contains("identity provider unavailable"),
        "{}",
        gh.log()
    );
}

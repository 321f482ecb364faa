//! A real OpenID Provider for the tests: `tests/oidc/provider.mjs` (npm `oidc-provider`,
//! installed by `make oidc`), with one confidential client `gatehouse` (device and code
//! grants, loopback redirects) and the users a test gives. `tests/oidc/user.mjs` plays the
//! person at its pages.

use crate::harness::{OIDC_SECRET, WAIT};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct Idp {
    pub issuer: String,
    child: tokio::process::Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn script(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
    assert!(
        root.join("node_modules/oidc-provider").exists(),
        "tests/oidc/node_modules is missing: run `make oidc` (part of `make test`)"
    );
    root.join(name)
}

/// An HTTP client (the process's rustls provider installed first).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

pub fn alice(groups: &[&str]) -> Value {
    json!({ "sub": "alice", "password": "alice-pw", "email": "alice@example.com",
            "name": "Alice", "groups": groups })
}

impl Idp {
    pub async fn start(users: Value) -> Idp {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("idp.json");
        let cfg = json!({
            "port": 0,
            "clients": [{
                "client_id": "gatehouse", "client_secret": OIDC_SECRET,
                "redirect_uris": ["http://127.0.0.1/callback"],
                "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "authorization_code", "refresh_token"],
            }],
            "users": users,
        });
        std::fs::write(&config, cfg.to_string()).unwrap();
        let mut child = tokio::process::Command::new("node")
            .arg(script("provider.mjs"))
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(WAIT, lines.next_line())
            .await
            .expect("the provider starts")
            .unwrap()
            .expect("the provider prints its address");
        let issuer = ready
            .strip_prefix("OIDC_READY ")
            .unwrap_or_else(|| panic!("unexpected provider output {ready:?}"))
            .trim()
            .to_owned();
        Idp {
            issuer,
            child,
            http: http(),
            _dir: dir,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let resp = self
            .http
            .post(format!("{}{path}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{path}: HTTP {}", resp.status());
        resp.json().await.unwrap()
    }

    /// A JWT signed by the provider's current key (or as `header` says), as a workload
    /// identity system would issue one; `null` claims are removed.
    pub async fn sign(&self, claims: Value, header: Value) -> String {
        let v = self
            .post("/test/sign", json!({ "claims": claims, "header": header }))
            .await;
        v["jwt"].as_str().unwrap().to_owned()
    }

    pub async fn set_users(&self, users: Value) {
        self.post("/test/users", json!({ "users": users })).await;
    }

    /// A new signing key (the old ones stay published); its kid.
    pub async fn rotate(&self) -> String {
        let v = self.post("/test/rotate", json!({})).await;
        v["kid"].as_str().unwrap().to_owned()
    }

    /// The person at the device page: enters `user_code`, logs in, consents.
    pub async fn complete_device(&self, user_code: &str, login: &str, password: &str) {
        let out = tokio::process::Command::new("node")
            .arg(script("user.mjs"))
            .args(["device", "--issuer", &self.issuer, "--user-code", user_code])
            .args(["--login", login, "--password", password])
            .output();
        let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
        assert!(
            out.status.success(),
            "user.mjs device: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The person in a browser: follows `url`, logs in, consents; the redirect is delivered.
    pub async fn complete_code(&self, url: &str, login: &str, password: &str) {
        let out = tokio::process::Command::new("node")
            .arg(script("user.mjs"))
            .args([
                "code",
                "--url",
                url,
                "--login",
                login,
                "--password",
                password,
            ])
            .output();
        let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
        assert!(
            out.status.success(),
            "user.mjs code: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

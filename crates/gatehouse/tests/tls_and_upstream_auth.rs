//! TLS on both sides and every upstream authentication method, through psql.
//!
//! Runs its own throwaway cluster (it needs its own pg_hba.conf and server certificate):
//! `scram` logs in with SCRAM-SHA-256 over TLS (`sslmode=require`), `md5` and `clear` with
//! MD5 and cleartext passwords. Clients reach Gatehouse over TLS (certificate from openssl).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PASSWORD: &str = "upstream-secret-1";

fn openssl_cert(dir: &Path, name: &str) {
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl req failed");
}

fn start_cluster() -> pgcluster::Cluster {
    let hba = "local all all trust\n\
               host all md5user 127.0.0.1/32 md5\n\
               host all clearuser 127.0.0.1/32 password\n\
               host all all 127.0.0.1/32 scram-sha-256\n";
    let cluster = pgcluster::Cluster::start(&pgcluster::Options {
        superuser_password: Some(PASSWORD.into()),
        hba: Some(hba.into()),
        settings: vec![],
    })
    .expect("throwaway cluster");
    // Server TLS: a certificate inside the data directory, readable by the server only.
    let data = cluster.dir.join("data");
    openssl_cert(&data, "server");
    let _ = Command::new("chown")
        .arg("postgres")
        .arg(data.join("server.key"))
        .arg(data.join("server.crt"))
        .status();
    let _ = Command::new("chmod")
        .arg("600")
        .arg(data.join("server.key"))
        .status();
    cluster
        .psql("postgres", "ALTER SYSTEM SET ssl = on")
        .expect("ssl on");
    cluster
        .psql("postgres", "SELECT pg_reload_conf()")
        .expect("reload");
    cluster
        .psql(
            "postgres",
            &format!(
                "SET password_encryption = 'md5'; CREATE ROLE md5user LOGIN PASSWORD '{PASSWORD}'; \
                 RESET password_encryption; CREATE ROLE clearuser LOGIN PASSWORD '{PASSWORD}'",
            ),
        )
        .expect("roles");
    cluster
}

struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn gatehouse(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .expect("gatehouse runs")
}

fn serve(dir: &Path, config: &str, port: u16) -> Serve {
    let path = dir.join("gatehouse.toml");
    std::fs::write(&path, config).expect("config");
    let log = std::fs::File::create(dir.join("serve.log")).expect("log");
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("serve")
        .arg("--config")
        .arg(&path)
        .env("GH_TLS_TEST_PW", PASSWORD)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("serve starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "gatehouse did not start: {}",
            std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Serve(child)
}

fn psql(conninfo: &str, token: &str, sql: &str) -> (bool, String) {
    let out = Command::new("psql")
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", conninfo, "-c", sql])
        .env("PGPASSWORD", token)
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("psql runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

#[test]
fn tls_both_sides_and_all_upstream_auth_methods() {
    let cluster = start_cluster();
    let dir = tempfile::tempdir().expect("tempdir");
    openssl_cert(dir.path(), "proxy");
    let port = pgcluster::free_port().expect("port");
    let pg = cluster.port;
    let config = format!(
        r#"data_dir = "data"
[listen]
postgres = "127.0.0.1:{port}"
[tls]
cert = "proxy.crt"
key = "proxy.key"
[[targets]]
name = "scram"
upstream = "postgresql://postgres@127.0.0.1:{pg}/postgres?sslmode=require"
password_env = "GH_TLS_TEST_PW"
[[targets]]
name = "md5"
upstream = "postgresql://md5user@127.0.0.1:{pg}/postgres"
password_env = "GH_TLS_TEST_PW"
[[targets]]
name = "clear"
upstream = "postgresql://clearuser@127.0.0.1:{pg}/postgres"
password_env = "GH_TLS_TEST_PW"
"#
    );
    let _serve = serve(dir.path(), &config, port);
    let cfg = dir.path().join("gatehouse.toml");
    let out = gatehouse(&[
        "token",
        "issue",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--identity",
        "tls-user",
    ]);
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(token.starts_with("gh_"), "token issue failed: {out:?}");

    // The client side is TLS (sslmode=require refuses a plaintext answer).
    let ci =
        |db: &str| format!("host=127.0.0.1 port={port} user=tls-user dbname={db} sslmode=require");
    let (ok, text) = psql(
        &ci("scram"),
        &token,
        "SELECT current_user || ' ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    );
    assert!(ok, "{text}");
    assert_eq!(
        text, "postgres true",
        "upstream over TLS as the configured user"
    );
    let (ok, text) = psql(&ci("md5"), &token, "SELECT current_user");
    assert!(ok && text == "md5user", "{text}");
    let (ok, text) = psql(
        &ci("clear"),
        &token,
        "SELECT current_setting('gatehouse.identity')",
    );
    assert!(ok && text == "tls-user", "{text}");

    // Without TLS the client still logs in with SCRAM.
    let plain = format!("host=127.0.0.1 port={port} user=tls-user dbname=md5 sslmode=disable");
    let (ok, text) = psql(&plain, &token, "SELECT 1");
    assert!(ok && text == "1", "{text}");
    let (ok, text) = psql(&plain, "gh_wrong", "SELECT 1");
    assert!(
        !ok && text.contains("password authentication failed"),
        "{text}"
    );
}

#[test]
fn cleartext_token_only_over_tls() {
    let cluster = start_cluster();
    let dir = tempfile::tempdir().expect("tempdir");
    openssl_cert(dir.path(), "proxy");
    let port = pgcluster::free_port().expect("port");
    let config = format!(
        r#"data_dir = "data"
[listen]
postgres = "127.0.0.1:{port}"
[tls]
cert = "proxy.crt"
key = "proxy.key"
client_auth = "password"
[[targets]]
name = "app"
upstream = "postgresql://postgres@127.0.0.1:{}/postgres"
password_env = "GH_TLS_TEST_PW"
"#,
        cluster.port
    );
    let _serve = serve(dir.path(), &config, port);
    let cfg = dir.path().join("gatehouse.toml");
    let out = gatehouse(&[
        "token",
        "issue",
        "--config",
        cfg.to_str().unwrap_or_default(),
        "--identity",
        "bob",
        "--kind",
        "agent",
    ]);
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    // Over TLS the proxy asks for a cleartext password; psql answers with the token.
    let tls = format!("host=127.0.0.1 port={port} user=bob dbname=app sslmode=require");
    let (ok, text) = psql(
        &tls,
        &token,
        "SELECT current_setting('gatehouse.identity_kind')",
    );
    assert!(ok && text == "agent", "{text}");
    // Without TLS the proxy's first authentication request is SASL (10), never cleartext (3).
    assert_eq!(first_auth_request(port), 10);
    let plain = format!("host=127.0.0.1 port={port} user=bob dbname=app sslmode=disable");
    let (ok, text) = psql(&plain, &token, "SELECT 1");
    assert!(ok, "{text}");
}

/// Sends a StartupMessage in the clear and returns the code of the first Authentication
/// request.
fn first_auth_request(port: u16) -> i32 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut body = Vec::new();
    body.extend_from_slice(&196_608i32.to_be_bytes());
    body.extend_from_slice(b"user\0bob\0database\0app\0\0");
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    s.write_all(&msg).expect("write");
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("read");
    assert_eq!(head[0], b'R', "expected an Authentication request");
    i32::from_be_bytes([head[5], head[6], head[7], head[8]])
}

//! `gatehouse login` / `gatehouse logout`: a person logs in at the company's OpenID Provider
//! through a running Gatehouse (its admin listener), which exchanges the verified ID token for
//! a short-lived Gatehouse credential. The device flow (RFC 8628) by default, or
//! `--browser`: authorization code with PKCE and a loopback redirect (RFC 8252).

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(Args, Debug)]
pub struct LoginArgs {
    /// URL of a running Gatehouse's admin listener (e.g. http://127.0.0.1:9187).
    #[arg(long, env = "GATEHOUSE_SERVER")]
    server: String,
    /// The identity provider's name in the server's config (needed when it has several).
    #[arg(long)]
    provider: Option<String>,
    /// Log in in a browser on this machine (authorization code + PKCE, loopback redirect)
    /// instead of entering a code on another device.
    #[arg(long)]
    browser: bool,
    /// Print `export PGUSER=… PGPASSWORD=…` lines for a shell.
    #[arg(long, conflicts_with_all = ["pgpass", "print"])]
    env: bool,
    /// Write the credential to the password file (PGPASSFILE, else ~/.pgpass) for the
    /// server's PostgreSQL listener, replacing an earlier line for the same identity there.
    #[arg(long, conflicts_with = "print")]
    pgpass: bool,
    /// Print only the credential (the default).
    #[arg(long)]
    print: bool,
}

#[derive(Args, Debug)]
pub struct LogoutArgs {
    #[arg(long, env = "GATEHOUSE_SERVER")]
    server: String,
    /// The credential to revoke.
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: String,
}

pub fn login(args: LoginArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let client = client()?;
        let done = if args.browser {
            browser(&client, &args).await?
        } else {
            device(&client, &args).await?
        };
        output(&args, &done)?;
        Ok(ExitCode::SUCCESS)
    })
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<ExitCode> {
    let runtime = runtime()?;
    runtime.block_on(async move {
        let client = client()?;
        let url = format!("{}/api/login/logout", args.server.trim_end_matches('/'));
        let resp = client.post(&url).bearer_auth(&args.token).send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            bail!("logout refused (HTTP {status}): {}", s(&v, "error"));
        }
        eprintln!("credential revoked");
        Ok(ExitCode::SUCCESS)
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?)
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

async fn post(
    client: &reqwest::Client,
    server: &str,
    path: &str,
    body: Value,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("{}{path}", server.trim_end_matches('/'));
    let resp = client
        .post(&url)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = resp.status().as_u16();
    let v: Value = resp.json().await.unwrap_or_default();
    Ok((status, v))
}

async fn device(client: &reqwest::Client, args: &LoginArgs) -> anyhow::Result<Value> {
    let (status, v) = post(
        client,
        &args.server,
        "/api/login/device",
        json!({ "provider": args.provider }),
    )
    .await?;
    if status != 200 {
        bail!("login refused (HTTP {status}): {}", s(&v, "error"));
    }
    let id = s(&v, "login_id").to_owned();
    eprintln!(
        "To log in, open {} and enter the code {}",
        s(&v, "verification_uri"),
        s(&v, "user_code")
    );
    if let Some(full) = v.get("verification_uri_complete").and_then(Value::as_str) {
        eprintln!("(or open {full})");
    }
    let mut interval = v.get("interval").and_then(Value::as_u64).unwrap_or(5);
    let deadline = std::time::Instant::now()
        + Duration::from_secs(v.get("expires_in").and_then(Value::as_u64).unwrap_or(600));
    loop {
        tokio::time::sleep(Duration::from_secs(interval)).await;
        if std::time::Instant::now() > deadline {
            bail!("the login expired before it was completed");
        }
        let (status, v) = post(
            client,
            &args.server,
            "/api/login/device/poll",
            json!({ "login_id": id }),
        )
        .await?;
        match status {
            200 => return Ok(v),
            202 => {
                interval = v
                    .get("interval")
                    .and_then(Value::as_u64)
                    .unwrap_or(interval)
            }
            502 => eprintln!("gatehouse: {} (retrying)", s(&v, "error")),
            _ => bail!("login refused (HTTP {status}): {}", s(&v, "error")),
        }
    }
}

async fn browser(client: &reqwest::Client, args: &LoginArgs) -> anyhow::Result<Value> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let redirect_uri = format!("http://{}/callback", listener.local_addr()?);
    let (status, v) = post(
        client,
        &args.server,
        "/api/login/code",
        json!({ "provider": args.provider, "redirect_uri": redirect_uri }),
    )
    .await?;
    if status != 200 {
        bail!("login refused (HTTP {status}): {}", s(&v, "error"));
    }
    let id = s(&v, "login_id").to_owned();
    eprintln!(
        "To log in, open this address in a browser on this machine:\n{}",
        s(&v, "authorization_url")
    );
    let (code, state) = tokio::time::timeout(Duration::from_secs(600), callback(&listener))
        .await
        .context("no answer from the browser within 10 minutes")??;
    let (status, v) = post(
        client,
        &args.server,
        "/api/login/code/finish",
        json!({ "login_id": id, "code": code, "state": state }),
    )
    .await?;
    if status != 200 {
        bail!("login refused (HTTP {status}): {}", s(&v, "error"));
    }
    Ok(v)
}

/// Waits for the browser's redirect to the loopback listener; answers it with a short page.
async fn callback(listener: &tokio::net::TcpListener) -> anyhow::Result<(String, String)> {
    loop {
        let (mut sock, _) = listener.accept().await?;
        let mut buf = vec![0u8; 8192];
        let mut n = 0;
        while n < buf.len() && !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
            let got = sock.read(&mut buf[n..]).await?;
            if got == 0 {
                break;
            }
            n += got;
        }
        let head = String::from_utf8_lossy(&buf[..n]).to_string();
        let target = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap_or("/")
            .to_owned();
        let Ok(url) = url::Url::parse(&format!("http://127.0.0.1{target}")) else {
            continue;
        };
        if url.path() != "/callback" {
            let _ = sock
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        let (body, result) = match (q.get("code"), q.get("state"), q.get("error")) {
            (Some(c), Some(st), None) => (
                "Logged in to Gatehouse. You may close this window.",
                Ok((c.clone(), st.clone())),
            ),
            _ => {
                let e = q.get("error").cloned().unwrap_or_else(|| "no code".into());
                (
                    "The login did not complete. You may close this window.",
                    Err(anyhow::anyhow!("the identity provider answered: {e}")),
                )
            }
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = sock.write_all(resp.as_bytes()).await;
        return result;
    }
}

fn output(args: &LoginArgs, v: &Value) -> anyhow::Result<()> {
    let (identity, token) = (s(v, "identity"), s(v, "token"));
    if token.is_empty() {
        bail!("the server answered without a credential");
    }
    let groups: Vec<&str> = v
        .get("groups")
        .and_then(Value::as_array)
        .map(|g| g.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let expires = chrono::DateTime::from_timestamp(
        v.get("expires_at").and_then(Value::as_i64).unwrap_or(0),
        0,
    )
    .map(|t| t.to_rfc3339())
    .unwrap_or_default();
    eprintln!(
        "logged in as {identity} (groups: {}); the credential expires at {expires}",
        groups.join(", ")
    );
    if args.env {
        println!("export PGUSER='{identity}'");
        println!("export PGPASSWORD='{token}'");
    } else if args.pgpass {
        let path = pgpass_path()?;
        let addr = s(v, "postgres");
        let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "5432"));
        write_pgpass(&path, host.trim_matches(['[', ']']), port, identity, token)?;
        eprintln!("written to {}", path.display());
    } else {
        println!("{token}");
    }
    Ok(())
}

fn pgpass_path() -> anyhow::Result<PathBuf> {
    if let Some(p) = std::env::var_os("PGPASSFILE") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME").context("HOME is not set (or set PGPASSFILE)")?;
    Ok(PathBuf::from(home).join(".pgpass"))
}

/// `host:port:*:user:password`, with `:` and `\` escaped as libpq reads them; an earlier line
/// for the same host, port and user is replaced. The file is kept private (0600).
fn write_pgpass(
    path: &std::path::Path,
    host: &str,
    port: &str,
    user: &str,
    token: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let esc = |x: &str| x.replace('\\', "\\\\").replace(':', "\\:");
    let prefix = format!("{}:{}:*:{}:", esc(host), esc(port), esc(user));
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines: Vec<String> = old
        .lines()
        .filter(|l| !l.starts_with(&prefix))
        .map(str::to_owned)
        .collect();
    lines.push(format!("{prefix}{}", esc(token)));
    let mut text = lines.join("\n");
    text.push('\n');
    let tmp = path.with_extension("gatehouse-tmp");
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_pgpass;

    #[test]
    fn pgpass_lines_are_escaped_replaced_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(
            &path,
            "other:5432:*:bob:x\n127.0.0.1:6432:*:alice@example.com:old\n",
        )
        .unwrap();
        write_pgpass(&path, "127.0.0.1", "6432", "alice@example.com", "gh_a:b\\c").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            "other:5432:*:bob:x\n127.0.0.1:6432:*:alice@example.com:gh_a\\:b\\\\c\n"
        );
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}

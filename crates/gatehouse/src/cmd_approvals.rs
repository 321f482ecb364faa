//! `gatehouse approvals`: list, show, approve and deny held statements through a running
//! server's admin API, as the approver (their own token from `GATEHOUSE_TOKEN` or `--token`).

use crate::config::Config;
use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct Server {
    /// The server's configuration (its `[listen] admin` address is used).
    #[arg(long, short, conflicts_with = "server")]
    config: Option<PathBuf>,
    /// Base URL of the admin listener, e.g. http://127.0.0.1:9187.
    #[arg(long)]
    server: Option<String>,
    /// Your own Gatehouse token.
    #[arg(long, env = "GATEHOUSE_TOKEN", hide_env_values = true)]
    token: String,
}

#[derive(Subcommand, Debug)]
pub enum ApprovalsCommand {
    /// Pending requests.
    List {
        #[command(flatten)]
        server: Server,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// One request with everything an approver needs to decide.
    Show {
        #[command(flatten)]
        server: Server,
        id: String,
    },
    /// Approve a request (the reason is recorded in the audit trail).
    Approve {
        #[command(flatten)]
        server: Server,
        id: String,
        #[arg(long)]
        reason: String,
    },
    /// Deny a request (the requester sees your name and reason).
    Deny {
        #[command(flatten)]
        server: Server,
        id: String,
        #[arg(long)]
        reason: String,
    },
}

pub fn run(cmd: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cmd {
            ApprovalsCommand::List { server, json } => {
                let v = call(&server, reqwest::Method::GET, "", None).await?;
                let items = v.as_array().cloned().unwrap_or_default();
                if json {
                    for i in &items {
                        println!("{i}");
                    }
                } else if items.is_empty() {
                    println!("no pending requests");
                } else {
                    for i in &items {
                        println!(
                            "{}  {}  {}  groups={}  expires={}\n    {}",
                            s(i, "id"),
                            s(i, "identity"),
                            s(i, "target"),
                            list(i, "approver_groups"),
                            s(i, "expires_at"),
                            s(i, "statement")
                        );
                    }
                }
            }
            ApprovalsCommand::Show { server, id } => {
                let v = call(&server, reqwest::Method::GET, &id, None).await?;
                println!("{}", serde_json::to_string_pretty(&v)?);
            }
            ApprovalsCommand::Approve { server, id, reason } => {
                let v = vote(&server, &id, "approve", &reason).await?;
                println!("{}: {}", s(&v, "id"), s(&v, "state"));
            }
            ApprovalsCommand::Deny { server, id, reason } => {
                let v = vote(&server, &id, "deny", &reason).await?;
                println!("{}: {}", s(&v, "id"), s(&v, "state"));
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

async fn vote(
    server: &Server,
    id: &str,
    verb: &str,
    reason: &str,
) -> anyhow::Result<serde_json::Value> {
    let body = serde_json::json!({ "reason": reason });
    call(
        server,
        reqwest::Method::POST,
        &format!("{id}/{verb}"),
        Some(body),
    )
    .await
}

fn base(server: &Server) -> anyhow::Result<String> {
    if let Some(url) = &server.server {
        return Ok(url.trim_end_matches('/').to_owned());
    }
    let Some(path) = &server.config else {
        bail!("give --server URL or --config FILE");
    };
    let config = Config::load_for_admin(path)?;
    match config.listen_admin {
        Some(a) => Ok(format!("http://{a}")),
        None => bail!("{} has no [listen] admin address", path.display()),
    }
}

async fn call(
    server: &Server,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> anyhow::Result<serde_json::Value> {
    let mut url = format!("{}/api/approvals", base(server)?);
    if !path.is_empty() {
        url.push('/');
        url.push_str(path);
    }
    let client = reqwest::Client::new();
    let mut req = client.request(method, &url).bearer_auth(&server.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        let msg = v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("request failed");
        bail!("{msg} (HTTP {})", status.as_u16());
    }
    Ok(v)
}

/// A field for the terminal: control characters (escape sequences, carriage returns,
/// newlines that would fake list entries) are shown escaped, never interpreted.
fn s(v: &serde_json::Value, k: &str) -> String {
    let text = v
        .get(k)
        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
        .unwrap_or_default();
    text.chars()
        .flat_map(|c| {
            if c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

fn list(v: &serde_json::Value, k: &str) -> String {
    v.get(k)
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

//! `gatehouse approvals`: list, show, approve and deny held statements, and watch what
//! happens to requests, through a running server's admin API, as the approver (their own
//! token from `GATEHOUSE_TOKEN` or `--token`).

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
    /// Finished requests (approved, denied, expired, withdrawn), most recent first.
    History {
        #[command(flatten)]
        server: Server,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print what happens to requests as it happens (opened, voted, finished, used) until
    /// interrupted.
    Watch {
        #[command(flatten)]
        server: Server,
        /// One JSON object per line: {"event": KIND, "data": REQUEST}.
        #[arg(long)]
        json: bool,
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
            ApprovalsCommand::History {
                server,
                json,
                limit,
            } => {
                let path = format!("history?limit={limit}");
                let v = call(&server, reqwest::Method::GET, &path, None).await?;
                for i in v.as_array().cloned().unwrap_or_default() {
                    if json {
                        println!("{i}");
                    } else {
                        println!(
                            "{}  {}  {}  {}  {}\n    {}",
                            s(&i, "id"),
                            s(&i, "state"),
                            s(&i, "identity"),
                            s(&i, "target"),
                            s(&i, "created_at"),
                            s(&i, "statement")
                        );
                    }
                }
            }
            ApprovalsCommand::Watch { server, json } => watch(&server, json).await?,
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

/// Follows `GET /api/approvals/events` (server-sent events) and prints each event.
async fn watch(server: &Server, json: bool) -> anyhow::Result<()> {
    let url = format!("{}/api/approvals/events", base(server)?);
    let mut resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(&server.token)
        .header(reqwest::header::ACCEPT, "text/event-stream")
        .send()
        .await
        .with_context(|| format!("calling {url}"))?;
    let status = resp.status();
    if !status.is_success() {
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        let msg = v
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("request failed");
        bail!("{msg} (HTTP {})", status.as_u16());
    }
    eprintln!("watching approval requests at {url} (interrupt to stop)");
    let mut sse = SseLines::default();
    while let Some(chunk) = resp.chunk().await.context("reading the event stream")? {
        for (kind, data) in sse.push(&chunk) {
            let v: serde_json::Value = serde_json::from_str(&data).unwrap_or(data.into());
            if json {
                println!("{}", serde_json::json!({ "event": kind, "data": v }));
            } else if kind == "lagged" {
                println!("(missed {} events; run `approvals list`)", s(&v, "missed"));
            } else {
                println!(
                    "{}  {}  {}  {}  {}\n    {}",
                    s(&serde_json::json!({ "kind": kind }), "kind"),
                    s(&v, "id"),
                    s(&v, "state"),
                    s(&v, "identity"),
                    s(&v, "target"),
                    s(&v, "statement")
                );
            }
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    }
    bail!("the server ended the event stream")
}

/// Reads server-sent events from chunks: `event:` and `data:` fields up to a blank line
/// (comments and other fields ignored), per the HTML standard's event-stream format.
#[derive(Default)]
struct SseLines {
    buf: Vec<u8>,
    event: String,
    data: Vec<String>,
}

impl SseLines {
    /// The complete events in `chunk` (with what was buffered before it).
    fn push(&mut self, chunk: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    let kind = std::mem::take(&mut self.event);
                    let kind = if kind.is_empty() {
                        "message".into()
                    } else {
                        kind
                    };
                    out.push((kind, self.data.join("\n")));
                    self.data.clear();
                }
                self.event.clear();
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => value.clone_into(&mut self.event),
                "data" => self.data.push(value.to_owned()),
                _ => {}
            }
        }
        out
    }
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

#[cfg(test)]
mod tests {
    #[test]
    fn server_sent_events_across_chunks() {
        let mut sse = super::SseLines::default();
        assert!(sse.push(b": hello\n\nevent: ope").is_empty());
        let got = sse.push(b"ned\r\ndata: {\"id\":1}\n\n:\n\ndata: a\ndata:b\n\n");
        assert_eq!(
            got,
            [
                ("opened".to_owned(), "{\"id\":1}".to_owned()),
                ("message".to_owned(), "a\nb".to_owned())
            ]
        );
    }
}

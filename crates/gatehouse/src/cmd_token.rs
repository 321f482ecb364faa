//! `gatehouse token issue|list|revoke`: tokens live in the embedded store under `data_dir`,
//! as a hash and a SCRAM verifier only; the token itself is printed once, at issue.

use crate::config::Config;
use clap::Subcommand;
use model::IdentityKind;
use std::path::PathBuf;
use std::process::ExitCode;
use store::TokenStore;

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it (exactly one line, nothing else on stdout).
    Issue {
        #[arg(long, short)]
        config: PathBuf,
        /// The identity clients pass as `user`.
        #[arg(long)]
        identity: String,
        /// human or agent.
        #[arg(long, default_value = "human")]
        kind: IdentityKind,
        /// Group membership (repeatable), used by policies.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Lifetime, e.g. 8h, 30m, 7d.
        #[arg(long, default_value = "8h")]
        ttl: String,
    },
    /// List tokens (never the secrets).
    List {
        #[arg(long, short)]
        config: PathBuf,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (as shown by `token list`).
    Revoke {
        #[arg(long, short)]
        config: PathBuf,
        id: String,
    },
}

pub fn run(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    let now = chrono::Utc::now().timestamp();
    match cmd {
        TokenCommand::Issue {
            config,
            identity,
            kind,
            groups,
            ttl,
        } => {
            let store = open(&config)?;
            let ttl_secs = identity::parse_ttl(&ttl)?;
            let req = identity::IssueRequest {
                identity,
                kind,
                groups,
                ttl_secs,
            };
            let (token, _) = identity::issue_token(&store, &req, now, &mut rand::rngs::OsRng)?;
            println!("{token}");
        }
        TokenCommand::List { config, json } => {
            let store = open(&config)?;
            for t in store.list_tokens()? {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.is_active(now) {
                    "active"
                } else {
                    "expired"
                };
                if json {
                    let v = serde_json::json!({
                        "id": t.id, "identity": t.identity, "kind": t.kind, "groups": t.groups,
                        "created_at": ts(t.created_at), "expires_at": ts(t.expires_at), "state": state,
                    });
                    println!("{v}");
                } else {
                    println!(
                        "{}  {:<20} {:<6} {:<8} expires {}  groups [{}]",
                        t.id,
                        t.identity,
                        t.kind,
                        state,
                        ts(t.expires_at),
                        t.groups.join(",")
                    );
                }
            }
        }
        TokenCommand::Revoke { config, id } => {
            let store = open(&config)?;
            if !store.revoke_token(&id, now)? {
                anyhow::bail!("no active token with id {id}");
            }
            eprintln!("revoked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn open(config: &std::path::Path) -> anyhow::Result<store::SqliteStore> {
    let c = Config::load_for_admin(config)?;
    Ok(store::SqliteStore::open(&c.data_dir)?)
}

fn ts(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

//! The `gatehouse` binary: command line, configuration loading, and wiring of the crates.
//! No business logic lives here; each command is a thin file of its own.
#![forbid(unsafe_code)]

mod cmd_approvals;
mod cmd_audit;
mod cmd_classify;
mod cmd_demo;
mod cmd_login;
mod cmd_policy;
mod cmd_serve;
mod cmd_token;
mod config;
mod reload;
mod serve_approvals;
mod serve_login;
mod serve_webhooks;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Identity-aware proxy for PostgreSQL: every connection authenticated with a Gatehouse
/// token, every statement recorded in a tamper-evident audit trail.
#[derive(Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy with a configuration file (see docs/configuration.md).
    Serve {
        /// Path to the TOML configuration.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Start a throwaway PostgreSQL with fake PII, a proxy in front of it, and tokens for a
    /// person (alice) and an agent (report-bot). Ctrl-C stops and removes everything.
    Demo {
        /// Port for the proxy.
        #[arg(long, default_value_t = 6432)]
        port: u16,
    },
    /// Issue, list and revoke Gatehouse tokens.
    #[command(subcommand)]
    Token(cmd_token::TokenCommand),
    /// Scan a target's schema and a sample of its values; print suggested [[sensitive]]
    /// entries to review.
    Classify {
        #[arg(long, short)]
        config: PathBuf,
        /// The target to scan.
        #[arg(long)]
        target: String,
        /// Values sampled per column.
        #[arg(long, default_value_t = 20)]
        sample: usize,
    },
    /// Check policies, run policy test cases, explain a decision.
    #[command(subcommand)]
    Policy(cmd_policy::PolicyCommand),
    /// Inspect and verify the audit trail.
    #[command(subcommand)]
    Audit(cmd_audit::AuditCommand),
    /// List, show, approve and deny statements held for approval (through a running
    /// server's admin listener).
    #[command(subcommand)]
    Approvals(cmd_approvals::ApprovalsCommand),
    /// Log in at the company's identity provider through a running Gatehouse and get a
    /// short-lived credential for every PostgreSQL client.
    Login(cmd_login::LoginArgs),
    /// Revoke a credential from `gatehouse login`.
    Logout(cmd_login::LogoutArgs),
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve { config } => cmd_serve::run(&config),
        Command::Demo { port } => cmd_demo::run(port),
        Command::Token(t) => cmd_token::run(t),
        Command::Audit(a) => cmd_audit::run(a),
        Command::Approvals(a) => cmd_approvals::run(a),
        Command::Policy(p) => cmd_policy::run(p),
        Command::Login(a) => cmd_login::login(a),
        Command::Logout(a) => cmd_login::logout(a),
        Command::Classify {
            config,
            target,
            sample,
        } => cmd_classify::run(&config, &target, sample),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse: {e:#}");
            ExitCode::from(2)
        }
    }
}

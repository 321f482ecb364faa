//! `gatehouse policy check|test|explain`: validate policies, run a table of cases, and show
//! the facts and decision for one statement, all without a database.

use crate::config::Config;
use clap::Subcommand;
use model::decision::Decision;
use model::{Identity, IdentityKind};
use policy::{Policies, Principal, RequestContext};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate the schema, the built-in pack and the policy files; errors as file:line.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Run a table of cases (TOML: [[case]] identity, kind, groups, sql, expect, target);
    /// exits non-zero on any failure.
    Test {
        #[arg(long, short)]
        config: PathBuf,
        cases: PathBuf,
    },
    /// Show the facts of a statement, the decision and the policies that produced it.
    Explain {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        identity: String,
        #[arg(long, default_value = "human")]
        kind: IdentityKind,
        #[arg(long = "group")]
        groups: Vec<String>,
        /// Target (database) name the statement is for.
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        sql: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: Option<String>,
    identity: String,
    #[serde(default = "human")]
    kind: IdentityKind,
    #[serde(default)]
    groups: Vec<String>,
    target: Option<String>,
    sql: String,
    /// allow | deny | needs_approval
    expect: String,
    /// Optional: the policy id the decision must name.
    policy: Option<String>,
}

fn human() -> IdentityKind {
    IdentityKind::Human
}

pub fn run(cmd: PolicyCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { config } => {
            let c = Config::load_for_admin(&config)?;
            match c.policy.load() {
                Ok(p) => {
                    println!(
                        "policies OK: {} policies (built-in pack {})",
                        p.len(),
                        if c.policy.builtin { "on" } else { "off" }
                    );
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for e in errors {
                        println!("{e}");
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        PolicyCommand::Test { config, cases } => test(&config, &cases),
        PolicyCommand::Explain {
            config,
            identity,
            kind,
            groups,
            target,
            sql,
        } => {
            let (c, policies) = load(&config)?;
            let id = Identity {
                name: identity,
                kind,
                groups,
            };
            let analysis = sql::analyze(&sql, &sql::AnalyzeContext::default());
            println!("{}", serde_json::to_string_pretty(&analysis.statements)?);
            let d = decide(&c, &policies, id, target.as_deref(), &analysis.statements);
            println!("{}", serde_json::to_string_pretty(&d)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(config: &Path) -> anyhow::Result<(Config, Policies)> {
    let c = Config::load_for_admin(config)?;
    let p = c
        .policy
        .load()
        .map_err(|e| anyhow::anyhow!("policies:\n  {}", e.join("\n  ")))?;
    Ok((c, p))
}

fn decide(
    c: &Config,
    policies: &Policies,
    identity: Identity,
    target: Option<&str>,
    stmts: &[model::facts::StatementFacts],
) -> Decision {
    let target = target
        .map(str::to_owned)
        .or_else(|| c.proxy.targets.keys().min().cloned())
        .unwrap_or_default();
    let environment = c
        .proxy
        .targets
        .get(&target)
        .map(|t| t.environment.clone())
        .unwrap_or_default();
    let ctx = RequestContext {
        target,
        environment,
        ..Default::default()
    };
    policy::decide_all(policies, &Principal { identity }, stmts, &ctx)
}

fn test(config: &Path, cases: &Path) -> anyhow::Result<ExitCode> {
    let (c, policies) = load(config)?;
    let text = std::fs::read_to_string(cases)?;
    let cases: Cases =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", cases.display()))?;
    let mut failed = 0;
    for (i, case) in cases.case.iter().enumerate() {
        let id = Identity {
            name: case.identity.clone(),
            kind: case.kind,
            groups: case.groups.clone(),
        };
        let stmts = sql::analyze(&case.sql, &sql::AnalyzeContext::default()).statements;
        let d = decide(&c, &policies, id, case.target.as_deref(), &stmts);
        let blamed = match &d {
            Decision::Deny { policy_id, .. } | Decision::NeedsApproval { policy_id, .. } => {
                Some(policy_id.as_str())
            }
            Decision::Allow { .. } => None,
        };
        let ok =
            d.label() == case.expect && case.policy.as_deref().is_none_or(|p| Some(p) == blamed);
        let name = case
            .name
            .clone()
            .unwrap_or_else(|| format!("case {}", i + 1));
        if ok {
            println!("pass  {name}");
        } else {
            failed += 1;
            println!(
                "FAIL  {name}: expected {}{}, got {} {}",
                case.expect,
                case.policy
                    .as_deref()
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default(),
                d.label(),
                blamed.map(|p| format!("({p})")).unwrap_or_default()
            );
        }
    }
    println!("{} passed, {failed} failed", cases.case.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

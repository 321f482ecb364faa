//! `gatehouse demo`: a throwaway PostgreSQL seeded with fake PII, Gatehouse in front of it,
//! and tokens for a person and an agent, so the whole path can be tried in one command.

use crate::config::Config;
use anyhow::Context;
use model::IdentityKind;
use std::path::Path;
use std::process::ExitCode;

const SEED: &str = include_str!("demo_seed.sql");

/// A policy that holds writes to orders until a DBA approves them.
const DEMO_POLICY: &str = r#"@id("orders-writes-need-a-dba")
@reason("changes to orders need a DBA's approval")
@approval("dba")
forbid(principal, action, resource)
when { context.tables_written.contains("public.orders") };
"#;

pub fn run(port: u16) -> anyhow::Result<ExitCode> {
    let mut password = [0u8; 18];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut password);
    let password = hex::encode(password);
    eprintln!("starting a throwaway PostgreSQL cluster…");
    let cluster = pgcluster::Cluster::start(&pgcluster::Options {
        superuser_password: Some(password.clone()),
        ..Default::default()
    })?;
    cluster.psql("postgres", "CREATE DATABASE app")?;
    cluster
        .psql("app", SEED)
        .context("seeding the demo schema")?;

    let dir = cluster.dir.join("gatehouse");
    std::fs::create_dir_all(&dir)?;
    let config_path = dir.join("gatehouse.toml");
    std::fs::write(&config_path, demo_config(port, cluster.port))?;
    std::fs::write(dir.join("approvals.cedar"), DEMO_POLICY)?;
    // The upstream password reaches Gatehouse through the environment, never the file.
    std::env::set_var("GATEHOUSE_DEMO_DB_PASSWORD", &password);
    let config = Config::load(&config_path)?;
    let tokens = store::SqliteStore::open(&config.data_dir)?;
    let now = chrono::Utc::now().timestamp();
    let alice = issue(&tokens, "alice", IdentityKind::Human, &["analysts"], now)?;
    let bot = issue(&tokens, "report-bot", IdentityKind::Agent, &["bots"], now)?;
    let dba = issue(&tokens, "dana", IdentityKind::Human, &["dba"], now)?;
    print_instructions(port, &config_path, &alice, &bot, &dba);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(crate::cmd_serve::serve(config, None))?;
    eprintln!("stopping PostgreSQL and removing {}", cluster.dir.display());
    drop(cluster);
    Ok(ExitCode::SUCCESS)
}

fn demo_config(port: u16, pg_port: u16) -> String {
    let admin = port.wrapping_add(1);
    format!(
        r#"# Written by `gatehouse demo`; removed when the demo stops.
data_dir = "data"

[listen]
postgres = "127.0.0.1:{port}"
admin = "127.0.0.1:{admin}"

[policy]
paths = ["approvals.cedar"]

[approvals]
timeout_secs = 600

[[targets]]
name = "app"
engine = "postgres"
upstream = "postgresql://postgres@127.0.0.1:{pg_port}/app"
password_env = "GATEHOUSE_DEMO_DB_PASSWORD"
environment = "demo"

[[sensitive]]
target = "app"
columns = ["public.customers.email", "public.customers.phone"]
tags = ["pii", "contact"]
mask = "partial"

[[sensitive]]
target = "app"
columns = ["public.customers.ssn"]
tags = ["pii", "government_id"]
mask = "last4"

[[sensitive]]
target = "app"
columns = ["public.payments.card_number"]
tags = ["pci"]
mask = "last4"
"#
    )
}

fn issue(
    store: &store::SqliteStore,
    name: &str,
    kind: IdentityKind,
    groups: &[&str],
    now: i64,
) -> anyhow::Result<String> {
    let req = identity::IssueRequest {
        identity: name.into(),
        kind,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ttl_secs: 8 * 3600,
    };
    Ok(identity::issue_token(store, &req, now, &mut rand::rngs::OsRng)?.0)
}

fn print_instructions(port: u16, config: &Path, alice: &str, bot: &str, dba: &str) {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "gatehouse".into());
    let c = config.display();
    println!(
        r#"
Gatehouse demo is running. In another terminal:

  # alice, a person (group analysts)
  PGPASSWORD='{alice}' psql "host=127.0.0.1 port={port} dbname=app user=alice"

  # report-bot, an agent (group bots)
  PGPASSWORD='{bot}' psql "host=127.0.0.1 port={port} dbname=app user=report-bot"

  Try:  SELECT current_setting('gatehouse.identity');
        SELECT name, email, ssn FROM customers LIMIT 3;        -- masked
        SELECT card_number FROM payments LIMIT 2;             -- masked
        SELECT id FROM customers WHERE ssn LIKE '1%';         -- refused
        DELETE FROM orders;                                   -- refused
        UPDATE orders SET total_cents = 0 WHERE id = 1;       -- held for approval

  # dana, a DBA, approves the held statement (its id is in the NOTICE)
  GATEHOUSE_TOKEN='{dba}' {exe} approvals list --config {c}
  GATEHOUSE_TOKEN='{dba}' {exe} approvals approve ap_… --reason "checked" --config {c}

  # the audit trail
  {exe} audit tail --config {c} --limit 20
  {exe} audit tail --config {c} --json --follow
  {exe} audit verify --config {c}
  {exe} token list --config {c}

Press Ctrl-C to stop; the cluster and its data are removed.
"#
    );
}

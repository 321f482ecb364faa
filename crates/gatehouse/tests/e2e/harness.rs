//! The end-to-end harness: one upstream PostgreSQL per test run, one database and one
//! `gatehouse serve` process per test.
//!
//! Upstream: `GATEHOUSE_TEST_PG_URL` when set (any libpq URL or key=value string), otherwise
//! ONE throwaway cluster for the whole binary, started on first use and kept in a static (the
//! cluster's watchdog removes it when this process exits). The throwaway cluster has a
//! superuser password, so the proxy's upstream login exercises SCRAM.
//!
//! Each test gets its own database (a random name, dropped when the [`TestDb`] is dropped) and
//! its own proxy process ([`Gatehouse`]) with its own data directory, so tests run in parallel
//! without seeing each other's tokens or audit events.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

mod fixture;
pub use fixture::{Gatehouse, Options};

/// The environment variable the proxy reads the upstream password from.
pub const PASSWORD_ENV: &str = "GH_TEST_UPSTREAM_PASSWORD";

/// A webhook secret every proxy finds in its environment under [`WEBHOOK_SECRET_ENV`] (a
/// `[[approvals.webhooks]]` entry names it in `secret_env`).
pub const WEBHOOK_SECRET_ENV: &str = "GH_TEST_WEBHOOK_SECRET";
pub const WEBHOOK_SECRET: &str = "whsec-gatehouse-e2e";

/// The OpenID client secret every proxy finds under [`OIDC_SECRET_ENV`] (the test provider's
/// `gatehouse` client has it).
pub const OIDC_SECRET_ENV: &str = "GH_TEST_OIDC_CLIENT_SECRET";
pub const OIDC_SECRET: &str = "oidc-secret-e2e";

/// How long any wait in the harness may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// Where the upstream PostgreSQL is and how to log in as its superuser.
pub struct Upstream {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    cluster: Option<pgcluster::Cluster>,
}

static UPSTREAM: OnceLock<Upstream> = OnceLock::new();

/// The shared upstream, started on first use.
pub fn upstream() -> &'static Upstream {
    UPSTREAM.get_or_init(|| match std::env::var("GATEHOUSE_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => Upstream::from_url(url.trim()),
        _ => Upstream::throwaway(),
    })
}

impl Upstream {
    fn from_url(url: &str) -> Upstream {
        let cfg: Config = url
            .parse()
            .unwrap_or_else(|e| panic!("GATEHOUSE_TEST_PG_URL={url:?} does not parse: {e}"));
        let host = match cfg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            other => panic!("GATEHOUSE_TEST_PG_URL must name a TCP host, got {other:?}"),
        };
        Upstream {
            host,
            port: cfg.get_ports().first().copied().unwrap_or(5432),
            user: cfg.get_user().unwrap_or("postgres").to_owned(),
            password: cfg
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            cluster: None,
        }
    }

    fn throwaway() -> Upstream {
        let password = format!("up-{}-{}", std::process::id(), nanos());
        let cluster = pgcluster::Cluster::start(&pgcluster::Options {
            superuser_password: Some(password.clone()),
            hba: None,
            settings: vec![],
        })
        .unwrap_or_else(|e| panic!("cannot start a throwaway PostgreSQL cluster: {e}"));
        Upstream {
            host: "127.0.0.1".into(),
            port: cluster.port,
            user: "postgres".into(),
            password: Some(password),
            cluster: Some(cluster),
        }
    }

    /// A direct (not proxied) connection config for `db`.
    pub fn config(&self, db: &str) -> Config {
        let mut c = Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .dbname(db);
        if let Some(p) = &self.password {
            c.password(p);
        }
        c.connect_timeout(Duration::from_secs(10));
        c
    }

    /// A direct connection to `db` (the connection task is spawned on the current runtime).
    pub async fn connect(&self, db: &str) -> Client {
        let (client, conn) = self
            .config(db)
            .connect(NoTls)
            .await
            .unwrap_or_else(|e| panic!("direct upstream connection to {db}: {e}"));
        tokio::spawn(async move {
            let _ = conn.await;
        });
        client
    }

    /// libpq environment for a direct connection (psql, pgbench).
    pub fn libpq_env(&self, db: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGDATABASE", db.to_owned()),
        ];
        if let Some(p) = &self.password {
            env.push(("PGPASSWORD", p.clone()));
        }
        env
    }

    /// The server binaries of the throwaway cluster, if we started one.
    pub fn bindir(&self) -> Option<&Path> {
        self.cluster.as_ref().map(|c| c.bindir())
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A unique lower-case name with `prefix`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos() % 1_000_000
    )
}

/// A database of its own for one test; dropped (forcefully) when this is dropped.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub async fn create() -> TestDb {
        let name = unique("gh_e2e");
        let admin = upstream().connect("postgres").await;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        TestDb { name }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop may run inside a runtime (or while unwinding); a thread of its own with a
        // small runtime keeps it independent of both. Failures only leave a database behind.
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok((client, conn)) = upstream().config("postgres").connect(NoTls).await else {
                    return;
                };
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), client.batch_execute(&sql)).await;
            });
        })
        .join();
    }
}

/// Output of one CLI run.
#[derive(Debug)]
pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `gatehouse ARGS` with the upstream password in the environment (config loading needs
/// it even for CLI commands).
pub async fn gatehouse_cli(args: &[&str]) -> CliOutput {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args)
        .env(
            PASSWORD_ENV,
            upstream().password.clone().unwrap_or_default(),
        )
        .env("GATEHOUSE_LOG", "warn")
        .stdin(Stdio::null());
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("gatehouse {args:?} timed out"))
        .unwrap_or_else(|e| panic!("cannot run gatehouse {args:?}: {e}"));
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Connects with `cfg` and spawns the connection task; panics on failure.
pub async fn connect(cfg: Config) -> Client {
    let (client, conn) = tokio::time::timeout(WAIT, cfg.connect(NoTls))
        .await
        .unwrap_or_else(|_| panic!("connecting timed out"))
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e}"));
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// Connects and forwards the connection's asynchronous messages (notices, notifications).
pub async fn connect_with_messages(
    cfg: Config,
) -> (Client, tokio::sync::mpsc::UnboundedReceiver<AsyncMessage>) {
    let (client, mut conn) = tokio::time::timeout(WAIT, cfg.connect(NoTls))
        .await
        .unwrap_or_else(|_| panic!("connecting timed out"))
        .unwrap_or_else(|e| panic!("connecting through the proxy: {e}"));
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| conn.poll_message(cx));
        while let Some(Ok(m)) = futures_util::StreamExt::next(&mut messages).await {
            if tx.send(m).is_err() {
                break;
            }
        }
    });
    (client, rx)
}

/// The error a connection attempt ends with (it must fail).
pub async fn connect_err(cfg: Config) -> tokio_postgres::Error {
    match tokio::time::timeout(WAIT, cfg.connect(NoTls)).await {
        Ok(Ok(_)) => panic!("the connection was expected to be refused"),
        Ok(Err(e)) => e,
        Err(_) => panic!("the connection attempt timed out instead of being refused"),
    }
}

/// SQLSTATE and message of a server error.
pub fn db_error(e: &tokio_postgres::Error) -> (String, String) {
    match e.as_db_error() {
        Some(db) => (db.code().code().to_owned(), db.message().to_owned()),
        None => panic!("expected a server error with a SQLSTATE, got: {e:?}"),
    }
}

/// psql through `gh` as `user` with `password`, `extra` appended to the conninfo (e.g.
/// `sslmode=require`); whether it succeeded, and its stdout + stderr. The environment's libpq
/// settings that would change the connection are removed.
pub async fn psql_as(
    gh: &Gatehouse,
    user: &str,
    password: &str,
    extra: &str,
    sql: &str,
) -> (bool, String) {
    let out = tokio::process::Command::new(pg_tool("psql"))
        .arg(format!("{} {extra}", gh.conninfo(user)))
        .args(["-X", "-At", "-c", sql])
        .env("PGPASSWORD", password)
        .env_remove("PGSSLMODE")
        .env_remove("PGCHANNELBINDING")
        .env_remove("PGSERVICE")
        .stdin(Stdio::null())
        .output();
    let out = tokio::time::timeout(WAIT, out).await.unwrap().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_owned())
}

/// Finds a PostgreSQL client tool (psql, pgbench): PATH, then the cluster's bindir, then the
/// usual Debian locations.
pub fn pg_tool(name: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(b) = upstream().bindir() {
        dirs.push(b.to_path_buf());
    }
    if let Some(b) = pgcluster::find_bindir() {
        dirs.push(b);
    }
    if let Ok(rd) = std::fs::read_dir("/usr/lib/postgresql") {
        for e in rd.flatten() {
            dirs.push(e.path().join("bin"));
        }
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} not found on PATH or in a PostgreSQL bindir; install postgresql-client")
        })
}

/// The events of one kind.
pub fn of_kind<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events.iter().filter(|e| e["kind"] == kind).collect()
}

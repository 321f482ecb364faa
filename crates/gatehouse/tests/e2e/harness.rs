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
use std::time::{Duration, Instant};
use tokio_postgres::{AsyncMessage, Client, Config, NoTls};

/// The environment variable the proxy reads the upstream password from.
pub const PASSWORD_ENV: &str = "GH_TEST_UPSTREAM_PASSWORD";

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

/// Extra settings for a proxy.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// TOML appended after the `[[targets]]` entry; must start with a table header.
    pub extra_toml: String,
    /// Also listen for the admin endpoint (`/healthz`) on a free port.
    pub admin: bool,
}

/// One running `gatehouse serve` in front of its own test database.
pub struct Gatehouse {
    pub dir: tempfile::TempDir,
    pub config_path: PathBuf,
    pub port: u16,
    pub admin_port: Option<u16>,
    child: Option<std::process::Child>,
    /// Dropped after the proxy is stopped (see `Drop`).
    pub db: TestDb,
}

impl Gatehouse {
    pub async fn start() -> Gatehouse {
        Gatehouse::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Gatehouse {
        let db = TestDb::create().await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config_path = dir.path().join("gatehouse.toml");
        let log_path = dir.path().join("serve.log");
        // A port found free can be taken by another test before the proxy binds it: retry
        // with another one when that happens.
        let mut log = String::new();
        for _ in 0..5 {
            let port = free_port();
            let admin_port = opts.admin.then(free_port);
            let text = config_text(&db.name, port, admin_port, &opts.extra_toml);
            std::fs::write(&config_path, text).unwrap_or_else(|e| panic!("write config: {e}"));
            let mut child = spawn_serve(&config_path, &log_path);
            match wait_ready(port, &mut child, &log_path).await {
                Ok(()) => {
                    return Gatehouse {
                        dir,
                        config_path,
                        port,
                        admin_port,
                        child: Some(child),
                        db,
                    }
                }
                Err(l) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    if !l.contains("binding") {
                        panic!("gatehouse serve did not start:\n{l}");
                    }
                    log = l;
                }
            }
        }
        panic!("gatehouse serve did not start:\n{log}");
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The proxy's log so far (stderr of `serve`).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("serve.log")).unwrap_or_default()
    }

    /// Whether the serve process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Stops the proxy with SIGTERM (a clean shutdown drains the audit queue) and waits.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = child.id().to_string();
        let _ = tokio::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await;
        let deadline = Instant::now() + WAIT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "gatehouse serve exited with {status} on SIGTERM; log:\n{}",
                        self.log()
                    );
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                _ => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "gatehouse serve did not stop on SIGTERM; log:\n{}",
                        self.log()
                    );
                }
            }
        }
    }

    /// `gatehouse ARGS --config <this config>`.
    pub async fn cli(&self, args: &[&str]) -> CliOutput {
        let config = self.config_path.to_string_lossy().into_owned();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--config", &config]);
        gatehouse_cli(&all).await
    }

    /// Issues a token (default lifetime) and returns it.
    pub async fn issue(&self, identity: &str, kind: &str, groups: &[&str]) -> String {
        self.issue_ttl(identity, kind, groups, "8h").await
    }

    pub async fn issue_ttl(
        &self,
        identity: &str,
        kind: &str,
        groups: &[&str],
        ttl: &str,
    ) -> String {
        let mut args = vec![
            "token",
            "issue",
            "--identity",
            identity,
            "--kind",
            kind,
            "--ttl",
            ttl,
        ];
        for g in groups {
            args.extend(["--group", g]);
        }
        let out = self.cli(&args).await;
        assert_eq!(out.code, 0, "token issue failed: {out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "token issue must print exactly one line: {out:?}"
        );
        lines[0].trim().to_owned()
    }

    /// Every stored audit event, oldest first.
    pub async fn audit_events(&self) -> Vec<Value> {
        let out = self
            .cli(&["audit", "tail", "--json", "--limit", "100000"])
            .await;
        assert_eq!(out.code, 0, "audit tail failed: {out:?}");
        out.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("audit line {l:?}: {e}")))
            .collect()
    }

    /// Polls the audit trail (committed asynchronously, in groups) until `done` holds.
    pub async fn wait_events(&self, what: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let events = self.audit_events().await;
            if done(&events) {
                return events;
            }
            if Instant::now() > deadline {
                let dump: Vec<String> = events.iter().map(Value::to_string).collect();
                panic!(
                    "timed out waiting for audit events: {what}; have:\n{}",
                    dump.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `audit verify`: exit code and stdout.
    pub async fn verify(&self) -> (i32, String) {
        let out = self.cli(&["audit", "verify"]).await;
        (out.code, out.stdout)
    }

    /// tokio-postgres config for `user` with `token`, database `app`.
    pub fn pg_config(&self, user: &str, token: &str) -> Config {
        let mut c = Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(token)
            .dbname("app")
            .connect_timeout(Duration::from_secs(10));
        c
    }

    /// A libpq conninfo string without the password (pass it as PGPASSWORD).
    pub fn conninfo(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} dbname=app user={user} connect_timeout=10",
            self.port
        )
    }

    /// A proxied connection; the connection task runs on the current runtime.
    pub async fn connect(&self, user: &str, token: &str) -> Client {
        connect(self.pg_config(user, token)).await
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // A failing test shows what the proxy said (the log dies with the tempdir).
        if std::thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            eprintln!(
                "--- gatehouse serve log (last 60 lines) ---\n{}",
                tail.join("\n")
            );
        }
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

fn free_port() -> u16 {
    pgcluster::free_port().unwrap_or_else(|e| panic!("no free port: {e}"))
}

fn config_text(db: &str, port: u16, admin: Option<u16>, extra: &str) -> String {
    let up = upstream();
    let admin = admin
        .map(|p| format!("admin = \"127.0.0.1:{p}\"\n"))
        .unwrap_or_default();
    let password_env = if up.password.is_some() {
        format!("password_env = \"{PASSWORD_ENV}\"\n")
    } else {
        String::new()
    };
    format!(
        "data_dir = \"data\"\n\
         [listen]\npostgres = \"127.0.0.1:{port}\"\n{admin}\
         [[targets]]\nname = \"app\"\n\
         upstream = \"postgresql://{user}@{host}:{uport}/{db}\"\n{password_env}\
         {extra}\n",
        user = up.user,
        host = up.host,
        uport = up.port,
    )
}

fn spawn_serve(config: &Path, log: &Path) -> std::process::Child {
    let log_file = std::fs::File::create(log).unwrap_or_else(|e| panic!("create log: {e}"));
    std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env(
            PASSWORD_ENV,
            upstream().password.clone().unwrap_or_default(),
        )
        .env("GATEHOUSE_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn gatehouse serve: {e}"))
}

/// Waits until the proxy accepts TCP connections; on early exit returns its log.
async fn wait_ready(port: u16, child: &mut std::process::Child, log: &Path) -> Result<(), String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("exited with {status}:\n{text}"));
        }
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(format!("not listening after {WAIT:?}:\n{text}"));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
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

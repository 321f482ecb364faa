//! The per-test proxy: a `gatehouse serve` process with its own config, data directory and
//! test database, started on a free port and killed when dropped; plus the CLI helpers that
//! work on its config (tokens, audit tail/verify).

use super::{
    connect, gatehouse_cli, upstream, CliOutput, TestDb, OIDC_SECRET, OIDC_SECRET_ENV,
    PASSWORD_ENV, WAIT, WEBHOOK_SECRET, WEBHOOK_SECRET_ENV,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio_postgres::{Client, Config};

/// Extra settings for a proxy.
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// TOML appended after the `[[targets]]` entry; must start with a table header.
    pub extra_toml: String,
    /// Also listen for the admin endpoint (`/healthz`) on a free port.
    pub admin: bool,
    /// SQL run directly on the test database before the proxy starts (the proxy checks
    /// `[[sensitive]]` columns against the catalog at start).
    pub setup_sql: String,
    /// Extra policy text added to the suite's policy file.
    pub policies: String,
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
        if !opts.setup_sql.is_empty() {
            upstream()
                .connect(&db.name)
                .await
                .batch_execute(&opts.setup_sql)
                .await
                .unwrap_or_else(|e| panic!("setup SQL: {e}"));
        }
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
            std::fs::write(
                dir.path().join("test-permits.cedar"),
                format!("{TEST_PERMITS}\n{}", opts.policies),
            )
            .unwrap_or_else(|e| panic!("write policy: {e}"));
            let mut child = spawn_serve(&config_path, &log_path);
            let ready = match wait_ready(port, &mut child, &log_path).await {
                // The admin listener is bound just after the PostgreSQL one.
                Ok(()) => match admin_port {
                    Some(a) => wait_ready(a, &mut child, &log_path).await,
                    None => Ok(()),
                },
                Err(l) => Err(l),
            };
            match ready {
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

    /// Stops the proxy (SIGTERM) and starts it again on the same config, ports and data
    /// directory, as an operator's restart would; the first run's log is kept in
    /// `serve.1.log`.
    pub async fn restart(&mut self) {
        self.stop().await;
        let log_path = self.dir.path().join("serve.log");
        let _ = std::fs::rename(&log_path, self.dir.path().join("serve.1.log"));
        let mut child = spawn_serve(&self.config_path, &log_path);
        match wait_ready(self.port, &mut child, &log_path).await {
            Ok(()) => self.child = Some(child),
            Err(l) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("gatehouse serve did not start again:\n{l}");
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

fn free_port() -> u16 {
    pgcluster::free_port().unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// The suite's own policy file, next to the config: the built-in pack permits reads and
/// writes only, and the client tests also create tables and run DO blocks. The pack's
/// forbids (drops, unfiltered writes, …) still apply on top of these permits.
pub const TEST_PERMITS: &str = r#"
@id("test.permit-ddl-and-do")
permit(principal, action in [Gatehouse::Action::"ddl", Gatehouse::Action::"call_do", Gatehouse::Action::"utility"], resource);
"#;

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
         {policy}{extra}\n",
        policy = if extra.contains("[policy]") {
            ""
        } else {
            "[policy]\npaths = [\"test-permits.cedar\"]\n"
        },
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
        .env(WEBHOOK_SECRET_ENV, WEBHOOK_SECRET)
        .env(OIDC_SECRET_ENV, OIDC_SECRET)
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

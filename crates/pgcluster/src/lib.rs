//! Throwaway PostgreSQL clusters for `gatehouse demo` and the test suite: finds the server
//! binaries, runs initdb on a free port in a temporary directory, and removes everything
//! when dropped, or, should the owning process die first, from a watchdog that outlives it.
//!
//! As root, the server runs as the `postgres` OS user (initdb refuses to run as root).
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "PostgreSQL server binaries not found (looked on PATH, in `pg_config --bindir` and \
         /usr/lib/postgresql/*/bin); install them, e.g. `apt-get install postgresql`"
    )]
    NotFound,
    #[error("{step} failed: {detail}")]
    Step { step: &'static str, detail: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Where `initdb`, `pg_ctl` and `postgres` live.
pub fn find_bindir() -> Option<PathBuf> {
    let has = |d: &Path| d.join("initdb").is_file() && d.join("pg_ctl").is_file();
    if let Some(path) = std::env::var_os("PATH") {
        if let Some(d) = std::env::split_paths(&path).find(|d| has(d)) {
            // Follow symlinks (e.g. /usr/local/bin/initdb) to the real bindir, which holds
            // the rest of the server tools.
            let real = std::fs::canonicalize(d.join("initdb")).ok();
            return real
                .and_then(|r| r.parent().map(Path::to_path_buf))
                .or(Some(d));
        }
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let d = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has(&d) {
            return Some(d);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let d = e.path().join("bin");
            has(&d).then_some((v, d))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d)
}

/// A free TCP port on 127.0.0.1 (free when asked; callers bind it soon after).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Options for a new cluster.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Password of the `postgres` superuser; with it, TCP connections use SCRAM.
    pub superuser_password: Option<String>,
    /// Lines for pg_hba.conf replacing the default (`local trust` + host scram or trust).
    pub hba: Option<String>,
    /// Extra `-c name=value` server settings.
    pub settings: Vec<(String, String)>,
}

/// A running throwaway cluster.
#[derive(Debug)]
pub struct Cluster {
    pub port: u16,
    pub dir: PathBuf,
    bindir: PathBuf,
    stopped: bool,
}

impl Cluster {
    pub fn start(opts: &Options) -> Result<Cluster, ClusterError> {
        let bindir = find_bindir().ok_or(ClusterError::NotFound)?;
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("gatehouse-pg-{}-{port}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let cluster = Cluster {
            port,
            dir,
            bindir,
            stopped: false,
        };
        if is_root() {
            run(
                "chown",
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&cluster.dir),
            )?;
        }
        cluster.watchdog()?;
        cluster.init(opts)?;
        cluster.pg_ctl_start(opts)?;
        Ok(cluster)
    }

    /// A command run as the cluster's OS user.
    fn as_owner(&self, program: &str) -> Command {
        let exe = self.bindir.join(program);
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn init(&self, opts: &Options) -> Result<(), ClusterError> {
        let mut c = self.as_owner("initdb");
        c.arg("-D").arg(self.data()).args([
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        if let Some(pw) = &opts.superuser_password {
            let pwfile = self.dir.join("pwfile");
            std::fs::write(&pwfile, pw)?;
            if is_root() {
                run("chown", Command::new("chown").arg("postgres").arg(&pwfile))?;
            }
            c.arg(format!("--pwfile={}", pwfile.display()));
            c.args(["--auth-local=trust", "--auth-host=scram-sha-256"]);
        } else {
            c.args(["--auth=trust"]);
        }
        run("initdb", &mut c)?;
        if let Some(hba) = &opts.hba {
            std::fs::write(self.data().join("pg_hba.conf"), hba)?;
        }
        Ok(())
    }

    fn pg_ctl_start(&self, opts: &Options) -> Result<(), ClusterError> {
        let mut server_opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        for (k, v) in &opts.settings {
            server_opts.push_str(&format!(" -c {k}={v}"));
        }
        let log = self.dir.join("server.log");
        let mut c = self.as_owner("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .arg("-o")
            .arg(server_opts)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]);
        run("pg_ctl start", &mut c).map(|_| ()).map_err(|e| {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            ClusterError::Step {
                step: "pg_ctl start",
                detail: format!("{e}\n{tail}"),
            }
        })
    }

    /// Stops the server and removes the directory if this process dies without dropping
    /// the cluster (tests keep one in a static).
    fn watchdog(&self) -> Result<(), ClusterError> {
        let stop = format!(
            "{} {} -D {} -m immediate stop",
            if is_root() {
                "runuser -u postgres --"
            } else {
                ""
            },
            self.bindir.join("pg_ctl").display(),
            self.data().display()
        );
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 1; done; {stop} >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            dir = self.dir.display()
        );
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(())
    }

    /// Runs SQL through psql as the superuser over the Unix socket.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, ClusterError> {
        let mut c = self.as_owner("psql");
        c.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-h"])
            .arg(&self.dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                db,
                "-c",
                sql,
            ]);
        run("psql", &mut c)
    }

    /// A URL for a user over TCP.
    pub fn url(&self, user: &str, db: &str) -> String {
        format!("postgresql://{user}@127.0.0.1:{}/{db}", self.port)
    }

    pub fn bindir(&self) -> &Path {
        &self.bindir
    }

    /// Stops the server (fast shutdown) and removes its directory.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let mut c = self.as_owner("pg_ctl");
        c.arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"]);
        let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(step: &'static str, c: &mut Command) -> Result<String, ClusterError> {
    let out = c.stdin(Stdio::null()).output()?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ClusterError::Step {
            step,
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        })
    }
}

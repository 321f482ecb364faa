//! Protocol fuzzing of whole sessions: random interleavings of *well-formed* frontend messages
//! (simple Query, Parse/Bind/Describe/Execute/Close, Flush, Sync, CopyData/CopyDone/CopyFail)
//! drawn from a pool of statements that reach the suite's sensitive columns in every way the
//! other tests know (expressions, cursors, SQL PREPARE, search_path, temporary objects, COPY),
//! sent through the proxy to the real server. Each case is one connection running 1–3
//! sequences of 10–40 messages, sometimes reading in between; after each sequence a
//! checkpoint ends any COPY (CopyFail) and any extended-protocol error (Sync) and sends a
//! sentinel query whose answer must come back.
//!
//! Oracles, checked on every byte received:
//! 1. no clear sensitive value (`super::SECRETS`, case-insensitive, digit-only SSNs too);
//! 2. a connection that closes (unless we sent Terminate) ends with a FATAL ErrorResponse;
//! 3. no checkpoint waits longer than [`HANG`] (a hang is a failure);
//! 4. the proxy process survives every case, and a fresh session still runs `SELECT 1`.
//!
//! Seeds are fixed, so runs are reproducible. Knobs (environment):
//! - `GATEHOUSE_FUZZ_SEEDS=1,7,100..200` runs those seeds; `GATEHOUSE_FUZZ_ITERS=N` runs
//!   seeds `1..=N` (default [`CI_CASES`]);
//! - `GATEHOUSE_FUZZ_SHRINK=1` minimises each failing case (re-running it on fresh sessions);
//! - `GATEHOUSE_FUZZ_STRICT=1` also fails a session the proxy ends with its own FATAL
//!   (a desynchronisation on valid input: safe, but an outage for that client);
//! - `GATEHOUSE_FUZZ_TRACE=1` prints every message sent and received.
//!
//! A failure prints its seed, what the proxy logged, and the operations it ran as Rust code,
//! ready to paste into [`replay_ops`] (the ignored `replay` test; `GATEHOUSE_FUZZ_DIRECT=1`
//! sends them straight to PostgreSQL as a control). Minimal sequences found so far live in
//! [`known`] and run on every test run.

use super::rawpg::{self, RawPg};
use super::{leaked, start};
use crate::raw::{self, Msg};
use bytes::BytesMut;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

mod generate;
use generate::*;

/// Cases (connections) run by default: about 20 s of a debug build on 2 cores when nothing
/// fails (each case is 1–3 sequences on one connection).
const CI_CASES: u64 = 35;
/// How long a checkpoint may wait for its sentinel before the session counts as hung.
const HANG: Duration = Duration::from_secs(10);
/// Silence after a ReadyForQuery in a failed transaction: the sentinel was refused by the
/// server (25P02), so the checkpoint rolls back and asks again.
const QUIET: Duration = Duration::from_millis(200);
/// Silence that ends a mid-sequence read.
const DRAIN_QUIET: Duration = Duration::from_millis(30);

// ---------------------------------------------------------------------------------------
// Messages and operations

/// One frontend message (all well-formed; `Bind` sends `params` text parameters `'1'`).
#[derive(Clone, Debug, PartialEq)]
enum Fm {
    Query(String),
    Parse(String, String),
    Bind {
        portal: String,
        statement: String,
        params: usize,
        formats: Vec<i16>,
    },
    Describe(u8, String),
    Execute(String, i32),
    Close(u8, String),
    Flush,
    Sync,
    CopyData(String),
    CopyDone,
    CopyFail,
}

/// One step of a case. `Checkpoint` and `Recover` are numbered at run time, so a printed
/// case replays exactly.
#[derive(Clone, Debug, PartialEq)]
enum Op {
    /// Messages written in one go.
    Send(Vec<Fm>),
    /// Reads whatever arrives until [`DRAIN_QUIET`] of silence.
    Drain,
    /// CopyFail, Sync, `SELECT '<sentinel>'`; reads until the sentinel's ReadyForQuery.
    Checkpoint,
    /// A checkpoint whose query is `ROLLBACK; SELECT '<sentinel>'`, after a checkpoint that
    /// found a failed transaction.
    Recover,
    /// Terminate and close our side; the proxy must close the connection.
    Terminate,
}

fn q(sql: &str) -> Fm {
    Fm::Query(sql.into())
}
fn p(name: &str, sql: &str) -> Fm {
    Fm::Parse(name.into(), sql.into())
}
fn b(portal: &str, statement: &str, params: usize, formats: &[i16]) -> Fm {
    Fm::Bind {
        portal: portal.into(),
        statement: statement.into(),
        params,
        formats: formats.to_vec(),
    }
}
fn d(kind: u8, name: &str) -> Fm {
    Fm::Describe(kind, name.into())
}
fn x(portal: &str, max_rows: i32) -> Fm {
    Fm::Execute(portal.into(), max_rows)
}
fn c(kind: u8, name: &str) -> Fm {
    Fm::Close(kind, name.into())
}
fn cd(data: &str) -> Fm {
    Fm::CopyData(data.into())
}

impl Fm {
    fn encode(&self) -> BytesMut {
        match self {
            Fm::Query(s) => rawpg::query(s),
            Fm::Parse(n, s) => rawpg::parse(n, s),
            Fm::Bind {
                portal,
                statement,
                params,
                formats,
            } => rawpg::bind(portal, statement, &vec![Some("1"); *params], formats),
            Fm::Describe(k, n) => rawpg::describe(*k, n),
            Fm::Execute(n, rows) => rawpg::execute(n, *rows),
            Fm::Close(k, n) => rawpg::close(*k, n),
            Fm::Flush => rawpg::flush(),
            Fm::Sync => rawpg::sync(),
            Fm::CopyData(s) => rawpg::copy_data(s.as_bytes()),
            Fm::CopyDone => rawpg::copy_done(),
            Fm::CopyFail => rawpg::copy_fail("fuzz"),
        }
    }

    /// The message as Rust code (the constructors above), for replay.
    fn code(&self) -> String {
        let k = |k: &u8| format!("b'{}'", *k as char);
        match self {
            Fm::Query(s) => format!("q({s:?})"),
            Fm::Parse(n, s) => format!("p({n:?}, {s:?})"),
            Fm::Bind {
                portal,
                statement,
                params,
                formats,
            } => format!("b({portal:?}, {statement:?}, {params}, &{formats:?})"),
            Fm::Describe(kind, n) => format!("d({}, {n:?})", k(kind)),
            Fm::Execute(n, rows) => format!("x({n:?}, {rows})"),
            Fm::Close(kind, n) => format!("c({}, {n:?})", k(kind)),
            Fm::Flush => "Fm::Flush".into(),
            Fm::Sync => "Fm::Sync".into(),
            Fm::CopyData(s) => format!("cd({s:?})"),
            Fm::CopyDone => "Fm::CopyDone".into(),
            Fm::CopyFail => "Fm::CopyFail".into(),
        }
    }
}

/// A case as Rust code: `vec![Op::Send(vec![…]), Op::Checkpoint, …]`.
fn ops_code(ops: &[Op]) -> String {
    let mut out = String::from("vec![\n");
    for op in ops {
        match op {
            Op::Send(msgs) => {
                out.push_str("    Op::Send(vec![\n");
                for m in msgs {
                    out.push_str(&format!("        {},\n", m.code()));
                }
                out.push_str("    ]),\n");
            }
            other => out.push_str(&format!("    Op::{other:?},\n")),
        }
    }
    out.push(']');
    out
}

// ---------------------------------------------------------------------------------------
// Generation

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A clear sensitive value reached the client.
    Leak,
    /// The connection closed without a FATAL ErrorResponse as its last message.
    SilentClose,
    /// A checkpoint was not answered within the hang timeout.
    Hang,
    /// The proxy process exited.
    ProxyDown,
    /// `GATEHOUSE_FUZZ_STRICT=1` only: the proxy ended a session with its own FATAL (its
    /// model of the session and the server's responses disagreed on valid input).
    Desync,
}

struct Failure {
    kind: Kind,
    detail: String,
}

#[derive(Default)]
struct Stats {
    cases: u64,
    sequences: u64,
    messages: u64,
    checkpoints: u64,
    recovers: u64,
    rows: u64,
    refused: u64,
    errors: u64,
    /// Sessions ended by a FATAL error, by message: how many, and the first seed.
    fatal: BTreeMap<String, (u64, u64)>,
}

/// What a read step ended with.
enum Reached {
    Answered,
    /// Quiet after a ReadyForQuery in a failed transaction: the sentinel was refused.
    FailedTx,
    /// The proxy closed the connection after a FATAL error.
    Closed,
}

enum Next {
    Msg(Msg),
    Quiet,
    Closed,
}

/// One raw session that records everything it receives.
struct Session {
    s: TcpStream,
    buf: BytesMut,
    msgs: Vec<Msg>,
    bytes: Vec<u8>,
    closed: bool,
    sentinels: u32,
    hang: Duration,
    /// `GATEHOUSE_FUZZ_TRACE=1`: print every message received.
    trace: bool,
    /// `GATEHOUSE_FUZZ_STRICT=1`: a FATAL of the proxy's own is a failure too.
    strict: bool,
    /// Logged in directly to PostgreSQL (a control): clear values are expected.
    direct: bool,
}

/// Where a session logs in: through the proxy as `alice`, or directly to the test database
/// (a control: the same messages without Gatehouse).
#[derive(Clone, Copy)]
enum Target<'a> {
    Proxy { port: u16, token: &'a str },
    Direct { db: &'a str },
}

impl Session {
    async fn open(target: Target<'_>, hang: Duration) -> Session {
        let (s, buf) = match target {
            Target::Proxy { port, token } => proxy_login(port, token).await,
            Target::Direct { db } => direct_login(db).await,
        };
        Session {
            s,
            buf,
            msgs: Vec::new(),
            bytes: Vec::new(),
            closed: false,
            sentinels: 0,
            hang,
            trace: flag("GATEHOUSE_FUZZ_TRACE"),
            strict: flag("GATEHOUSE_FUZZ_STRICT"),
            direct: matches!(target, Target::Direct { .. }),
        }
    }

    async fn send(&mut self, msgs: &[Fm]) {
        let mut all = BytesMut::new();
        for m in msgs {
            if self.trace {
                eprintln!("  -> {}", m.code());
            }
            all.extend_from_slice(&m.encode());
        }
        // A proxy that ends the session may close before reading everything.
        let _ = self.s.write_all(&all).await;
    }

    async fn next(&mut self, wait: Duration) -> Next {
        if self.closed {
            return Next::Closed;
        }
        match tokio::time::timeout(wait, raw::read_msg(&mut self.s, &mut self.buf)).await {
            Err(_) => Next::Quiet,
            Ok(None) => {
                self.closed = true;
                Next::Closed
            }
            Ok(Some(m)) => {
                if self.trace {
                    let body = String::from_utf8_lossy(&m.body);
                    eprintln!(
                        "  <- {} {:?}",
                        m.tag as char,
                        body.chars().take(160).collect::<String>()
                    );
                }
                self.bytes.push(m.tag);
                self.bytes
                    .extend_from_slice(&(m.body.len() as u32 + 4).to_be_bytes());
                self.bytes.extend_from_slice(&m.body);
                self.msgs.push(m.clone());
                Next::Msg(m)
            }
        }
    }

    fn in_failed_tx(&self) -> bool {
        matches!(self.msgs.last(), Some(m) if m.tag == b'Z' && m.body.first() == Some(&b'E'))
    }

    /// Reads until the sentinel's row and ReadyForQuery. `may_fail`: the sentinel may be
    /// refused in a failed transaction (a Checkpoint; a Recover rolls back first).
    async fn answer(&mut self, sentinel: &str, may_fail: bool) -> Result<Reached, Failure> {
        let deadline = Instant::now() + self.hang;
        let mut seen = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let quiet = may_fail && self.in_failed_tx() && !seen && left > QUIET;
            match self.next(if quiet { QUIET } else { left }).await {
                Next::Msg(m) => {
                    seen |= m.tag == b'D' && contains(&m.body, sentinel.as_bytes());
                    if m.tag == b'Z' && seen {
                        return Ok(Reached::Answered);
                    }
                }
                Next::Quiet if quiet => return Ok(Reached::FailedTx),
                Next::Quiet => {
                    return Err(self.failure(
                        Kind::Hang,
                        &format!("no answer to {sentinel:?} within {:?}", self.hang),
                    ))
                }
                Next::Closed => return self.closed_with_fatal(),
            }
        }
    }

    /// Reads until [`DRAIN_QUIET`] of silence (at most the hang timeout).
    async fn drain(&mut self) -> Result<Reached, Failure> {
        let deadline = Instant::now() + self.hang;
        while Instant::now() < deadline {
            match self.next(DRAIN_QUIET).await {
                Next::Msg(_) => {}
                Next::Quiet => break,
                Next::Closed => return self.closed_with_fatal(),
            }
        }
        Ok(Reached::Answered)
    }

    fn closed_with_fatal(&self) -> Result<Reached, Failure> {
        match self.msgs.last() {
            Some(m) if m.tag == b'E' && m.field(b'S').as_deref() == Some("FATAL") => {
                let ours = m.field(b'M').is_some_and(|t| t.starts_with("gatehouse:"));
                if self.strict && ours {
                    return Err(self.failure(Kind::Desync, "the proxy ended the session"));
                }
                Ok(Reached::Closed)
            }
            _ => Err(self.failure(
                Kind::SilentClose,
                "the proxy closed the connection without a FATAL ErrorResponse",
            )),
        }
    }

    async fn run(&mut self, op: &Op) -> Result<Reached, Failure> {
        let reached = match op {
            Op::Send(msgs) => {
                self.send(msgs).await;
                return Ok(Reached::Answered);
            }
            Op::Drain => self.drain().await,
            Op::Checkpoint | Op::Recover => {
                self.sentinels += 1;
                let sentinel = format!("gh-fuzz-sentinel-{}", self.sentinels);
                let select = format!("SELECT '{sentinel}' AS sentinel");
                let sql = match op {
                    Op::Checkpoint => select,
                    _ => format!("ROLLBACK; {select}"),
                };
                self.send(&[Fm::CopyFail, Fm::Sync, Fm::Query(sql)]).await;
                self.answer(&sentinel, *op == Op::Checkpoint).await
            }
            Op::Terminate => {
                // As libpq does: Terminate, then close our side. (The server ignores a
                // Terminate while it skips messages after an error, up to Sync.)
                let _ = self.s.write_all(&raw::message(b'X', &[])).await;
                let _ = self.s.shutdown().await;
                let deadline = Instant::now() + self.hang;
                while !self.closed && Instant::now() < deadline {
                    self.next(deadline.saturating_duration_since(Instant::now()))
                        .await;
                }
                if !self.closed {
                    return Err(self.failure(Kind::Hang, "still open after Terminate"));
                }
                Ok(Reached::Closed)
            }
        };
        if !self.direct {
            self.check_secrets()?;
        }
        reached
    }

    fn check_secrets(&self) -> Result<(), Failure> {
        let found = leaked(&self.bytes);
        if found.is_empty() {
            return Ok(());
        }
        let at = self
            .msgs
            .iter()
            .position(|m| !leaked(&m.body).is_empty())
            .unwrap_or(0);
        let m = &self.msgs[at];
        Err(self.failure(
            Kind::Leak,
            &format!(
                "clear sensitive values {found:?} in message #{at} {:?}: {:?}",
                m.tag as char,
                String::from_utf8_lossy(&m.body)
            ),
        ))
    }

    fn failure(&self, kind: Kind, what: &str) -> Failure {
        let tail: String = self
            .msgs
            .iter()
            .rev()
            .take(40)
            .map(|m| m.tag as char)
            .collect();
        let errors: Vec<String> = self
            .msgs
            .iter()
            .filter(|m| m.tag == b'E')
            .rev()
            .take(4)
            .map(|m| {
                format!(
                    "{} {} {}",
                    m.field(b'S').unwrap_or_default(),
                    m.field(b'C').unwrap_or_default(),
                    m.field(b'M').unwrap_or_default()
                )
            })
            .collect();
        Failure {
            kind,
            detail: format!(
                "{what}\n  last tags (newest first): {tail}\n  last errors (newest first): {errors:#?}"
            ),
        }
    }

    fn tally(&self, stats: &mut Stats, seed: u64) {
        for m in &self.msgs {
            match m.tag {
                b'D' => stats.rows += 1,
                b'E' if m.field(b'S').as_deref() == Some("FATAL") => {
                    let e = stats.fatal.entry(m.field(b'M').unwrap_or_default());
                    e.or_insert((0, seed)).0 += 1;
                }
                b'E' if m.field(b'C').as_deref() == Some("42501") => stats.refused += 1,
                b'E' => stats.errors += 1,
                _ => {}
            }
        }
    }
}

/// Logs in through the proxy, retrying while the upstream restarts after a crash.
async fn proxy_login(port: u16, token: &str) -> (TcpStream, BytesMut) {
    let mut tries = 0;
    loop {
        let login = std::panic::AssertUnwindSafe(raw::login(port, "alice", token));
        match futures_util::FutureExt::catch_unwind(login).await {
            Ok(ok) => return ok,
            Err(p) if tries >= 60 => std::panic::resume_unwind(p),
            Err(_) => tries += 1,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Logs in directly to the upstream database `db` as its superuser (SCRAM or trust).
async fn direct_login(db: &str) -> (TcpStream, BytesMut) {
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
    use postgres_protocol::message::frontend;
    let up = crate::harness::upstream();
    let mut s = TcpStream::connect((up.host.as_str(), up.port))
        .await
        .unwrap();
    let mut buf = BytesMut::new();
    s.write_all(&raw::startup(&[("user", &up.user), ("database", db)]))
        .await
        .unwrap();
    let password = up.password.clone().unwrap_or_default();
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    loop {
        let m = raw::read_msg(&mut s, &mut buf)
            .await
            .expect("closed during login");
        let mut out = BytesMut::new();
        match (m.tag, m.body.get(3)) {
            (b'R', Some(10)) => {
                frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut out).unwrap()
            }
            (b'R', Some(11)) => {
                scram.update(&m.body[4..]).unwrap();
                frontend::sasl_response(scram.message(), &mut out).unwrap();
            }
            (b'R', Some(12)) => scram.finish(&m.body[4..]).unwrap(),
            (b'E', _) => panic!("direct login refused: {:?}", m.field(b'M')),
            (b'Z', _) => return (s, buf),
            _ => {}
        }
        s.write_all(&out).await.unwrap();
    }
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| v == "1")
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Generates and runs the case of `seed`; returns the operations it ran (with the Recovers
/// it needed) and its failure, if any.
async fn fuzz_case(
    port: u16,
    token: &str,
    seed: u64,
    stats: &mut Stats,
) -> (Vec<Op>, Option<Failure>) {
    let mut gen = Gen {
        rng: Rng(seed),
        params: HashMap::new(),
    };
    let mut s = Session::open(Target::Proxy { port, token }, HANG).await;
    let mut done = Vec::new();
    let sequences = 1 + gen.rng.below(3);
    let terminate = gen.rng.chance(10);
    let mut failure = None;
    'case: for _ in 0..sequences {
        stats.sequences += 1;
        for op in gen.sequence() {
            if let Op::Send(m) = &op {
                stats.messages += m.len() as u64;
            }
            let r = s.run(&op).await;
            stats.checkpoints += u64::from(op == Op::Checkpoint && r.is_ok());
            done.push(op);
            match r {
                Err(f) => {
                    failure = Some(f);
                    break 'case;
                }
                Ok(Reached::Closed) => break 'case,
                Ok(Reached::FailedTx) => {
                    stats.recovers += 1;
                    done.push(Op::Recover);
                    match s.run(&Op::Recover).await {
                        Err(f) => {
                            failure = Some(f);
                            break 'case;
                        }
                        Ok(Reached::Closed) => break 'case,
                        Ok(_) => {}
                    }
                }
                Ok(Reached::Answered) => {}
            }
        }
    }
    if failure.is_none() && terminate && !s.closed {
        done.push(Op::Terminate);
        failure = s.run(&Op::Terminate).await.err();
    }
    s.tally(stats, seed);
    stats.cases += 1;
    (done, failure)
}

/// Runs recorded operations on a fresh session: the failure they end with, if any.
async fn replay_case(
    target: Target<'_>,
    ops: &[Op],
    hang: Duration,
    strict: bool,
) -> Option<Failure> {
    let mut s = Session::open(target, hang).await;
    s.strict |= strict;
    for op in ops {
        match s.run(op).await {
            Err(f) => return Some(f),
            Ok(Reached::Closed) => return None,
            Ok(_) => {}
        }
    }
    None
}

/// Removes operations and messages while the case still fails the same way.
async fn shrink(port: u16, token: &str, ops: Vec<Op>, kind: Kind) -> Vec<Op> {
    let hang = Duration::from_secs(4);
    let mut best = ops;
    let mut budget = 400;
    let mut progress = true;
    while progress && budget > 0 {
        progress = false;
        let mut i = 0;
        while i < best.len() && budget > 0 {
            // Drop the whole operation, then each of its messages.
            let mut candidates = vec![{
                let mut c = best.clone();
                c.remove(i);
                c
            }];
            if let Op::Send(msgs) = &best[i] {
                for j in 0..msgs.len() {
                    let mut c = best.clone();
                    if let Op::Send(m) = &mut c[i] {
                        m.remove(j);
                    }
                    candidates.push(c);
                }
            }
            let mut shrunk = false;
            for cand in candidates {
                budget -= 1;
                let f = replay_case(Target::Proxy { port, token }, &cand, hang, false).await;
                if f.is_some_and(|f| f.kind == kind) {
                    best = cand;
                    progress = true;
                    shrunk = true;
                    break;
                }
                if budget == 0 {
                    break;
                }
            }
            if !shrunk {
                i += 1;
            }
        }
        best.retain(|op| !matches!(op, Op::Send(m) if m.is_empty()));
    }
    best
}

/// `GATEHOUSE_FUZZ_SEEDS` (`1,5,100..200`), else seeds `1..=GATEHOUSE_FUZZ_ITERS`, else
/// `1..=CI_CASES`.
fn seeds() -> Vec<u64> {
    if let Ok(list) = std::env::var("GATEHOUSE_FUZZ_SEEDS") {
        let mut out = Vec::new();
        for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once("..") {
                Some((a, b)) => out.extend(a.parse::<u64>().unwrap()..b.parse::<u64>().unwrap()),
                None => out.push(part.parse().unwrap()),
            }
        }
        return out;
    }
    let n = std::env::var("GATEHOUSE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CI_CASES);
    (1..=n).collect()
}

/// A fresh session logs in and runs `SELECT 1` (the proxy still serves).
async fn still_serving(gh: &mut crate::harness::Gatehouse, token: &str) -> Result<(), String> {
    if !gh.is_running() {
        return Err("the proxy process exited".into());
    }
    let mut c = RawPg::login(gh.port, "alice", token).await;
    let r = c.simple("SELECT 1").await;
    if r.complete() && r.error().is_none() && r.cells() == ["1"] {
        Ok(())
    } else {
        Err(format!("SELECT 1 on a fresh session: {}", r.describe()))
    }
}

#[tokio::test]
async fn fuzz_valid_message_sequences_never_leak_hang_or_close_silently() {
    let (mut gh, token) = start().await;
    let seeds = seeds();
    let shrinking = flag("GATEHOUSE_FUZZ_SHRINK");
    let started = Instant::now();
    let mut stats = Stats::default();
    let mut failures = Vec::new();
    for &seed in &seeds {
        let log_from = gh.log().len();
        let (ops, failure) = fuzz_case(gh.port, &token, seed, &mut stats).await;
        let failure = failure.or_else(|| {
            (!gh.is_running()).then(|| Failure {
                kind: Kind::ProxyDown,
                detail: "the proxy process exited".into(),
            })
        });
        let Some(f) = failure else { continue };
        let log = gh.log();
        let said: Vec<&str> = log
            .get(log_from..)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
            .collect();
        let mut report = format!(
            "seed {seed}: {:?}: {}\n  the proxy said: {said:#?}\nsequence: {}",
            f.kind,
            f.detail,
            ops_code(&ops)
        );
        if shrinking && f.kind != Kind::ProxyDown {
            let small = shrink(gh.port, &token, ops, f.kind).await;
            report.push_str(&format!("\nminimised: {}", ops_code(&small)));
        }
        eprintln!("=== fuzz failure ===\n{report}\n");
        failures.push(report);
        if f.kind == Kind::ProxyDown {
            break;
        }
    }
    let serving = still_serving(&mut gh, &token).await;
    eprintln!(
        "fuzz: {} cases, {} sequences, {} messages, {} checkpoints ({} recovered from a failed \
         transaction), {} rows, {} refusals, {} other errors, sessions ended by FATAL (count, first seed): {:?}; {:.1?}",
        stats.cases,
        stats.sequences,
        stats.messages,
        stats.checkpoints,
        stats.recovers,
        stats.rows,
        stats.refused,
        stats.errors,
        stats.fatal,
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed (replay with GATEHOUSE_FUZZ_SEEDS=<seed>):\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n\n")
    );
    serving.unwrap_or_else(|e| panic!("after the fuzz run: {e}"));
}

/// The sequence to replay: paste a printed `sequence:` or `minimised:` here.
fn replay_ops() -> Vec<Op> {
    vec![
        Op::Send(vec![q("SELECT lower(email) FROM users"), Fm::Sync]),
        Op::Checkpoint,
    ]
}

/// Replays [`replay_ops`] on a fresh proxy with the same oracles:
/// `cargo test -p gatehouse --test e2e session_integrity::fuzz::replay -- --ignored --nocapture`
/// (`GATEHOUSE_FUZZ_TRACE=1` prints every message; `GATEHOUSE_FUZZ_DIRECT=1` sends the same
/// messages straight to PostgreSQL instead, as a control: leaks are expected there, hangs and
/// silent closes are the server's own).
#[tokio::test]
#[ignore = "a debugging aid: paste a printed sequence into replay_ops"]
async fn replay() {
    let (mut gh, token) = start().await;
    let ops = replay_ops();
    let target = if flag("GATEHOUSE_FUZZ_DIRECT") {
        Target::Direct { db: &gh.db.name }
    } else {
        Target::Proxy {
            port: gh.port,
            token: &token,
        }
    };
    if let Some(f) = replay_case(target, &ops, HANG, false).await {
        panic!("{:?}: {}\nsequence: {}", f.kind, f.detail, ops_code(&ops));
    }
    still_serving(&mut gh, &token).await.unwrap();
}

/// Minimal sequences this fuzzer found, with what went wrong; replayed on every run so that
/// a fix stays fixed. `strict`: the proxy ending the session is a failure too (the input is
/// valid and the server answers it normally), checked only with `GATEHOUSE_FUZZ_STRICT=1`.
fn known() -> Vec<(&'static str, bool, Vec<Op>)> {
    // After an error in the extended protocol the server skips every message up to Sync,
    // simple Queries included. Requests the client sends after the proxy has seen that error
    // (here: after reading it) still get an expectation, so each later response is matched
    // to the request before it, and masked (or not) with that request's plan.
    let skipped = || {
        vec![
            Op::Send(vec![b("", "nope", 0, &[])]),
            Op::Drain,
            Op::Send(vec![
                q("SELECT name FROM pets"),
                q("SELECT name FROM pets"),
                Fm::Sync,
                q("SELECT lower(email) FROM users"),
            ]),
            Op::Checkpoint,
        ]
    };
    let mut warm = vec![
        Op::Send(vec![q("SELECT lower(email) FROM users")]),
        Op::Checkpoint,
    ];
    warm.extend(skipped());
    vec![
        (
            "skipped Queries after an extended-protocol error: lower(email) gets the plan of \
             `SELECT name FROM pets` and arrives in clear",
            false,
            warm,
        ),
        (
            "the same on a new session: the proxy's own search_path probe is answered to the \
             client (as the rows of a skipped Query) and the session hangs waiting for it",
            false,
            skipped(),
        ),
        (
            "a Terminate while the proxy waits for such a probe is never read: the session \
             and its upstream connection (in a failed transaction) stay open",
            false,
            vec![
                Op::Send(vec![q("BEGIN")]),
                Op::Send(vec![q("SET search_path = shadow"), b("pt1", "", 0, &[])]),
                Op::Drain,
                Op::Send(vec![q("FETCH ABSOLUTE 1 FROM c1")]),
                Op::Send(vec![Fm::CopyFail, Fm::Sync, q("ROLLBACK")]),
                Op::Drain,
                Op::Terminate,
            ],
        ),
        (
            "COPY FROM STDIN failing on its data before the server reads the Sync sent after \
             it: the server answers that Sync, the proxy had dropped it at CopyInResponse, so \
             each later result is matched to the request after it: lower(email) arrives with \
             the plan of a count(*) over orders (none)",
            false,
            vec![
                Op::Send(vec![q("SELECT lower(email) FROM users")]),
                Op::Checkpoint,
                Op::Send(vec![
                    q("COPY pets (id, name) FROM STDIN"),
                    cd("not a row\n"),
                    Fm::Sync,
                    q("SELECT lower(email) FROM users"),
                    // Slow (2^21 rows counted), so that the desync its answer causes comes
                    // after the clear rows went out.
                    q(&format!("SELECT count(*) FROM {}", slow_join())),
                ]),
                Op::Checkpoint,
            ],
        ),
        (
            "the same with COPY in the extended protocol: desync",
            true,
            vec![
                Op::Send(vec![
                    p("", "COPY pets (id, name) FROM STDIN"),
                    b("", "", 0, &[]),
                    x("", 0),
                    cd("not a row\n"),
                    Fm::Sync,
                ]),
                Op::Checkpoint,
            ],
        ),
    ]
}

/// `orders o0, orders o1, …` (2 rows each): a join that takes the server a moment.
fn slow_join() -> String {
    (0..21)
        .map(|i| format!("orders o{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tokio::test]
async fn fuzz_known_sequences_stay_fixed() {
    let (mut gh, token) = start().await;
    let strict = flag("GATEHOUSE_FUZZ_STRICT");
    let mut failures = Vec::new();
    for (what, needs_strict, ops) in known() {
        if needs_strict && !strict {
            continue;
        }
        let target = Target::Proxy {
            port: gh.port,
            token: &token,
        };
        if let Some(f) = replay_case(target, &ops, HANG, needs_strict).await {
            failures.push(format!(
                "{what}: {:?}: {}\nsequence: {}",
                f.kind,
                f.detail,
                ops_code(&ops)
            ));
        }
    }
    still_serving(&mut gh, &token)
        .await
        .unwrap_or_else(|e| panic!("after the known sequences: {e}"));
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

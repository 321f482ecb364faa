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
mod session;
use session::*;

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

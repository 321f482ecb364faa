//! Random interleavings of valid frontend messages against a real server through the proxy:
//! simple queries and extended-protocol Parse/Bind/Describe/Execute/Close/Sync/Flush drawn
//! from a pool that mixes sensitive and plain reads, cursors, SQL PREPARE/EXECUTE, search
//! path changes, transactions and savepoints, temporary tables, COPY TO STDOUT and errors.
//!
//! The oracle holds whatever the sequence: no clear sensitive value in any byte received
//! (every result set the proxy forwards was planned, or the session ended), the proxy never
//! hangs (each sequence ends with a Sync and a marker query that must be answered), a
//! session the proxy ends is ended with a FATAL ErrorResponse, and the proxy still serves a
//! new session afterwards. Deterministic: the seed and the sequence are printed on failure.
//! `GATEHOUSE_FUZZ_SEEDS=a,b,…` and `GATEHOUSE_FUZZ_ITERS=n` run more locally.

use super::rawpg::{bind, close, describe, execute, flush, parse, query, sync, RawPg};
use super::{leaked, raw, start};
use bytes::BytesMut;

const STATEMENTS: &[&str] = &[
    "SELECT email, ssn FROM users",
    "SELECT lower(ssn) AS l FROM users",
    "SELECT id, name FROM users",
    "SELECT * FROM harmless",
    "SELECT 1/0",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT s",
    "DECLARE c CURSOR WITH HOLD FOR SELECT ssn FROM users",
    "DECLARE d CURSOR FOR SELECT email || '' FROM users",
    "FETCH ALL FROM c",
    "FETCH 1 FROM d",
    "MOVE 1 IN c",
    "CLOSE c",
    "CLOSE ALL",
    "PREPARE p AS SELECT ssn FROM users",
    "EXECUTE p",
    "DEALLOCATE p",
    "DEALLOCATE ALL",
    "SET search_path = shadow, public",
    "SET search_path = public",
    "RESET search_path",
    "CREATE TEMP TABLE IF NOT EXISTS tt (ssn text)",
    "SELECT ssn FROM tt",
    "COPY (SELECT email FROM users) TO STDOUT",
    "DISCARD ALL",
];

const STATEMENT_NAMES: &[&str] = &["", "s1", "s2", "p"];
const PORTAL_NAMES: &[&str] = &["", "p1", "c", "d"];

/// SplitMix64: small, deterministic, good enough to pick messages.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next() % from.len() as u64).unwrap_or(0);
        from[i]
    }
}

/// One random message and how it reads in a failure report.
fn message(rng: &mut Rng) -> (BytesMut, String) {
    match rng.next() % 10 {
        0 | 1 => {
            let n = 1 + rng.next() % 3;
            let sql: Vec<&str> = (0..n).map(|_| rng.pick(STATEMENTS)).collect();
            let sql = sql.join("; ");
            (query(&sql), format!("Q {sql:?}"))
        }
        2 | 3 => {
            let (name, sql) = (rng.pick(STATEMENT_NAMES), rng.pick(STATEMENTS));
            (parse(name, sql), format!("P {name:?} {sql:?}"))
        }
        4 => {
            let (portal, name) = (rng.pick(PORTAL_NAMES), rng.pick(STATEMENT_NAMES));
            let formats: &[i16] = if rng.next().is_multiple_of(2) {
                &[]
            } else {
                &[1]
            };
            let m = bind(portal, name, &[], formats);
            (m, format!("B {portal:?} {name:?} {formats:?}"))
        }
        5 => {
            let kind = if rng.next().is_multiple_of(2) {
                b'S'
            } else {
                b'P'
            };
            let name = if kind == b'S' {
                rng.pick(STATEMENT_NAMES)
            } else {
                rng.pick(PORTAL_NAMES)
            };
            (describe(kind, name), format!("D {} {name:?}", kind as char))
        }
        6 | 7 => {
            let portal = rng.pick(PORTAL_NAMES);
            let max = i32::try_from(rng.next() % 2).unwrap_or(0);
            (execute(portal, max), format!("E {portal:?} {max}"))
        }
        8 => {
            let kind = if rng.next().is_multiple_of(2) {
                b'S'
            } else {
                b'P'
            };
            let name = rng.pick(STATEMENT_NAMES);
            (close(kind, name), format!("C {} {name:?}", kind as char))
        }
        _ => {
            if rng.next().is_multiple_of(3) {
                (flush(), "H".to_owned())
            } else {
                (sync(), "S".to_owned())
            }
        }
    }
}

/// Runs one sequence on `c`; Err describes what broke. Ok(false): the session ended (with a
/// FATAL error, as it must), so the caller reconnects.
async fn run_sequence(
    c: &mut RawPg,
    rng: &mut Rng,
    log: &mut Vec<String>,
    index: usize,
) -> Result<bool, String> {
    let n = 6 + rng.next() % 20;
    // GATEHOUSE_FUZZ_PREFIX=k keeps only the first k messages of sequence
    // GATEHOUSE_FUZZ_AT (of every sequence without it), to shrink a failure by hand.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let at = env("GATEHOUSE_FUZZ_AT");
    let keep = match env("GATEHOUSE_FUZZ_PREFIX") {
        Some(k) if at.is_none_or(|a| a == index as u64) => k,
        _ => u64::MAX,
    };
    let mut frames = Vec::new();
    for i in 0..n {
        let (m, text) = message(rng);
        if i < keep {
            frames.push(m);
            log.push(text);
        }
    }
    // End any transaction the sequence left open (or failed), then the marker, which must
    // come back whatever happened before.
    frames.push(sync());
    frames.push(query("ROLLBACK"));
    frames.push(query("SELECT 'fuzz-' || 'end' AS marker"));
    log.push("S; Q ROLLBACK; Q marker".into());
    c.send(&frames).await;
    let mut bytes = Vec::new();
    loop {
        let r = c.read_ready(1).await;
        bytes.extend_from_slice(&r.bytes);
        let secrets = leaked(&bytes);
        if !secrets.is_empty() {
            return Err(format!(
                "clear sensitive values reached the client: {secrets:?}"
            ));
        }
        if r.closed {
            let fatal = r
                .msgs
                .iter()
                .rev()
                .find(|m| m.tag == b'E')
                .is_some_and(|m| String::from_utf8_lossy(&m.body).contains("FATAL"));
            return if fatal {
                Ok(false)
            } else {
                Err("the session closed without a FATAL error".into())
            };
        }
        if r.timed_out {
            return Err("no ReadyForQuery: the proxy or the session hangs".into());
        }
        if String::from_utf8_lossy(&r.bytes).contains("fuzz-end") {
            return Ok(true);
        }
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("GATEHOUSE_FUZZ_SEEDS") {
        Ok(s) if !s.trim().is_empty() => {
            s.split(',').filter_map(|v| v.trim().parse().ok()).collect()
        }
        _ => vec![7, 42, 1_234_567, 0xDEAD_BEEF],
    }
}

#[tokio::test]
async fn random_interleavings_never_leak_hang_or_end_silently() {
    let iters: usize = std::env::var("GATEHOUSE_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    let (gh, token) = start().await;
    for seed in seeds() {
        let mut rng = Rng(seed);
        let mut c = raw(&gh, &token).await;
        for i in 0..iters {
            let mut log = Vec::new();
            match run_sequence(&mut c, &mut rng, &mut log, i).await {
                Ok(true) => {}
                Ok(false) => c = raw(&gh, &token).await,
                Err(e) => panic!(
                    "seed {seed}, sequence {i}: {e}\nmessages:\n  {}",
                    log.join("\n  ")
                ),
            }
        }
    }
    // The proxy itself is still up and serving.
    let mut c = raw(&gh, &token).await;
    let r = c.simple("SELECT 1").await;
    assert_eq!(r.cells(), vec!["1"], "a new session after the fuzzing");
}

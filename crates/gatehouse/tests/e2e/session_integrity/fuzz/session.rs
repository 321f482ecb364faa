//! One fuzzed connection: sending a case's messages, reading everything back, checking the
//! oracles at each checkpoint, and logging in through the proxy or directly.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
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

pub(super) struct Failure {
    pub(super) kind: Kind,
    pub(super) detail: String,
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) cases: u64,
    pub(super) sequences: u64,
    pub(super) messages: u64,
    pub(super) checkpoints: u64,
    pub(super) recovers: u64,
    pub(super) rows: u64,
    pub(super) refused: u64,
    pub(super) errors: u64,
    /// Sessions ended by a FATAL error, by message: how many, and the first seed.
    pub(super) fatal: BTreeMap<String, (u64, u64)>,
}

/// What a read step ended with.
pub(super) enum Reached {
    Answered,
    /// Quiet after a ReadyForQuery in a failed transaction: the sentinel was refused.
    FailedTx,
    /// The proxy closed the connection after a FATAL error.
    Closed,
}

pub(super) enum Next {
    Msg(Msg),
    Quiet,
    Closed,
}

/// One raw session that records everything it receives.
pub(super) struct Session {
    pub(super) s: TcpStream,
    pub(super) buf: BytesMut,
    pub(super) msgs: Vec<Msg>,
    pub(super) bytes: Vec<u8>,
    pub(super) closed: bool,
    pub(super) sentinels: u32,
    pub(super) hang: Duration,
    /// `GATEHOUSE_FUZZ_TRACE=1`: print every message received.
    pub(super) trace: bool,
    /// `GATEHOUSE_FUZZ_STRICT=1`: a FATAL of the proxy's own is a failure too.
    pub(super) strict: bool,
    /// Logged in directly to PostgreSQL (a control): clear values are expected.
    pub(super) direct: bool,
}

/// Where a session logs in: through the proxy as `alice`, or directly to the test database
/// (a control: the same messages without Gatehouse).
#[derive(Clone, Copy)]
pub(super) enum Target<'a> {
    Proxy { port: u16, token: &'a str },
    Direct { db: &'a str },
}

impl Session {
    pub(super) async fn open(target: Target<'_>, hang: Duration) -> Session {
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

    pub(super) async fn send(&mut self, msgs: &[Fm]) {
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

    pub(super) async fn next(&mut self, wait: Duration) -> Next {
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

    pub(super) fn in_failed_tx(&self) -> bool {
        matches!(self.msgs.last(), Some(m) if m.tag == b'Z' && m.body.first() == Some(&b'E'))
    }

    /// Reads until the sentinel's row and ReadyForQuery. `may_fail`: the sentinel may be
    /// refused in a failed transaction (a Checkpoint; a Recover rolls back first).
    pub(super) async fn answer(
        &mut self,
        sentinel: &str,
        may_fail: bool,
    ) -> Result<Reached, Failure> {
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
    pub(super) async fn drain(&mut self) -> Result<Reached, Failure> {
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

    pub(super) fn closed_with_fatal(&self) -> Result<Reached, Failure> {
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

    pub(super) async fn run(&mut self, op: &Op) -> Result<Reached, Failure> {
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

    pub(super) fn check_secrets(&self) -> Result<(), Failure> {
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

    pub(super) fn failure(&self, kind: Kind, what: &str) -> Failure {
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

    pub(super) fn tally(&self, stats: &mut Stats, seed: u64) {
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
pub(super) async fn proxy_login(port: u16, token: &str) -> (TcpStream, BytesMut) {
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
pub(super) async fn direct_login(db: &str) -> (TcpStream, BytesMut) {
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

//! Client→upstream half of a session: decodes each client message, records what the
//! statement is, reserves its audit slot, and forwards it, or answers it locally when it
//! may not run. The audit slot is reserved *before* forwarding: no statement reaches the
//! database unless its event is certain to be accepted (unless the operator opted out).

mod check;
mod commit;
mod execute;
mod fastpath;
mod hold;
mod names;
mod params;
mod statements;
mod text;

use crate::annotation::{refusal_text, Annotation};
use crate::error::SessionError;
use crate::events::EventCtx;
use crate::expect::{Expect, Named, POISON_SQL};
use crate::guard::SessionGuard;
use crate::pipeline::Pipeline;
use crate::result::OriginsCell;
use crate::server::ProxyState;
use crate::stream::{ReadHalf, WriteHalf};
use bytes::BytesMut;
use check::Recheck;
use model::decision::Decision;
use model::facts::StatementFacts;
use model::{AuditKind, Outcome};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire_pg::frontend::{tag, FrontendMessage};
use wire_pg::{decode_frame, encode, Frame};

/// What a portal runs, for the Execute's audit event.
struct Portal {
    statement: Option<Arc<Prepared>>,
    params: Vec<Option<String>>,
    /// For a statement that needs approval: the parameters exactly as bound (for the grant
    /// key), and the approval request its Execute was released under (a portal run in
    /// several Executes is approved once).
    key_params: Vec<Option<String>>,
    released: Option<String>,
    /// It needs approval at Execute: as prepared, or as decided again at Bind.
    hold: Option<Decision>,
    /// The statement it was bound from (for the types of its parameters).
    statement_name: String,
}

/// A statement the client prepared (protocol Parse or SQL PREPARE), as analysed and decided
/// when it was prepared: for audit texts and for deciding an SQL EXECUTE of it. Masking
/// never relies on this optimistic copy; it uses the server-confirmed `state`.
#[derive(Clone)]
struct Prepared {
    text: String,
    note: Annotation,
    facts: Option<StatementFacts>,
    /// The guard's name-resolution state when it was planned (see `check::recheck`).
    key: u64,
    /// It needs approval: each portal bound to it is held at its Execute (see `hold`).
    hold: Option<Decision>,
    /// The policies it was decided under (a reload decides it again at Bind).
    policies: Option<Arc<policy::Policies>>,
    /// Parameter types the Parse declared (0: left to the server).
    param_types: Vec<u32>,
}

pub struct Up {
    pub state: ProxyState,
    pub ctx: Arc<EventCtx>,
    pub client: ReadHalf,
    pub upstream: WriteHalf,
    pub buf: BytesMut,
    pub pipeline: Arc<Pipeline>,
    pub guard: SessionGuard,
    /// Where the other half reads the hidden columns by origin.
    pub origins: OriginsCell,
    /// The client encoding the server last reported (set by the other half).
    pub encoding: crate::lexing::EncodingCell,
    /// Last ReadyForQuery status byte (set by the other half).
    pub tx_status: Arc<std::sync::atomic::AtomicU8>,
    /// Told of the client's CancelRequest (withdraws a statement held for approval).
    pub cancelled: Arc<crate::cancel::HeldCancel>,
    /// Turns `Some(reason)` when the session's credential stops being valid (`live`): no
    /// message of the client is acted on after that.
    pub ended: tokio::sync::watch::Receiver<Option<String>>,
}

/// Whether the session goes on after a message.
enum Flow {
    Continue,
    Stop,
}

struct Tracking {
    statements: names::Statements,
    portals: HashMap<String, Portal>,
    /// What each SQL cursor declared in this session reads, for the audit events of its
    /// FETCHes (audit only: masking uses the confirmed `state`).
    cursors: HashMap<String, Annotation>,
    /// Portals described since they were bound (by the client or by Gatehouse).
    described: std::collections::HashSet<String>,
    /// After a locally refused extended-protocol message, the rest up to Sync is skipped,
    /// exactly as the server does after an error.
    discard_until_sync: bool,
    /// Extended-protocol messages were sent since the last Sync: a probe (a simple Query)
    /// would end their implicit transaction, so none is sent.
    batch_open: bool,
    /// Something that can run code (anything but Sync, Flush, Close and COPY messages) was
    /// sent since the server last answered everything: the text settings it may have changed are not yet
    /// confirmed (see `text`).
    ran_unconfirmed: bool,
    /// In-batch settings checks sent (each names its statement and portal after it).
    checks: u64,
    /// The approval request the query string being forwarded was released under (`hold`).
    released: Option<String>,
    /// An Execute was sent since the last Sync (its implicit transaction may hold locks).
    executed_in_batch: bool,
    /// Writes that ran in the open transaction block and wait on its COMMIT being approved
    /// (`@approval_mode("commit")`, see `commit`).
    commit_hold: Option<commit::CommitHold>,
    /// The next refusal is of a held COMMIT: the transaction is rolled back first.
    rollback_before_refusal: bool,
    out: BytesMut,
}

impl Up {
    pub async fn run(mut self) -> Result<(), SessionError> {
        let mut t = Tracking {
            statements: names::Statements::default(),
            portals: HashMap::new(),
            cursors: HashMap::new(),
            described: std::collections::HashSet::new(),
            discard_until_sync: false,
            batch_open: false,
            ran_unconfirmed: false,
            checks: 0,
            released: None,
            executed_in_batch: false,
            commit_hold: None,
            rollback_before_refusal: false,
            // Small at first (idle sessions hold it); it grows to what the client sends.
            out: BytesMut::with_capacity(1024),
        };
        let max = self.state.config.max_message_len;
        loop {
            loop {
                let frame = match decode_frame(&mut self.buf, max) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return self.fatal(&mut t, SessionError::Wire(e)).await,
                };
                if let Some(why) = self.ended.borrow().clone() {
                    return Err(SessionError::CredentialEnded(why));
                }
                let flow = match self.on_frame(&mut t, frame).await {
                    Ok(flow) => flow,
                    Err(SessionError::Wire(e)) => {
                        return self.fatal(&mut t, SessionError::Wire(e)).await
                    }
                    Err(e) => return Err(e),
                };
                if let Flow::Stop = flow {
                    self.flush(&mut t).await?;
                    return Ok(());
                }
            }
            self.flush(&mut t).await?;
            if self.client.read_buf(&mut self.buf).await? == 0 {
                // The client went away without Terminate: end the upstream session cleanly.
                self.terminate(&mut t);
                self.flush(&mut t).await?;
                return Ok(());
            }
        }
    }

    async fn flush(&mut self, t: &mut Tracking) -> Result<(), SessionError> {
        if !t.out.is_empty() {
            self.upstream.write_all(&t.out).await?;
            t.out.clear();
        }
        Ok(())
    }

    /// Malformed input: forward what was already accepted, then a FATAL error in order.
    async fn fatal(&mut self, t: &mut Tracking, e: SessionError) -> Result<(), SessionError> {
        tracing::warn!(session = %self.ctx.session, error = %e, "closing session");
        let mut bytes = BytesMut::new();
        encode::error(
            &mut bytes,
            "FATAL",
            e.sqlstate(),
            &e.client_message(""),
            None,
            None,
        );
        let _ = self.pipeline.push(Expect::Fatal(bytes.freeze())).await;
        self.terminate(t);
        self.flush(t).await
    }

    /// Ends the upstream session; the other half then expects the server to close.
    fn terminate(&self, t: &mut Tracking) {
        self.pipeline
            .terminated
            .store(true, std::sync::atomic::Ordering::Release);
        encode::terminate(&mut t.out);
    }

    async fn expect(&self, e: Expect) -> Result<(), SessionError> {
        self.pipeline
            .push(e)
            .await
            .map_err(|_| SessionError::Protocol("session ended"))
    }

    async fn on_frame(&mut self, t: &mut Tracking, frame: Frame) -> Result<Flow, SessionError> {
        let frame_tag = frame.tag();
        if t.discard_until_sync && !matches!(frame.tag(), tag::SYNC | tag::TERMINATE) {
            return Ok(Flow::Continue);
        }
        let Some(msg) = self.decode(t, &frame).await? else {
            return Ok(Flow::Continue);
        };
        // Set after the message is handled: a Parse that opens a batch may still be preceded
        // by a probe of its own.
        let opens_batch = matches!(
            msg,
            FrontendMessage::Parse(_)
                | FrontendMessage::Bind(_)
                | FrontendMessage::Describe { .. }
                | FrontendMessage::Execute { .. }
                | FrontendMessage::Close { .. }
        );
        match msg {
            FrontendMessage::Query(sql) => self.on_query(t, frame, sql).await?,
            FrontendMessage::Parse(p) => self.on_parse(t, frame, p).await?,
            FrontendMessage::Bind(b) => {
                self.forget_failed(t);
                if t.statements.get(&b.statement).is_none() {
                    // The server holds no such statement either (the copy is exact): refused
                    // here, so no Execute runs a statement Gatehouse cannot name.
                    let msg = format!("prepared statement \"{}\" does not exist", b.statement);
                    self.refuse(t, "26000", &msg, None, None, false).await?;
                    t.batch_open = true;
                    return Ok(Flow::Continue);
                }
                let mut held = None;
                let extra = match self.recheck(t, &b.statement, false).await? {
                    Recheck::Same => None,
                    Recheck::Planned(p) => p,
                    Recheck::Held(d, p) => {
                        held = Some(d);
                        p
                    }
                    Recheck::Refused => {
                        t.batch_open = true;
                        return Ok(Flow::Continue);
                    }
                };
                self.on_bind(t, &b, held);
                t.described.remove(&b.portal);
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Bind {
                    portal: b.portal,
                    statement: b.statement,
                    formats: b.result_formats,
                    extra,
                })
                .await?;
            }
            FrontendMessage::Execute { portal, .. } => self.on_execute(t, frame, portal).await?,
            FrontendMessage::Describe { target, name } => {
                if target == wire_pg::frontend::Target::Portal {
                    t.described.insert(name.clone());
                }
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Describe(named(target, name))).await?;
            }
            FrontendMessage::Close { target, name } => {
                if target == wire_pg::frontend::Target::Statement {
                    t.statements.closing(Some(&name));
                } else {
                    t.portals.remove(&name);
                }
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Close(named(target, name))).await?;
            }
            FrontendMessage::Sync => {
                t.discard_until_sync = false;
                t.batch_open = false;
                t.executed_in_batch = false;
                self.guard.synced();
                t.out.extend_from_slice(frame.raw());
                // During COPY IN the server ignores Sync, unless an error ended the COPY first.
                self.pipeline
                    .push_with(|g| {
                        Some(if g.copy_in {
                            Expect::SyncInCopy
                        } else {
                            Expect::Sync
                        })
                    })
                    .await
                    .map_err(|_| SessionError::Protocol("session ended"))?;
            }
            FrontendMessage::Terminate => {
                self.terminate(t);
                return Ok(Flow::Stop);
            }
            FrontendMessage::Other if matches!(frame.tag(), tag::COPY_DONE | tag::COPY_FAIL) => {
                t.out.extend_from_slice(frame.raw());
                self.pipeline
                    .push_with(|g| {
                        g.copy_in = false;
                        Some(Expect::CopyEnd)
                    })
                    .await
                    .map_err(|_| SessionError::Protocol("session ended"))?;
            }
            FrontendMessage::FunctionCall(call) => self.on_function_call(t, frame, call).await?,
            FrontendMessage::Flush | FrontendMessage::Other => {
                t.out.extend_from_slice(frame.raw());
            }
        }
        t.batch_open |= opens_batch;
        // Parse, Bind and Describe run code too: literals coerced to domain types at
        // analysis (their CHECKs), parameters' input functions, the planning of the unnamed
        // statement (constant folding), re-analysis of an invalidated statement. Only Sync,
        // Flush and Close run none.
        t.ran_unconfirmed |= matches!(
            frame_tag,
            tag::QUERY | tag::PARSE | tag::BIND | tag::DESCRIBE | tag::EXECUTE | tag::FUNCTION_CALL
        );
        Ok(Flow::Continue)
    }

    /// Refuses a request: a poison message goes upstream in its place (see `expect`) and
    /// the client gets `code`/`message` in order with the responses before it.
    async fn refuse(
        &self,
        t: &mut Tracking,
        code: &str,
        message: &str,
        detail: Option<&str>,
        hint: Option<&str>,
        simple: bool,
    ) -> Result<(), SessionError> {
        let mut error = BytesMut::new();
        encode::error_in(&mut error, self.encoding.get(), code, message, detail, hint);
        if std::mem::take(&mut t.rollback_before_refusal) && simple {
            // A refused COMMIT: the transaction's writes must not stay open for a later one.
            encode::query(&mut t.out, "ROLLBACK");
            t.commit_hold = None;
            self.expect(Expect::Rollback).await?;
        }
        if simple {
            encode::query(&mut t.out, POISON_SQL);
        } else {
            // The poison is parsed as the unnamed statement, which the server discards.
            encode::parse(&mut t.out, "", POISON_SQL, &[]);
            t.statements.forget_unnamed();
            t.discard_until_sync = true;
        }
        self.expect(Expect::Refused {
            error: error.freeze(),
            simple,
        })
        .await
    }

    /// Forgets prepared statements the server refused to create (see `relay_down`).
    fn forget_failed(&self, t: &mut Tracking) {
        use std::sync::atomic::Ordering;
        // Set by the other half after it reported anything (see `Pipeline::popped`).
        if !self.pipeline.events_pending.swap(false, Ordering::Acquire) {
            return;
        }
        let events = std::mem::take(&mut self.pipeline.lock().prepared_events);
        for e in events {
            t.statements.apply(e);
        }
    }

    /// Refuses a statement policy did not allow, recording why.
    async fn refuse_by_policy(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        statements: &[StatementFacts],
        decision: &Decision,
        simple: bool,
    ) -> Result<(), SessionError> {
        let (message, detail, hint) = refusal_text(decision);
        metrics::counter!("gatehouse_statements_refused_total", "decision" => decision.label())
            .increment(1);
        let mut ev = self
            .ctx
            .event(AuditKind::Statement, self.state.clock.rfc3339());
        ev.statement = Some(sql.to_owned());
        ev.outcome = Outcome::Error {
            sqlstate: "42501".into(),
            message: message.clone(),
        };
        let blamed = statements
            .iter()
            .find(|f| f.opaque.is_some())
            .or(statements.first());
        Annotation::new(blamed, decision, false).apply(&mut ev);
        if self.state.audit.submit(ev).is_err() {
            tracing::warn!(session = %self.ctx.session, "refusal could not be audited");
        }
        self.refuse(t, "42501", &message, Some(&detail), hint.as_deref(), simple)
            .await
    }

    /// UTC hour of day, for time-based policies.
    fn hour(&self) -> u8 {
        u8::try_from((self.state.clock.now_secs() / 3600).rem_euclid(24)).unwrap_or(0)
    }
}

fn named(target: wire_pg::frontend::Target, name: String) -> Named {
    match target {
        wire_pg::frontend::Target::Statement => Named::Statement(name),
        wire_pg::frontend::Target::Portal => Named::Portal(name),
    }
}

fn prepared_entry(
    text: &str,
    note: Annotation,
    facts: &StatementFacts,
    key: u64,
    policies: Arc<policy::Policies>,
) -> Arc<Prepared> {
    Arc::new(Prepared {
        text: text.to_owned(),
        note,
        facts: Some(facts.clone()),
        key,
        hold: None,
        policies: Some(policies),
        param_types: Vec::new(),
    })
}

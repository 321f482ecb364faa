//! Client→upstream half of a session: decodes each client message, records what the
//! statement is, reserves its audit slot, and forwards it, or answers it locally when it
//! may not run. The audit slot is reserved *before* forwarding: no statement reaches the
//! database unless its event is certain to be accepted (unless the operator opted out).

use crate::config::AuditFailureMode;
use crate::error::SessionError;
use crate::events::{render_param, EventCtx};
use crate::expect::{Expect, StmtAudit, POISON_SQL};
use crate::guard::{refusal_text, Annotation, SessionGuard, Verdict};
use crate::pipeline::Pipeline;
use crate::server::ProxyState;
use crate::stream::{ReadHalf, WriteHalf};
use bytes::BytesMut;
use model::decision::Decision;
use model::facts::StatementFacts;
use model::{AuditKind, Outcome};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire_pg::frontend::{tag, Bind, FrontendMessage, Parse};
use wire_pg::{decode_frame, encode, Frame};

/// What a portal runs, for the Execute's audit event.
struct Portal {
    statement: Option<Arc<Prepared>>,
    params: Vec<Option<String>>,
    /// Result format codes from Bind (none: all text; one: all; else per column).
    formats: Vec<i16>,
    statement_name: Option<String>,
}

/// A statement the client prepared, as analysed and decided at Parse.
struct Prepared {
    text: String,
    note: Annotation,
}

pub struct Up {
    pub state: ProxyState,
    pub ctx: Arc<EventCtx>,
    pub client: ReadHalf,
    pub upstream: WriteHalf,
    pub buf: BytesMut,
    pub pipeline: Arc<Pipeline>,
    pub guard: SessionGuard,
}

/// Whether the session goes on after a message.
enum Flow {
    Continue,
    Stop,
}

struct Tracking {
    statements: HashMap<String, Arc<Prepared>>,
    portals: HashMap<String, Portal>,
    /// After a locally refused extended-protocol message, the rest up to Sync is skipped,
    /// exactly as the server does after an error.
    discard_until_sync: bool,
    out: BytesMut,
}

impl Up {
    pub async fn run(mut self) -> Result<(), SessionError> {
        let mut t = Tracking {
            statements: HashMap::new(),
            portals: HashMap::new(),
            discard_until_sync: false,
            out: BytesMut::with_capacity(8192),
        };
        let max = self.state.config.max_message_len;
        loop {
            loop {
                let frame = match decode_frame(&mut self.buf, max) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => return self.fatal(&mut t, SessionError::Wire(e)).await,
                };
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
                encode::terminate(&mut t.out);
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
        encode::terminate(&mut t.out);
        self.flush(t).await
    }

    async fn expect(&self, e: Expect) -> Result<(), SessionError> {
        self.pipeline
            .push(e)
            .await
            .map_err(|_| SessionError::Protocol("session ended"))
    }

    async fn on_frame(&mut self, t: &mut Tracking, frame: Frame) -> Result<Flow, SessionError> {
        let msg = FrontendMessage::parse(&frame)?;
        if t.discard_until_sync
            && !matches!(msg, FrontendMessage::Sync | FrontendMessage::Terminate)
        {
            return Ok(Flow::Continue);
        }
        match msg {
            FrontendMessage::Query(sql) => self.on_query(t, frame, sql).await?,
            FrontendMessage::Parse(p) => self.on_parse(t, frame, p).await?,
            FrontendMessage::Bind(b) => {
                self.on_bind(t, &b);
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Bind).await?;
            }
            FrontendMessage::Execute { portal, .. } => self.on_execute(t, frame, &portal).await?,
            FrontendMessage::Describe { target, name } => {
                let statement = match target {
                    wire_pg::frontend::Target::Statement => Some(name),
                    wire_pg::frontend::Target::Portal => {
                        t.portals.get(&name).and_then(|p| p.statement_name.clone())
                    }
                };
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Describe(statement)).await?;
            }
            FrontendMessage::Close { target, name } => {
                match target {
                    wire_pg::frontend::Target::Statement => t.statements.remove(&name),
                    wire_pg::frontend::Target::Portal => {
                        t.portals.remove(&name).and_then(|p| p.statement)
                    }
                };
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Close).await?;
            }
            FrontendMessage::Sync => {
                t.discard_until_sync = false;
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Sync).await?;
            }
            FrontendMessage::Terminate => {
                t.out.extend_from_slice(frame.raw());
                return Ok(Flow::Stop);
            }
            FrontendMessage::Flush | FrontendMessage::Other
                if frame.tag() != tag::FUNCTION_CALL =>
            {
                t.out.extend_from_slice(frame.raw());
            }
            _ => {
                // FunctionCall runs a function by OID, outside any SQL text that could be
                // analysed or audited: refused.
                self.refuse(
                    t,
                    "42501",
                    "gatehouse: fastpath function calls are not allowed",
                    None,
                    None,
                    true,
                )
                .await?;
            }
        }
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
        encode::error(&mut error, "ERROR", code, message, detail, hint);
        if simple {
            encode::query(&mut t.out, POISON_SQL);
        } else {
            encode::parse(&mut t.out, "", POISON_SQL, &[]);
            t.discard_until_sync = true;
        }
        self.expect(Expect::Refused {
            error: error.freeze(),
            simple,
        })
        .await
    }

    async fn on_query(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        sql: String,
    ) -> Result<(), SessionError> {
        let (statements, decision, shadow, masks) = match self.guard.check(&sql, self.hour()) {
            Verdict::Forward {
                statements,
                decision,
                shadow,
                masks,
            } => (statements, decision, shadow, masks),
            Verdict::Refuse {
                statements,
                decision,
            } => {
                return self
                    .refuse_by_policy(t, &sql, &statements, &decision, true)
                    .await;
            }
        };
        let mut audits = VecDeque::new();
        // A string without statements still gets one answer (EmptyQueryResponse).
        let planned: Vec<(&str, Option<&StatementFacts>)> = if statements.is_empty() {
            vec![(sql.as_str(), None)]
        } else {
            statements
                .iter()
                .map(|f| (f.text.as_str(), Some(f)))
                .collect()
        };
        for (i, (text, facts)) in planned.into_iter().enumerate() {
            let mut note = Annotation::new(facts, &decision, shadow);
            note.mask = masks.get(i).cloned().flatten();
            match self.audit_for(text, Vec::new(), Some(&note)) {
                Ok(a) => audits.push_back(a),
                Err(e) => {
                    let msg = e.client_message("");
                    return self.refuse(t, e.sqlstate(), &msg, None, None, true).await;
                }
            }
        }
        self.guard.forwarded(&statements);
        t.out.extend_from_slice(frame.raw());
        self.expect(Expect::Query(audits)).await
    }

    async fn on_parse(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        p: Parse,
    ) -> Result<(), SessionError> {
        let (statements, decision, shadow, masks) = match self.guard.check(&p.query, self.hour()) {
            Verdict::Forward {
                statements,
                decision,
                shadow,
                masks,
            } => (statements, decision, shadow, masks),
            Verdict::Refuse {
                statements,
                decision,
            } => {
                // The poison is parsed as the unnamed statement, which the server discards; a
                // named statement already prepared upstream is untouched and keeps its text.
                t.statements.remove("");
                return self
                    .refuse_by_policy(t, &p.query, &statements, &decision, false)
                    .await;
            }
        };
        self.guard.forwarded(&statements);
        let mut note = Annotation::new(statements.first(), &decision, shadow);
        note.mask = masks.into_iter().next().flatten();
        let name = p.name.clone();
        t.statements.insert(
            p.name,
            Arc::new(Prepared {
                text: p.query,
                note,
            }),
        );
        t.out.extend_from_slice(frame.raw());
        self.expect(Expect::Parse(name)).await
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

    fn on_bind(&self, t: &mut Tracking, b: &Bind) {
        let max = self.state.config.audit_param_max;
        let params = b
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| render_param(p.as_deref(), b.param_is_binary(i), max))
            .collect();
        let statement = t.statements.get(&b.statement).cloned();
        let formats = b.result_formats.clone();
        t.portals.insert(
            b.portal.clone(),
            Portal {
                statement,
                params,
                formats,
                statement_name: Some(b.statement.clone()),
            },
        );
    }

    async fn on_execute(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        portal: &str,
    ) -> Result<(), SessionError> {
        let (prepared, params, formats, name) = match t.portals.get(portal) {
            Some(p) => (
                p.statement.clone(),
                p.params.clone(),
                p.formats.clone(),
                p.statement_name.clone(),
            ),
            None => (None, Vec::new(), Vec::new(), None),
        };
        let text = prepared
            .as_ref()
            .map(|p| p.text.as_str())
            .unwrap_or_default();
        let note = prepared.as_ref().map(|p| &p.note);
        match self.audit_for(text, params, note) {
            Ok(mut a) => {
                a.formats = Some(formats);
                a.statement_name = name;
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Execute(a)).await
            }
            Err(e) => {
                self.refuse(t, e.sqlstate(), &e.client_message(""), None, None, false)
                    .await
            }
        }
    }

    /// Reserves the audit slot for one statement, or says why it may not run.
    fn audit_for(
        &self,
        sql: &str,
        params: Vec<Option<String>>,
        note: Option<&Annotation>,
    ) -> Result<StmtAudit, SessionError> {
        let slot = match self.state.audit.reserve() {
            Ok(slot) => Some(slot),
            Err(e) => match self.state.config.on_audit_failure {
                AuditFailureMode::Block => {
                    return Err(SessionError::AuditUnavailable(e.to_string()))
                }
                AuditFailureMode::Allow => {
                    metrics::counter!("gatehouse_audit_events_missed_total").increment(1);
                    None
                }
            },
        };
        let mut event = self
            .ctx
            .event(AuditKind::Statement, self.state.clock.rfc3339());
        event.statement = Some(sql.to_owned());
        event.params = params;
        if let Some(n) = note {
            n.apply(&mut event);
        }
        Ok(StmtAudit {
            mask: note.and_then(|n| n.mask.clone()),
            formats: None,
            statement_name: None,
            event,
            slot,
            started: Instant::now(),
        })
    }
}

//! Upstream→client half of a session: forwards responses, matches each to the request that
//! caused it (see `expect`), completes audit events with outcome and row counts, keeps the
//! transaction status, and is the one writer of the confirmed session state (`state`).
//!
//! Every response must be one the head of the queue calls for (or one the server may send at
//! any time: notices, notifications, parameter changes). Anything else means the proxy's
//! model of the session is wrong, and masking decisions taken on a wrong model cannot be
//! trusted: the session ends with a FATAL error, and every statement still in flight is
//! audited with an unknown outcome.

mod hidden;
mod queue;
mod text_check;
mod texts;

use crate::error::SessionError;
use crate::expect::{Expect, Named};
use crate::pipeline::{Inner, Pipeline, PreparedEvent};
use crate::relay_mask::{self, Bound};
use crate::result::Binder;
use crate::stream::{ReadHalf, WriteHalf};
use crate::upstream::MAX_UPSTREAM_MESSAGE;
use bytes::BytesMut;
use model::Outcome;
pub use queue::abandon;
use queue::{
    complete, copy_in_completed, desync, discard_to_sync, emit_locals, function_call_done,
    head_statement, note_failed_prepares, on_copy_in, on_error, skip_to_sync,
};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
pub use texts::ServerView;
use texts::{parameter, redact_fields};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire_pg::backend::{self, tag};
use wire_pg::{decode_frame, encode, Frame};

pub struct Down {
    pub upstream: ReadHalf,
    pub client: WriteHalf,
    pub buf: BytesMut,
    pub pipeline: Arc<Pipeline>,
    /// Last ReadyForQuery status byte, shared with the other half.
    pub tx_status: Arc<AtomicU8>,
    /// Key of the `hash` mask strategy.
    pub mask_key: Arc<[u8]>,
    /// Value detectors applied to error and notice texts (targets with sensitive columns):
    /// a cast error or a unique violation can quote a sensitive value.
    pub detectors: Option<Arc<masking::Detectors>>,
    /// How result sets are bound to their plans (masking on or off, safety net, origins).
    pub binder: Binder,
    /// Turns `Some(reason)` when the session's credential stops being valid (`live`).
    pub ended: tokio::sync::watch::Receiver<Option<String>>,
    /// The client encoding and application_name as the server reports them.
    pub view: ServerView,
}

/// Per-read working state of the current result.
struct Out {
    bytes: BytesMut,
    /// The current result set has been bound (RowDescription or first DataRow seen).
    active: bool,
    /// The masks bound to the current result, if any column needs one.
    bound: Option<Bound>,
    /// DataRows seen for the statement at the head (for PortalSuspended).
    rows: u64,
    fatal: bool,
    /// The server sent a FATAL (or PANIC) error: its closing the connection is explained.
    server_fatal: bool,
    /// The statement at the head is in COPY IN (its CopyInResponse was seen).
    copying_in: bool,
}

impl Out {
    fn end_result(&mut self) {
        self.active = false;
        self.bound = None;
        self.rows = 0;
    }
}

impl Down {
    pub async fn run(mut self) -> Result<(), SessionError> {
        let result = self.relay().await;
        if let Err(e @ (SessionError::Desync(_) | SessionError::UnsafeSetting(_))) = &result {
            tracing::error!(error = %e, "closing the session");
            let mut out = BytesMut::new();
            encode::error(
                &mut out,
                "FATAL",
                e.sqlstate(),
                &e.client_message(""),
                None,
                None,
            );
            let _ = self.client.write_all(&out).await;
            let _ = self.client.shutdown().await;
        }
        let reason = match &result {
            Ok(()) => "the session ended before the server answered".to_owned(),
            Err(e) => format!("the session ended before the server answered: {e}"),
        };
        self.pipeline.close();
        abandon(&mut self.pipeline.lock(), &reason);
        result
    }

    async fn relay(&mut self) -> Result<(), SessionError> {
        let mut out = Out {
            active: false,
            bound: None,
            // Small at first (idle sessions hold it); it grows to a read's worth of results.
            bytes: BytesMut::with_capacity(2048),
            rows: 0,
            fatal: false,
            server_fatal: false,
            copying_in: false,
        };
        let mut ended = self.ended.clone();
        loop {
            tokio::select! {
                n = self.upstream.read_buf(&mut self.buf) => {
                    if n? == 0 {
                        // The upstream closed (after a Terminate, perhaps one sent because
                        // the client misbehaved): a pending FATAL still goes out first.
                        emit_locals(&mut self.pipeline.lock(), &mut out);
                        if !out.fatal && !out.server_fatal && !self.pipeline.terminated.load(Ordering::Acquire) {
                            // Closed without a word (a crash, a killed backend, the network):
                            // the client is told, as libpq would tell it directly.
                            tracing::warn!("the upstream closed the connection unexpectedly");
                            encode::error(
                                &mut out.bytes,
                                "FATAL",
                                "08006",
                                "gatehouse: the database server closed the connection unexpectedly",
                                None,
                                None,
                            );
                        }
                        if !out.bytes.is_empty() {
                            let _ = self.client.write_all(&out.bytes).await;
                        }
                        return Ok(());
                    }
                    let pipeline = Arc::clone(&self.pipeline);
                    let mut g = pipeline.lock();
                    while let Some(frame) = decode_frame(&mut self.buf, MAX_UPSTREAM_MESSAGE)? {
                        emit_locals(&mut g, &mut out);
                        self.on_frame(&mut g, &mut out, frame)?;
                        emit_locals(&mut g, &mut out);
                    }
                    pipeline.popped(&mut g);
                }
                () = self.pipeline.local_queued() => {
                    let mut g = self.pipeline.lock();
                    emit_locals(&mut g, &mut out);
                    self.pipeline.popped(&mut g);
                }
                why = credential_ended(&mut ended) => {
                    // The credential is no longer valid: the session ends now, in the middle
                    // of whatever it was doing (statements in flight are audited `unknown`;
                    // the server rolls back an open transaction when the connection closes).
                    out.bytes.clear();
                    encode::error(
                        &mut out.bytes,
                        "FATAL",
                        "57P01",
                        &format!("gatehouse: terminating connection because {why}"),
                        None,
                        None,
                    );
                    let _ = self.client.write_all(&out.bytes).await;
                    let _ = self.client.shutdown().await;
                    return Err(SessionError::CredentialEnded(why));
                }
            }
            if !out.bytes.is_empty() {
                self.client.write_all(&out.bytes).await?;
                out.bytes.clear();
            }
            if out.fatal {
                let _ = self.client.shutdown().await;
                return Ok(());
            }
        }
    }

    fn on_frame(&self, g: &mut Inner, out: &mut Out, frame: Frame) -> Result<(), SessionError> {
        if let (Some(d), tag::ERROR_RESPONSE | tag::NOTICE_RESPONSE) =
            (&self.detectors, frame.tag())
        {
            // An error of a statement whose result is masked can quote a value derived from
            // a masked column (`reverse(ssn)::int`) that no detector recognises: every
            // quoted value in its text is withheld.
            let masked = frame.tag() == tag::ERROR_RESPONSE
                && head_statement(g)
                    .map(|s| self.binder.plan_of(&g.state, s))
                    .is_some_and(|p| !matches!(p, Ok(None)));
            if let Some(redacted) = redact_fields(d, &frame, masked, self.view.encoding.get()) {
                let tag = frame.tag();
                let mut bytes = BytesMut::new();
                encode::fields_raw(&mut bytes, tag, &redacted);
                let frame = decode_frame(&mut bytes, MAX_UPSTREAM_MESSAGE)?
                    .ok_or(SessionError::Protocol("re-encoded error"))?;
                return self.dispatch(g, out, frame);
            }
        }
        self.dispatch(g, out, frame)
    }

    /// One response: check it against the head of the queue, update the session state,
    /// forward it (or its masked form).
    fn dispatch(&self, g: &mut Inner, out: &mut Out, frame: Frame) -> Result<(), SessionError> {
        // CopyEnd markers ask for no response: they only matter to a CopyInResponse.
        // A Sync sent during a COPY IN at the head: a ReadyForQuery answers it; anything else
        // the server sends now belongs to a later request, so it was ignored.
        let async_msg = matches!(
            frame.tag(),
            tag::NOTICE_RESPONSE | tag::PARAMETER_STATUS | tag::NOTIFICATION
        );
        if !async_msg {
            loop {
                match g.queue.front() {
                    Some(Expect::CopyEnd) => {}
                    Some(Expect::SyncInCopy) if frame.tag() == tag::READY_FOR_QUERY => {
                        if let Some(e) = g.queue.front_mut() {
                            *e = Expect::Sync;
                        }
                        break;
                    }
                    Some(Expect::SyncInCopy) => {}
                    _ => break,
                }
                g.queue.pop_front();
            }
        }
        if matches!(g.queue.front(), Some(Expect::Probe { .. })) {
            return self.on_probe(g, out, frame);
        }
        if matches!(g.queue.front(), Some(Expect::Rollback)) {
            return self.on_rollback(g, out, frame);
        }
        if matches!(g.queue.front(), Some(Expect::Peek { .. })) {
            return self.on_peek(g, out, frame);
        }
        if !async_msg && matches!(g.queue.front(), Some(Expect::TextCheck { .. })) {
            return self.on_text_check(g, out, frame);
        }
        if let (Some(Expect::HiddenDescribe(_)), tag::ROW_DESCRIPTION | tag::NO_DATA) =
            (g.queue.front(), frame.tag())
        {
            if let Some(Expect::HiddenDescribe(portal)) = g.queue.pop_front() {
                let fields = match frame.tag() {
                    tag::ROW_DESCRIPTION => Some(backend::row_description(&frame)?),
                    _ => None,
                };
                g.state.describe_portal(&portal, fields);
            }
            return Ok(());
        }
        match frame.tag() {
            tag::DATA_ROW => return self.on_data_row(g, out, &frame),
            tag::ROW_DESCRIPTION => self.on_row_description(g, out, &frame)?,
            tag::COPY_OUT => {
                let plan = head_statement(g).map(|s| self.binder.plan_of(&g.state, s));
                out.bound = match plan {
                    Some(p) => p?.map(|p| relay_mask::bind_copy(&p)),
                    None => return desync("CopyOutResponse without a statement"),
                };
                out.active = true;
            }
            tag::COPY_DATA if out.bound.is_some() => {
                let enc = self.view.encoding.get();
                if let Some(b) = &mut out.bound {
                    if !b.failed {
                        if let Err(e) =
                            relay_mask::rewrite_copy(b, &frame, &self.mask_key, enc, &mut out.bytes)
                        {
                            tracing::error!(error = %e, "COPY masking failed; withholding the rest");
                            b.failed = true;
                        }
                    }
                }
                return Ok(());
            }
            tag::COPY_IN => {
                on_copy_in(g)?;
                out.copying_in = true;
            }
            tag::COMMAND_COMPLETE if out.bound.as_ref().is_some_and(|b| b.failed) => {
                let message =
                    "gatehouse: a result row could not be masked; the result was withheld";
                encode::error(&mut out.bytes, "ERROR", "XX000", message, None, None);
                let outcome = Outcome::Error {
                    sqlstate: "XX000".into(),
                    message: message.into(),
                };
                g.state.rolled_back();
                complete(g, out, outcome, None, false)?;
                return Ok(());
            }
            tag::COMMAND_COMPLETE => {
                let tag = backend::command_complete(&frame)?;
                if std::mem::take(&mut out.copying_in) {
                    copy_in_completed(g);
                }
                if tag == "ROLLBACK" {
                    g.state.rolled_back();
                }
                if let Some(s) = head_statement(g) {
                    self.binder.completed(s);
                }
                complete(g, out, Outcome::Ok, backend::rows_from_tag(&tag), true)?;
            }
            tag::EMPTY_QUERY => complete(g, out, Outcome::Ok, None, true)?,
            tag::FUNCTION_CALL_RESPONSE => function_call_done(g, out, Outcome::Ok)?,
            tag::PORTAL_SUSPENDED => {
                if !matches!(g.queue.front(), Some(Expect::Execute(_))) {
                    return desync("PortalSuspended without an Execute");
                }
                let rows = Some(out.rows);
                complete(g, out, Outcome::Ok, rows, false)?;
            }
            tag::ERROR_RESPONSE => {
                if let Some(Expect::Refused { error, simple }) = g.queue.front() {
                    // The poison's syntax error becomes Gatehouse's refusal.
                    out.bytes.extend_from_slice(error);
                    if !*simple {
                        g.queue.pop_front();
                        skip_to_sync(g, out);
                        g.discarding = true;
                    }
                    g.state.rolled_back();
                    return Ok(());
                }
                on_error(g, out, &frame, self.view.encoding.get())?;
            }
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?.as_byte();
                self.tx_status.store(status, Ordering::Relaxed);
                if status == b'I' {
                    g.idle_seen += 1;
                }
                if std::mem::take(&mut g.discarding) {
                    // What was queued after the error was discarded by the server: it never
                    // ran (nothing to audit), and this ReadyForQuery answers the Sync.
                    discard_to_sync(g);
                }
                match g.queue.front() {
                    Some(Expect::FunctionCall(calls)) if !calls.is_empty() => {
                        return desync("ReadyForQuery before the FunctionCall was answered");
                    }
                    Some(Expect::FunctionCall(_)) => {
                        g.queue.pop_front();
                    }
                    Some(
                        Expect::Sync | Expect::Query(_) | Expect::Refused { simple: true, .. },
                    ) => {
                        if let Some(Expect::Query(skipped)) = g.queue.pop_front() {
                            // Statements after an error in the string never ran.
                            for s in skipped {
                                note_failed_prepares(g, &s.effects);
                            }
                        }
                    }
                    _ => return desync("ReadyForQuery without a Sync or Query"),
                }
                out.end_result();
                g.state.ready(status);
            }
            tag::PARSE_COMPLETE => match g.queue.pop_front() {
                Some(Expect::Parse {
                    name,
                    plan,
                    effects,
                    ..
                }) => g.state.parsed(name, plan, effects),
                _ => return desync("ParseComplete without a Parse"),
            },
            tag::BIND_COMPLETE => match g.queue.pop_front() {
                Some(Expect::Bind {
                    portal,
                    statement,
                    formats,
                    extra,
                }) => {
                    if !g.state.bound(portal, &statement, formats, extra) {
                        return desync(&format!("Bind of statement {statement:?} unknown here"));
                    }
                }
                _ => return desync("BindComplete without a Bind"),
            },
            tag::CLOSE_COMPLETE => match g.queue.pop_front() {
                Some(Expect::Close(Named::Statement(n))) => {
                    g.state.close_statement(&n);
                    g.prepared_events.push(PreparedEvent::Closed(Some(n)));
                }
                Some(Expect::Close(Named::Portal(n))) => g.state.close_portal(&n),
                _ => return desync("CloseComplete without a Close"),
            },
            tag::NO_DATA => match g.queue.pop_front() {
                Some(Expect::Describe(Named::Statement(n))) => g.state.describe_statement(&n, None),
                Some(Expect::Describe(Named::Portal(n))) => g.state.describe_portal(&n, None),
                _ => return desync("NoData without a Describe"),
            },
            tag::PARAMETER_DESCRIPTION => {
                let Some(Expect::Describe(Named::Statement(n))) = g.queue.front() else {
                    return desync("ParameterDescription without a Describe");
                };
                // Kept to show approvers typed values of binary parameters.
                if let Some(types) = parameter_types(&frame.body()) {
                    let n = n.clone();
                    g.state.describe_params(&n, types);
                }
            }
            tag::PARAMETER_STATUS => {
                let frame = parameter(frame, &self.view)?;
                out.bytes.extend_from_slice(frame.raw());
                return Ok(());
            }
            tag::NOTICE_RESPONSE | tag::NOTIFICATION | tag::COPY_DATA | tag::COPY_DONE => {}
            _ => return desync(&format!("unexpected message {:?}", char::from(frame.tag()))),
        }
        out.bytes.extend_from_slice(frame.raw());
        Ok(())
    }

    fn on_row_description(
        &self,
        g: &mut Inner,
        out: &mut Out,
        frame: &Frame,
    ) -> Result<(), SessionError> {
        let fields = if self.binder.needs_fields() {
            Some(backend::row_description(frame)?)
        } else {
            None
        };
        match g.queue.front() {
            Some(Expect::Query(stmts)) => {
                let Some(s) = stmts.front() else {
                    return desync("RowDescription after the last statement");
                };
                let plan = self.binder.plan_of(&g.state, s)?;
                out.bound = self.binder.bind(plan, fields.as_deref(), None);
                out.active = true;
            }
            Some(Expect::Describe(_)) => match g.queue.pop_front() {
                Some(Expect::Describe(Named::Statement(n))) => {
                    g.state.describe_statement(&n, fields)
                }
                Some(Expect::Describe(Named::Portal(n))) => g.state.describe_portal(&n, fields),
                _ => {}
            },
            _ => return desync("RowDescription without a Query or Describe"),
        }
        Ok(())
    }

    fn on_data_row(&self, g: &mut Inner, out: &mut Out, frame: &Frame) -> Result<(), SessionError> {
        out.rows += 1;
        if !out.active {
            // An Execute's rows come without a RowDescription: bind from the portal.
            let Some(Expect::Execute(s)) = g.queue.front() else {
                return desync("DataRow without a RowDescription or Execute");
            };
            let portal = s.portal.as_deref().unwrap_or_default();
            out.bound = match g.state.portal(portal) {
                Some(p) => {
                    let plan = self.binder.resolve(&g.state, &p.plan)?;
                    self.binder.bind(
                        plan,
                        p.fields.as_deref().map(Vec::as_slice),
                        p.formats.as_deref(),
                    )
                }
                None if self.binder.masking => {
                    return desync(&format!("rows of portal {portal:?} unknown here"))
                }
                None => None,
            };
            out.active = true;
        }
        match &mut out.bound {
            Some(b) if !b.failed => {
                let d = self.detectors.as_deref();
                let enc = self.view.encoding.get();
                if let Err(e) =
                    relay_mask::rewrite(b, frame, &self.mask_key, d, enc, &mut out.bytes)
                {
                    tracing::error!(error = %e, "masking failed; withholding the rest of the result");
                    b.failed = true;
                }
            }
            Some(_) => {}
            None => out.bytes.extend_from_slice(frame.raw()),
        }
        Ok(())
    }
}

/// The type OIDs of a ParameterDescription body (`None` if it is malformed).
fn parameter_types(body: &[u8]) -> Option<Vec<u32>> {
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let rest = body.get(2..)?;
    if rest.len() != n * 4 {
        return None;
    }
    Some(
        rest.chunks_exact(4)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

/// Why the session's credential ended, once it has (`live`).
async fn credential_ended(ended: &mut tokio::sync::watch::Receiver<Option<String>>) -> String {
    let why = ended
        .wait_for(Option::is_some)
        .await
        .map(|r| r.clone().unwrap_or_default());
    match why {
        Ok(why) => why,
        // The registry is gone: the proxy is stopping; nothing ends the session from here.
        Err(_) => std::future::pending().await,
    }
}

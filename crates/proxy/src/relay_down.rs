//! Upstream→client half of a session: forwards responses, matches each to the request that
//! caused it (see `expect`), completes audit events with outcome and row counts, keeps the
//! transaction status, and is the one writer of the confirmed session state (`state`).
//!
//! Every response must be one the head of the queue calls for (or one the server may send at
//! any time: notices, notifications, parameter changes). Anything else means the proxy's
//! model of the session is wrong, and masking decisions taken on a wrong model cannot be
//! trusted: the session ends with a FATAL error, and every statement still in flight is
//! audited with an unknown outcome.

use crate::error::SessionError;
use crate::expect::{Expect, Named, StmtAudit};
use crate::pipeline::{Inner, Pipeline, PreparedEvent};
use crate::relay_mask::{self, Bound};
use crate::result::Binder;
use crate::stream::{ReadHalf, WriteHalf};
use crate::upstream::MAX_UPSTREAM_MESSAGE;
use bytes::BytesMut;
use model::Outcome;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
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
            bytes: BytesMut::with_capacity(16 * 1024),
            rows: 0,
            fatal: false,
            copying_in: false,
        };
        loop {
            tokio::select! {
                n = self.upstream.read_buf(&mut self.buf) => {
                    if n? == 0 {
                        // The upstream closed (after a Terminate, perhaps one sent because
                        // the client misbehaved): a pending FATAL still goes out first.
                        emit_locals(&mut self.pipeline.lock(), &mut out);
                        if !out.bytes.is_empty() {
                            let _ = self.client.write_all(&out.bytes).await;
                        }
                        return Ok(());
                    }
                    let pipeline = Arc::clone(&self.pipeline);
                    let mut g = pipeline.lock();
                    while let Some(frame) = decode_frame(&mut self.buf, MAX_UPSTREAM_MESSAGE)? {
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
            if let Some(redacted) = redact_fields(d, &frame, masked) {
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
                if let Some(b) = &mut out.bound {
                    if !b.failed {
                        if let Err(e) =
                            relay_mask::rewrite_copy(b, &frame, &self.mask_key, &mut out.bytes)
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
                on_error(g, out, &frame)?;
            }
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?.as_byte();
                self.tx_status.store(status, Ordering::Relaxed);
                if std::mem::take(&mut g.discarding) {
                    // What was queued after the error was discarded by the server: it never
                    // ran (nothing to audit), and this ReadyForQuery answers the Sync.
                    discard_to_sync(g);
                }
                match g.queue.front() {
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
                if !matches!(g.queue.front(), Some(Expect::Describe(Named::Statement(_)))) {
                    return desync("ParameterDescription without a Describe");
                }
            }
            tag::PARAMETER_STATUS => check_parameter(&frame)?,
            tag::NOTICE_RESPONSE | tag::NOTIFICATION | tag::COPY_DATA | tag::COPY_DONE => {}
            _ => return desync(&format!("unexpected message {:?}", char::from(frame.tag()))),
        }
        out.bytes.extend_from_slice(frame.raw());
        Ok(())
    }

    /// A response to Gatehouse's own probe: nothing of it reaches the client but what the
    /// server may send at any time (parameter changes, notifications).
    fn on_probe(&self, g: &mut Inner, out: &mut Out, frame: Frame) -> Result<(), SessionError> {
        let Some(Expect::Probe { rows, error, .. }) = g.queue.front_mut() else {
            return Ok(());
        };
        match frame.tag() {
            tag::DATA_ROW => rows.push(crate::catalog::text_row(&frame)?),
            tag::ERROR_RESPONSE => {
                let e = backend::error_fields(&frame)?;
                *error = Some(format!("{} {}", e.code, e.message));
            }
            tag::ROW_DESCRIPTION | tag::COMMAND_COMPLETE | tag::NOTICE_RESPONSE => {}
            tag::PARAMETER_STATUS | tag::NOTIFICATION => out.bytes.extend_from_slice(frame.raw()),
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?.as_byte();
                self.tx_status.store(status, Ordering::Relaxed);
                if let Some(Expect::Probe { reply, rows, error }) = g.queue.pop_front() {
                    let result = match error {
                        Some(e) => Err(e),
                        // Rows without the setting and the fingerprint are no answer (a
                        // probe the server skipped, for one): never taken as the truth.
                        None if !crate::probe::complete(&rows) => {
                            Err("incomplete probe answer".to_owned())
                        }
                        None => Ok(crate::probe::parse(&rows)),
                    };
                    if let Some(r) = reply {
                        let _ = r.send(result.map(|mut p| {
                            p.idle = status == b'I';
                            p
                        }));
                    }
                }
            }
            _ => return desync("unexpected response to a probe"),
        }
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
                if let Err(e) = relay_mask::rewrite(b, frame, &self.mask_key, d, &mut out.bytes) {
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

/// A setting the server reports that would make it read statements differently from
/// Gatehouse's analysis ends the session before anything else is forwarded (see `lexing`).
fn check_parameter(frame: &Frame) -> Result<(), SessionError> {
    let (name, value) = backend::parameter_status(frame)?;
    if crate::lexing::watched(&name)
        && crate::lexing::unsafe_setting(&name.to_ascii_lowercase(), &value)
    {
        return Err(SessionError::UnsafeSetting(format!("{name} = {value}")));
    }
    Ok(())
}

fn desync<T>(what: &str) -> Result<T, SessionError> {
    Err(SessionError::Desync(what.to_owned()))
}

/// The statement whose result is arriving: the current statement of a simple query, or the
/// Execute at the head.
fn head_statement(g: &Inner) -> Option<&StmtAudit> {
    match g.queue.front() {
        Some(Expect::Query(stmts)) => stmts.front(),
        Some(Expect::Execute(s)) => Some(s),
        _ => None,
    }
}

/// CopyInResponse: until the client's CopyDone or CopyFail, the server ignores Sync and Flush
/// (PostgreSQL protocol, "COPY Operations"), so the Syncs queued since the COPY started get
/// no ReadyForQuery.
fn on_copy_in(g: &mut Inner) -> Result<(), SessionError> {
    if head_statement(g).is_none() {
        return desync("CopyInResponse without a statement");
    }
    let mut i = 1;
    while i < g.queue.len() {
        match g.queue.get_mut(i) {
            Some(e @ Expect::Sync) => *e = Expect::SyncInCopy,
            Some(Expect::CopyEnd) => return Ok(()),
            _ => {}
        }
        i += 1;
    }
    // The client has not ended the COPY yet: the other half queues its Syncs as SyncInCopy.
    g.copy_in = true;
    Ok(())
}

/// The COPY IN at the head completed: every Sync sent during it was ignored by the server.
fn copy_in_completed(g: &mut Inner) {
    let mut i = 1;
    while i < g.queue.len() {
        match g.queue.get(i) {
            Some(Expect::SyncInCopy) => {
                g.queue.remove(i);
            }
            Some(Expect::CopyEnd) => {
                g.queue.remove(i);
                return;
            }
            _ => i += 1,
        }
    }
}

/// The fields of an error or notice with detected sensitive values masked (and, with
/// `quotes`, every quoted value withheld), if anything changed.
fn redact_fields(d: &masking::Detectors, frame: &Frame, quotes: bool) -> Option<Vec<(u8, String)>> {
    let mut fields = backend::all_fields(frame).ok()?;
    let mut changed = false;
    for (kind, value) in fields.iter_mut() {
        // Message, detail, hint, context: the free-text fields that can quote data.
        if matches!(*kind, b'M' | b'D' | b'H' | b'W') {
            if let Some(r) = d.redact(value.as_bytes()) {
                *value = String::from_utf8_lossy(&r).into_owned();
                changed = true;
            }
            if quotes {
                if let Some(r) = withhold_quoted(value) {
                    *value = r;
                    changed = true;
                }
            }
        }
    }
    changed.then_some(fields)
}

/// `text` with the contents of every `"…"` and `'…'` replaced by `***`, if it has any.
fn withhold_quoted(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut open: Option<char> = None;
    let mut changed = false;
    for c in text.chars() {
        match open {
            Some(q) if c == q => {
                out.push_str("***");
                out.push(c);
                open = None;
                changed = true;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '\'' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        // An unterminated quote: everything after it is withheld.
        out.push_str("***");
        changed = true;
    }
    changed.then_some(out)
}

/// Sends a fatal error once everything before it is answered.
fn emit_locals(g: &mut Inner, out: &mut Out) {
    if let Some(Expect::Fatal(bytes)) = g.queue.front() {
        out.bytes.extend_from_slice(bytes);
        out.fatal = true;
        g.queue.pop_front();
    }
}

/// A statement that did not complete created none of the prepared statements it would have.
fn note_failed_prepares(g: &mut Inner, effects: &[crate::state::Effect]) {
    for e in effects {
        if let crate::state::Effect::Prepare { name, .. } = e {
            g.prepared_events.push(PreparedEvent::Failed(name.clone()));
        }
    }
}

/// A statement completed: what it changes takes effect, and names it closed are reported.
fn apply_effects(g: &mut Inner, effects: &[crate::state::Effect]) {
    use crate::state::Effect;
    for e in effects {
        match e {
            Effect::Deallocate(n) => g.prepared_events.push(PreparedEvent::Closed(n.clone())),
            Effect::DiscardAll => g.prepared_events.push(PreparedEvent::Closed(None)),
            _ => {}
        }
    }
    g.state.apply(effects);
}

/// One statement ended (CommandComplete, EmptyQueryResponse, PortalSuspended or error).
/// `succeeded`: it ran to completion, so what it changes in the session takes effect.
fn complete(
    g: &mut Inner,
    out: &mut Out,
    outcome: Outcome,
    rows: Option<u64>,
    succeeded: bool,
) -> Result<(), SessionError> {
    out.end_result();
    match g.queue.front_mut() {
        Some(Expect::Query(stmts)) => match stmts.pop_front() {
            Some(s) => {
                if succeeded {
                    apply_effects(g, &s.effects);
                } else {
                    note_failed_prepares(g, &s.effects);
                }
                s.complete(outcome, rows);
            }
            None => return desync("more statement results than statements"),
        },
        Some(Expect::Execute(_)) => {
            if let Some(Expect::Execute(s)) = g.queue.pop_front() {
                if succeeded {
                    let portal = s.portal.as_deref().unwrap_or_default();
                    if let Some(effects) = g.state.portal(portal).map(|p| p.effects.clone()) {
                        apply_effects(g, &effects);
                    }
                }
                s.complete(outcome, rows);
            }
        }
        _ => return desync("a statement result without a statement"),
    }
    Ok(())
}

fn on_error(g: &mut Inner, out: &mut Out, frame: &Frame) -> Result<(), SessionError> {
    let fields = backend::error_fields(frame)?;
    let outcome = Outcome::Error {
        sqlstate: fields.code,
        message: fields.message,
    };
    // Whatever failed, the transaction it ran in will roll back.
    g.state.rolled_back();
    g.copy_in = false;
    out.copying_in = false;
    match g.queue.front() {
        // The rest of a simple query string is skipped; its ReadyForQuery pops it.
        Some(Expect::Query(_)) => complete(g, out, outcome, None, false)?,
        // An error outside any request (e.g. FATAL from an administrator's shutdown).
        Some(Expect::Sync) | None => {}
        Some(_) => {
            // Extended protocol: the server skips everything up to Sync. The statement that
            // failed (at Parse, Bind or Execute) is the first Execute of that stretch; it is
            // audited with the error, the rest never ran.
            let mut outcome = Some(outcome);
            while !matches!(g.queue.front(), Some(Expect::Sync) | None) {
                match (g.queue.pop_front(), outcome.take()) {
                    (Some(Expect::Execute(s)), Some(o)) => {
                        let portal = s.portal.as_deref().unwrap_or_default();
                        if let Some(effects) = g.state.portal(portal).map(|p| p.effects.clone()) {
                            note_failed_prepares(g, &effects);
                        }
                        s.complete(o, None)
                    }
                    (Some(Expect::Fatal(b)), _) => {
                        // Not skipped: a local answer goes out in order.
                        g.queue.push_front(Expect::Fatal(b));
                        break;
                    }
                    (skipped, o) => {
                        if let Some(Expect::Parse { name, .. }) = &skipped {
                            g.prepared_events.push(PreparedEvent::Failed(name.clone()));
                        }
                        outcome = o;
                    }
                }
            }
            out.end_result();
            g.discarding = true;
        }
    }
    Ok(())
}

/// Drops everything queued before the first Sync (the server discarded it), answering a
/// probe among it with an error.
fn discard_to_sync(g: &mut Inner) {
    while !matches!(
        g.queue.front(),
        Some(Expect::Sync) | Some(Expect::Fatal(_)) | None
    ) {
        match g.queue.pop_front() {
            Some(Expect::Parse { name, .. }) => {
                g.prepared_events.push(PreparedEvent::Failed(name));
            }
            Some(Expect::Query(skipped)) => {
                for s in skipped {
                    note_failed_prepares(g, &s.effects);
                }
            }
            Some(Expect::Probe { reply: Some(r), .. }) => {
                let _ = r.send(Err("discarded by the server".into()));
            }
            _ => {}
        }
    }
}

/// After an error in the extended protocol the server skips everything up to Sync; what it
/// skipped never ran, and its reserved audit slot is released.
fn skip_to_sync(g: &mut Inner, out: &mut Out) {
    while !matches!(
        g.queue.front(),
        Some(Expect::Sync) | Some(Expect::Fatal(_)) | None
    ) {
        if let Some(Expect::Parse { name, .. }) = g.queue.pop_front() {
            g.prepared_events.push(PreparedEvent::Failed(name));
        }
    }
    out.end_result();
}

/// The session ended with requests in flight: each statement among them is audited with an
/// unknown outcome (it may or may not have run).
pub fn abandon(g: &mut Inner, reason: &str) {
    for e in g.queue.drain(..) {
        match e {
            Expect::Query(stmts) => {
                for s in stmts {
                    s.complete(
                        Outcome::Unknown {
                            reason: reason.to_owned(),
                        },
                        None,
                    );
                }
            }
            Expect::Execute(s) => s.complete(
                Outcome::Unknown {
                    reason: reason.to_owned(),
                },
                None,
            ),
            _ => {}
        }
    }
}

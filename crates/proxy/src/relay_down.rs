//! Upstream→client half of a session: forwards responses, matches each to the request that
//! caused it (see `expect`), completes audit events with outcome and row counts, and keeps
//! the transaction status. Result rows pass through untouched here; masking binds to
//! RowDescription and rewrites DataRow at this point.

use crate::error::SessionError;
use crate::expect::{Expect, StmtAudit};
use crate::pipeline::Pipeline;
use crate::relay_mask::{self, Bound};
use crate::stream::{ReadHalf, WriteHalf};
use crate::upstream::MAX_UPSTREAM_MESSAGE;
use bytes::BytesMut;
use model::Outcome;
use std::collections::VecDeque;
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
    /// Also scan every text column of every result (`[masking] detect_all_text`).
    pub safety_net: bool,
}

/// Per-read working state.
struct Out {
    bytes: BytesMut,
    /// The mask plan bound to the current result, if it has masked columns.
    bound: Option<Bound>,
    /// Result columns of described prepared statements, by name.
    described: std::collections::HashMap<String, Vec<wire_pg::backend::FieldDesc>>,
    /// DataRows seen for the statement at the head (for PortalSuspended).
    rows: u64,
    fatal: bool,
}

impl Down {
    pub async fn run(mut self) -> Result<(), SessionError> {
        let result = self.relay().await;
        self.pipeline.close();
        result
    }

    async fn relay(&mut self) -> Result<(), SessionError> {
        let mut out = Out {
            bound: None,
            described: std::collections::HashMap::new(),
            bytes: BytesMut::with_capacity(16 * 1024),
            rows: 0,
            fatal: false,
        };
        loop {
            tokio::select! {
                n = self.upstream.read_buf(&mut self.buf) => {
                    if n? == 0 {
                        // The upstream closed (after a Terminate, perhaps one sent because
                        // the client misbehaved): a pending FATAL still goes out first.
                        emit_locals(&mut self.pipeline.lock().queue, &mut out);
                        if !out.bytes.is_empty() {
                            let _ = self.client.write_all(&out.bytes).await;
                        }
                        return Ok(());
                    }
                    let pipeline = Arc::clone(&self.pipeline);
                    let mut g = pipeline.lock();
                    while let Some(frame) = decode_frame(&mut self.buf, MAX_UPSTREAM_MESSAGE)? {
                        self.on_frame(&mut g.queue, &mut out, frame)?;
                        emit_locals(&mut g.queue, &mut out);
                    }
                    pipeline.popped(&mut g);
                }
                () = self.pipeline.local_queued() => {
                    let mut g = self.pipeline.lock();
                    emit_locals(&mut g.queue, &mut out);
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

    fn on_frame(
        &self,
        q: &mut VecDeque<Expect>,
        out: &mut Out,
        frame: Frame,
    ) -> Result<(), SessionError> {
        if let (Some(d), tag::ERROR_RESPONSE | tag::NOTICE_RESPONSE) =
            (&self.detectors, frame.tag())
        {
            if let Some(redacted) = redact_fields(d, &frame) {
                let tag = frame.tag();
                let mut bytes = BytesMut::new();
                encode::fields_raw(&mut bytes, tag, &redacted);
                let frame = decode_frame(&mut bytes, MAX_UPSTREAM_MESSAGE)?
                    .ok_or(SessionError::Protocol("re-encoded error"))?;
                return self.on_frame_inner(q, out, frame);
            }
        }
        self.on_frame_inner(q, out, frame)
    }

    fn on_frame_inner(
        &self,
        q: &mut VecDeque<Expect>,
        out: &mut Out,
        frame: Frame,
    ) -> Result<(), SessionError> {
        match frame.tag() {
            tag::DATA_ROW => {
                out.rows += 1;
                if out.bound.is_none() {
                    // Rows without a RowDescription in this exchange (Describe skipped).
                    if let Some(Expect::Execute(s)) = q.front() {
                        let fields = s.statement_name.as_ref().and_then(|n| out.described.get(n));
                        let fields = fields.map(Vec::as_slice);
                        out.bound = s
                            .mask
                            .as_ref()
                            .map(|p| relay_mask::bind(p, fields, s.formats.as_deref()));
                        if self.safety_net {
                            let b = out.bound.take();
                            out.bound = relay_mask::with_detection(b, fields, s.formats.as_deref());
                        }
                    }
                }
                if let Some(b) = &mut out.bound {
                    if !b.failed {
                        if let Err(e) = relay_mask::rewrite(
                            b,
                            &frame,
                            &self.mask_key,
                            self.detectors.as_deref(),
                            &mut out.bytes,
                        ) {
                            tracing::error!(error = %e, "masking failed; withholding the rest of the result");
                            b.failed = true;
                        }
                    }
                    return Ok(());
                }
            }
            tag::COPY_OUT => {
                let plan = match q.front() {
                    Some(Expect::Query(stmts)) => stmts.front().and_then(|s| s.mask.as_ref()),
                    Some(Expect::Execute(s)) => s.mask.as_ref(),
                    _ => None,
                };
                out.bound = plan.map(|p| relay_mask::bind_copy(p));
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
            tag::COMMAND_COMPLETE if out.bound.as_ref().is_some_and(|b| b.failed) => {
                let message =
                    "gatehouse: a result row could not be masked; the result was withheld";
                encode::error(&mut out.bytes, "ERROR", "XX000", message, None, None);
                let outcome = Outcome::Error {
                    sqlstate: "XX000".into(),
                    message: message.into(),
                };
                complete(q, out, outcome, None);
                return Ok(());
            }
            tag::COMMAND_COMPLETE => {
                let rows = backend::rows_from_tag(&backend::command_complete(&frame)?);
                complete(q, out, Outcome::Ok, rows);
            }
            tag::EMPTY_QUERY => complete(q, out, Outcome::Ok, None),
            tag::PORTAL_SUSPENDED => {
                let rows = Some(out.rows);
                complete(q, out, Outcome::Ok, rows);
            }
            tag::ERROR_RESPONSE => {
                if let Some(Expect::Refused { error, simple }) = q.front() {
                    // The poison's syntax error becomes Gatehouse's refusal.
                    out.bytes.extend_from_slice(error);
                    if !*simple {
                        q.pop_front();
                        skip_to_sync(q, out);
                    }
                    return Ok(());
                }
                on_error(q, out, &frame)?;
            }
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?;
                self.tx_status.store(status.as_byte(), Ordering::Relaxed);
                let simple = |e: &Expect| matches!(e, Expect::Refused { simple: true, .. });
                pop_if(q, |e| {
                    matches!(e, Expect::Sync | Expect::Query(_)) || simple(e)
                });
            }
            tag::PARSE_COMPLETE => {
                if let Some(Expect::Parse(name)) = q.front() {
                    out.described.remove(name);
                }
                pop_if(q, |e| matches!(e, Expect::Parse(_)));
            }
            tag::BIND_COMPLETE => pop_if(q, |e| matches!(e, Expect::Bind)),
            tag::CLOSE_COMPLETE => pop_if(q, |e| matches!(e, Expect::Close)),
            tag::NO_DATA => pop_if(q, |e| matches!(e, Expect::Describe(_))),
            tag::ROW_DESCRIPTION => {
                if let Some(Expect::Describe(name)) = q.front() {
                    // Only sessions with sensitive columns need the types (detectors are set
                    // exactly then).
                    if let (Some(n), true) = (name, self.detectors.is_some()) {
                        if let Some(fields) = relay_mask::fields(&frame) {
                            out.described.insert(n.clone(), fields);
                        }
                    }
                    q.pop_front();
                }
                out.bound = bind_result(q, &frame, self.safety_net);
            }
            _ => {}
        }
        out.bytes.extend_from_slice(frame.raw());
        Ok(())
    }
}

/// Binds the mask plan of the statement whose rows follow this RowDescription: the current
/// statement of a simple query, or the next Execute (after Describe) of the extended protocol.
fn bind_result(q: &VecDeque<Expect>, frame: &Frame, safety_net: bool) -> Option<Bound> {
    let s = match q.front() {
        Some(Expect::Query(stmts)) => stmts.front(),
        _ => q
            .iter()
            .take_while(|e| !matches!(e, Expect::Sync))
            .find_map(|e| match e {
                Expect::Execute(s) => Some(s),
                _ => None,
            }),
    };
    let plan = s.and_then(|s| s.mask.as_ref());
    if plan.is_none() && !safety_net {
        return None;
    }
    let formats = s.and_then(|s| s.formats.as_deref());
    let fields = relay_mask::fields(frame);
    let bound = plan.map(|p| relay_mask::bind(p, fields.as_deref(), formats));
    if safety_net {
        relay_mask::with_detection(bound, fields.as_deref(), formats)
    } else {
        bound
    }
}

/// The fields of an error or notice with detected sensitive values masked, if any were found.
fn redact_fields(d: &masking::Detectors, frame: &Frame) -> Option<Vec<(u8, String)>> {
    let mut fields = backend::all_fields(frame).ok()?;
    let mut changed = false;
    for (kind, value) in fields.iter_mut() {
        // Message, detail, hint, context: the free-text fields that can quote data.
        if matches!(*kind, b'M' | b'D' | b'H' | b'W') {
            if let Some(r) = d.redact(value.as_bytes()) {
                *value = String::from_utf8_lossy(&r).into_owned();
                changed = true;
            }
        }
    }
    changed.then_some(fields)
}

/// Sends a fatal error once everything before it is answered.
fn emit_locals(q: &mut VecDeque<Expect>, out: &mut Out) {
    if let Some(Expect::Fatal(bytes)) = q.front() {
        out.bytes.extend_from_slice(bytes);
        out.fatal = true;
        q.pop_front();
    }
}

/// Pops the head when it is what this response answers; otherwise the stream and our
/// bookkeeping disagree, which is logged (the bytes still reach the client).
fn pop_if(q: &mut VecDeque<Expect>, expected: impl Fn(&Expect) -> bool) {
    match q.front() {
        Some(e) if expected(e) => {
            q.pop_front();
        }
        _ => tracing::warn!("response does not match the request queue"),
    }
}

/// One statement ended (CommandComplete, EmptyQueryResponse, PortalSuspended or error).
fn complete(q: &mut VecDeque<Expect>, out: &mut Out, outcome: Outcome, rows: Option<u64>) {
    out.rows = 0;
    out.bound = None;
    match q.front_mut() {
        Some(Expect::Query(stmts)) => match stmts.pop_front() {
            Some(s) => s.complete(outcome, rows),
            None => tracing::warn!("more statement results than statements audited"),
        },
        Some(Expect::Execute(_)) => {
            if let Some(Expect::Execute(s)) = q.pop_front() {
                s.complete(outcome, rows);
            }
        }
        _ => {}
    }
}

fn on_error(q: &mut VecDeque<Expect>, out: &mut Out, frame: &Frame) -> Result<(), SessionError> {
    let fields = backend::error_fields(frame)?;
    let outcome = Outcome::Error {
        sqlstate: fields.code,
        message: fields.message,
    };
    match q.front() {
        // The rest of a simple query string is skipped; its ReadyForQuery pops it.
        Some(Expect::Query(_)) => complete(q, out, outcome, None),
        Some(Expect::Sync) | None => {}
        Some(_) => {
            // Extended protocol: the server skips everything up to Sync. The statement that
            // failed (at Parse, Bind or Execute) is the first Execute of that stretch; it is
            // audited with the error, the rest never ran.
            let mut outcome = Some(outcome);
            while !matches!(q.front(), Some(Expect::Sync) | None) {
                match (q.pop_front(), outcome.take()) {
                    (Some(Expect::Execute(s)), Some(o)) => s.complete(o, None),
                    (skipped, o) => {
                        drop_skipped(skipped);
                        outcome = o;
                    }
                }
            }
            out.rows = 0;
            out.bound = None;
        }
    }
    Ok(())
}

/// After an error in the extended protocol the server skips everything up to Sync.
fn skip_to_sync(q: &mut VecDeque<Expect>, out: &mut Out) {
    while !matches!(q.front(), Some(Expect::Sync) | None) {
        drop_skipped(q.pop_front());
    }
    out.rows = 0;
    out.bound = None;
}

/// A request the server skipped after an error never ran; its reserved slot is released.
fn drop_skipped(e: Option<Expect>) {
    if let Some(Expect::Execute(StmtAudit { slot, .. })) = e {
        drop(slot);
    }
}

//! Matching responses to the queue of requests: completing statements (and applying what
//! they change in the confirmed session state), the extended protocol's skip to Sync, COPY IN's
//! Syncs, and auditing what was in flight when the session ended.

use super::Out;
use crate::error::SessionError;
use crate::expect::{Expect, StmtAudit};
use crate::pipeline::{Inner, PreparedEvent};
use model::Outcome;
use wire_pg::backend;
use wire_pg::Frame;

pub(super) fn desync<T>(what: &str) -> Result<T, SessionError> {
    Err(SessionError::Desync(what.to_owned()))
}

/// The statement whose result is arriving: the current statement of a simple query, or the
/// Execute at the head.
pub(super) fn head_statement(g: &Inner) -> Option<&StmtAudit> {
    match g.queue.front() {
        Some(Expect::Query(stmts)) => stmts.front(),
        Some(Expect::Execute(s)) => Some(s),
        _ => None,
    }
}

/// CopyInResponse: until the client's CopyDone or CopyFail, the server ignores Sync and Flush
/// (PostgreSQL protocol, "COPY Operations"), so the Syncs queued since the COPY started get
/// no ReadyForQuery.
pub(super) fn on_copy_in(g: &mut Inner) -> Result<(), SessionError> {
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
pub(super) fn copy_in_completed(g: &mut Inner) {
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

/// Sends a fatal error once everything before it is answered.
pub(super) fn emit_locals(g: &mut Inner, out: &mut Out) {
    loop {
        match g.queue.front() {
            Some(Expect::Fatal(bytes)) => {
                out.bytes.extend_from_slice(bytes);
                out.fatal = true;
            }
            Some(Expect::Notice(bytes)) => out.bytes.extend_from_slice(bytes),
            _ => return,
        }
        g.queue.pop_front();
    }
}

/// A statement that did not complete created none of the prepared statements it would have.
pub(super) fn note_failed_prepares(g: &mut Inner, effects: &[crate::state::Effect]) {
    for e in effects {
        if let crate::state::Effect::Prepare { name, .. } = e {
            g.prepared_events
                .push(PreparedEvent::Failed(name.clone(), None));
        }
    }
}

/// A statement completed: what it changes takes effect, and names it closed are reported.
pub(super) fn apply_effects(g: &mut Inner, effects: &[crate::state::Effect]) {
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

/// A FunctionCall was answered (FunctionCallResponse or ErrorResponse); its ReadyForQuery
/// follows.
pub(super) fn function_call_done(
    g: &mut Inner,
    out: &mut Out,
    outcome: Outcome,
) -> Result<(), SessionError> {
    out.end_result();
    match g.queue.front_mut() {
        Some(Expect::FunctionCall(calls)) => match calls.pop_front() {
            Some(s) => s.complete(outcome, None),
            None => return desync("a second answer to a FunctionCall"),
        },
        _ => return desync("FunctionCallResponse without a FunctionCall"),
    }
    Ok(())
}

/// One statement ended (CommandComplete, EmptyQueryResponse, PortalSuspended or error).
/// `succeeded`: it ran to completion, so what it changes in the session takes effect.
pub(super) fn complete(
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

pub(super) fn on_error(
    g: &mut Inner,
    out: &mut Out,
    frame: &Frame,
    enc: wire_pg::encoding::Encoding,
) -> Result<(), SessionError> {
    let fields = backend::error_fields_in(frame, enc)?;
    let fatal = matches!(fields.severity.as_str(), "FATAL" | "PANIC");
    if fatal {
        out.server_fatal = true;
    }
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
        // A FATAL after the string's last statement ended (the client gave up during COPY
        // IN: ERROR, then FATAL "protocol synchronization was lost") ends the connection;
        // it is no statement's result.
        Some(Expect::Query(stmts)) if fatal && stmts.is_empty() => {}
        Some(Expect::Query(_)) => complete(g, out, outcome, None, false)?,
        Some(Expect::FunctionCall(_)) => function_call_done(g, out, outcome)?,
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
                        if let Some(Expect::Parse { name, id, .. }) = &skipped {
                            g.prepared_events
                                .push(PreparedEvent::Failed(name.clone(), Some(*id)));
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
pub(super) fn discard_to_sync(g: &mut Inner) {
    while !matches!(
        g.queue.front(),
        Some(Expect::Sync) | Some(Expect::Fatal(_)) | None
    ) {
        match g.queue.pop_front() {
            Some(Expect::Parse { name, id, .. }) => {
                g.prepared_events
                    .push(PreparedEvent::Failed(name, Some(id)));
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
pub(super) fn skip_to_sync(g: &mut Inner, out: &mut Out) {
    while !matches!(
        g.queue.front(),
        Some(Expect::Sync) | Some(Expect::Fatal(_)) | None
    ) {
        if let Some(Expect::Parse { name, id, .. }) = g.queue.pop_front() {
            g.prepared_events
                .push(PreparedEvent::Failed(name, Some(id)));
        }
    }
    out.end_result();
}

/// The session ended with requests in flight: each statement among them is audited with an
/// unknown outcome (it may or may not have run).
pub fn abandon(g: &mut Inner, reason: &str) {
    for e in g.queue.drain(..) {
        match e {
            Expect::Query(stmts) | Expect::FunctionCall(stmts) => {
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

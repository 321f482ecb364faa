//! Upstream→client half of a session: forwards responses, matches each to the request that
//! caused it (see `expect`), completes audit events with outcome and row counts, and keeps
//! the transaction status. Result rows pass through untouched here; masking binds to
//! RowDescription and rewrites DataRow at this point.

use crate::error::SessionError;
use crate::expect::{Expect, StmtAudit};
use crate::stream::MaybeTls;
use crate::upstream::MAX_UPSTREAM_MESSAGE;
use bytes::BytesMut;
use model::Outcome;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use wire_pg::backend::{self, tag};
use wire_pg::{decode_frame, encode, Frame};

/// Pipeline depth past which the client→upstream half is made to wait.
const MAX_IN_FLIGHT: usize = 16 * 1024;

pub struct Down {
    pub upstream: ReadHalf<MaybeTls>,
    pub client: WriteHalf<MaybeTls>,
    pub buf: BytesMut,
    pub rx: mpsc::Receiver<Expect>,
    /// Last ReadyForQuery status byte, shared with the other half.
    pub tx_status: Arc<AtomicU8>,
}

struct State {
    queue: VecDeque<Expect>,
    out: BytesMut,
    /// DataRows seen for the statement at the head (for PortalSuspended).
    rows: u64,
    fatal: bool,
}

impl Down {
    pub async fn run(mut self) -> Result<(), SessionError> {
        let mut st = State {
            queue: VecDeque::new(),
            out: BytesMut::with_capacity(16 * 1024),
            rows: 0,
            fatal: false,
        };
        let mut requests_open = true;
        loop {
            tokio::select! {
                biased;
                e = self.rx.recv(), if requests_open && st.queue.len() < MAX_IN_FLIGHT => match e {
                    Some(e) => st.queue.push_back(e),
                    None => requests_open = false,
                },
                n = self.upstream.read_buf(&mut self.buf) => {
                    if n? == 0 {
                        return Ok(());
                    }
                    while let Some(frame) = decode_frame(&mut self.buf, MAX_UPSTREAM_MESSAGE)? {
                        self.on_frame(&mut st, frame)?;
                    }
                }
            }
            self.emit_locals(&mut st);
            if !st.out.is_empty() {
                self.client.write_all(&st.out).await?;
                st.out.clear();
            }
            if st.fatal {
                let _ = self.client.shutdown().await;
                return Ok(());
            }
        }
    }

    fn emit_locals(&self, st: &mut State) {
        loop {
            match st.queue.front() {
                Some(Expect::Local { .. }) | Some(Expect::Fatal(_)) => {}
                _ => return,
            }
            match st.queue.pop_front() {
                Some(Expect::Local { error, ready }) => {
                    st.out.extend_from_slice(&error);
                    if ready {
                        encode::ready_for_query(
                            &mut st.out,
                            self.tx_status.load(Ordering::Relaxed),
                        );
                    }
                }
                Some(Expect::Fatal(bytes)) => {
                    st.out.extend_from_slice(&bytes);
                    st.fatal = true;
                    return;
                }
                _ => return,
            }
        }
    }

    fn on_frame(&self, st: &mut State, frame: Frame) -> Result<(), SessionError> {
        match frame.tag() {
            tag::DATA_ROW => st.rows += 1,
            tag::COMMAND_COMPLETE => {
                let rows = backend::rows_from_tag(&backend::command_complete(&frame)?);
                complete(st, Outcome::Ok, rows);
            }
            tag::EMPTY_QUERY => complete(st, Outcome::Ok, None),
            tag::PORTAL_SUSPENDED => {
                let rows = Some(st.rows);
                complete(st, Outcome::Ok, rows);
            }
            tag::ERROR_RESPONSE => on_error(st, &frame)?,
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?;
                self.tx_status.store(status.as_byte(), Ordering::Relaxed);
                pop_if(st, |e| matches!(e, Expect::Sync | Expect::Query(_)));
            }
            tag::PARSE_COMPLETE => pop_if(st, |e| matches!(e, Expect::Parse)),
            tag::BIND_COMPLETE => pop_if(st, |e| matches!(e, Expect::Bind)),
            tag::CLOSE_COMPLETE => pop_if(st, |e| matches!(e, Expect::Close)),
            tag::NO_DATA => pop_if(st, |e| matches!(e, Expect::Describe)),
            tag::ROW_DESCRIPTION => {
                if matches!(st.queue.front(), Some(Expect::Describe)) {
                    st.queue.pop_front();
                }
            }
            _ => {}
        }
        st.out.extend_from_slice(frame.raw());
        Ok(())
    }
}

/// Pops the head when it is what this response answers; otherwise the stream and our
/// bookkeeping disagree, which is logged (the bytes still reach the client).
fn pop_if(st: &mut State, expected: impl Fn(&Expect) -> bool) {
    match st.queue.front() {
        Some(e) if expected(e) => {
            st.queue.pop_front();
        }
        _ => tracing::warn!("response does not match the request queue"),
    }
}

/// One statement ended (CommandComplete, EmptyQueryResponse, PortalSuspended or error).
fn complete(st: &mut State, outcome: Outcome, rows: Option<u64>) {
    st.rows = 0;
    match st.queue.front_mut() {
        Some(Expect::Query(stmts)) => match stmts.pop_front() {
            Some(s) => s.complete(outcome, rows),
            None => tracing::warn!("more statement results than statements audited"),
        },
        Some(Expect::Execute(_)) => {
            if let Some(Expect::Execute(s)) = st.queue.pop_front() {
                s.complete(outcome, rows);
            }
        }
        _ => {}
    }
}

fn on_error(st: &mut State, frame: &Frame) -> Result<(), SessionError> {
    let fields = backend::error_fields(frame)?;
    let outcome = Outcome::Error {
        sqlstate: fields.code,
        message: fields.message,
    };
    match st.queue.front() {
        // The rest of a simple query string is skipped; its ReadyForQuery pops it.
        Some(Expect::Query(_)) => complete(st, outcome, None),
        Some(Expect::Sync) | None => {}
        Some(_) => {
            // Extended protocol: the server skips everything up to Sync.
            if let Some(Expect::Execute(s)) = st.queue.pop_front() {
                s.complete(outcome, None);
            }
            while !matches!(st.queue.front(), Some(Expect::Sync) | None) {
                drop_skipped(st.queue.pop_front());
            }
            st.rows = 0;
        }
    }
    Ok(())
}

/// A request the server skipped after an error never ran; its reserved slot is released.
fn drop_skipped(e: Option<Expect>) {
    if let Some(Expect::Execute(StmtAudit { slot, .. })) = e {
        drop(slot);
    }
}

//! Answers to Gatehouse's own query strings in the session (the probe, a peek at a held
//! transaction's rows, the ROLLBACK of a refused COMMIT): none of them reaches the client
//! but what the server may send at any time.

use super::{desync, parameter, Down, Out};
use crate::error::SessionError;
use crate::expect::Expect;
use crate::pipeline::Inner;
use std::sync::atomic::Ordering;
use wire_pg::backend::{self, tag};
use wire_pg::Frame;

impl Down {
    /// A response to Gatehouse's own query string inside the client's transaction (`Peek`):
    /// nothing of it reaches the client but what the server may send at any time.
    pub(super) fn on_peek(
        &self,
        g: &mut Inner,
        out: &mut Out,
        frame: Frame,
    ) -> Result<(), SessionError> {
        let Some(Expect::Peek { results, error, .. }) = g.queue.front_mut() else {
            return Ok(());
        };
        match frame.tag() {
            tag::ROW_DESCRIPTION => results.push(crate::expect::PeekResult {
                columns: backend::row_description(&frame)?
                    .into_iter()
                    .map(|f| f.name)
                    .collect(),
                rows: Vec::new(),
            }),
            tag::DATA_ROW => {
                let row = crate::catalog::text_row(&frame)?;
                match results.last_mut() {
                    Some(r) => r.rows.push(row),
                    None => return desync("a row without a description in Gatehouse's query"),
                }
            }
            tag::ERROR_RESPONSE => {
                let e = backend::error_fields(&frame)?;
                *error = Some(format!("{} {}", e.code, e.message));
            }
            tag::COMMAND_COMPLETE | tag::NOTICE_RESPONSE | tag::EMPTY_QUERY => {}
            tag::PARAMETER_STATUS => {
                let frame = parameter(frame, &self.view)?;
                out.bytes.extend_from_slice(frame.raw());
            }
            tag::NOTIFICATION => out.bytes.extend_from_slice(frame.raw()),
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?.as_byte();
                self.tx_status.store(status, Ordering::Relaxed);
                if status == b'I' {
                    g.idle_seen += 1;
                }
                if let Some(Expect::Peek {
                    reply: Some(r),
                    results,
                    error,
                }) = g.queue.pop_front()
                {
                    let _ = r.send(match error {
                        Some(e) => Err(e),
                        None => Ok(results),
                    });
                }
                g.state.ready(status);
            }
            _ => return desync("unexpected response to Gatehouse's query"),
        }
        Ok(())
    }

    /// A response to Gatehouse's own ROLLBACK: nothing of it reaches the client but what the
    /// server may send at any time. It cannot fail in a transaction; anything but its
    /// completion and ReadyForQuery is a desynchronisation.
    pub(super) fn on_rollback(
        &self,
        g: &mut Inner,
        out: &mut Out,
        frame: Frame,
    ) -> Result<(), SessionError> {
        match frame.tag() {
            tag::COMMAND_COMPLETE | tag::NOTICE_RESPONSE => {}
            tag::PARAMETER_STATUS => {
                let frame = parameter(frame, &self.view)?;
                out.bytes.extend_from_slice(frame.raw());
            }
            tag::NOTIFICATION => out.bytes.extend_from_slice(frame.raw()),
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?.as_byte();
                if status != b'I' {
                    return desync("the transaction did not end at Gatehouse's ROLLBACK");
                }
                self.tx_status.store(status, Ordering::Relaxed);
                if status == b'I' {
                    g.idle_seen += 1;
                }
                g.queue.pop_front();
                g.state.rolled_back();
                g.state.ready(status);
            }
            _ => return desync("unexpected response to Gatehouse's ROLLBACK"),
        }
        Ok(())
    }

    /// A response to Gatehouse's own probe: nothing of it reaches the client but what the
    /// server may send at any time (parameter changes, notifications).
    pub(super) fn on_probe(
        &self,
        g: &mut Inner,
        out: &mut Out,
        frame: Frame,
    ) -> Result<(), SessionError> {
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
            tag::PARAMETER_STATUS => {
                let frame = parameter(frame, &self.view)?;
                out.bytes.extend_from_slice(frame.raw());
            }
            tag::NOTIFICATION => out.bytes.extend_from_slice(frame.raw()),
            tag::READY_FOR_QUERY => {
                let status = backend::ready_for_query(&frame)?.as_byte();
                self.tx_status.store(status, Ordering::Relaxed);
                if status == b'I' {
                    g.idle_seen += 1;
                }
                if let Some(Expect::Probe { reply, rows, error }) = g.queue.pop_front() {
                    let result = match error {
                        Some(e) => Err(e),
                        // Rows without the setting and the fingerprint are no answer (a
                        // probe the server skipped, for one): never taken as the truth.
                        None => match crate::probe::decode_rows(&rows) {
                            Some(rows) if crate::probe::complete(&rows) => {
                                Ok(crate::probe::parse(&rows))
                            }
                            _ => Err("incomplete probe answer".to_owned()),
                        },
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
}

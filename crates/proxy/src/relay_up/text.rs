//! Reading a client message's text in the session's client encoding (see `lexing`). Any
//! statement can change client_encoding or standard_conforming_strings without showing it
//! (a function, a trigger, a column default, a domain's CHECK run while a Parse coerces a
//! literal or a Bind converts a parameter, a Describe re-analysing an invalidated statement,
//! a cursor's query calling `set_config`), and the server reports the change only
//! when it is ready for the next query. So text that could read differently under another
//! setting (anything but plain ASCII without a backslash) is read only once the server has
//! answered everything that ran before it. Inside an unsynced batch, where waiting for
//! ReadyForQuery would end the batch, Gatehouse asks the server in the batch itself: a
//! statement and portal of its own (named after `CHECK_NAME`, reserved) reading both settings, run, closed
//! and flushed, answered to Gatehouse only. During COPY IN nothing can be asked: such text
//! ends the session.

use super::{Tracking, Up};
use crate::annotation::Annotation;
use crate::error::SessionError;
use crate::expect::Expect;
use model::decision::Decision;
use model::{AuditKind, Outcome};
use wire_pg::encode;
use wire_pg::frontend::{tag, FrontendMessage};
use wire_pg::{Frame, WireError};

/// The prefix of the statement and portal names of the in-batch settings check; clients may
/// not use names that start with it. Each check has a name of its own (a counter follows), so
/// one a failure left behind on the server (its Close skipped) never blocks the next.
pub(crate) const CHECK_NAME: &str = "gatehouse.text_settings";

/// Whether a client's statement or portal name is one the check could use.
pub(crate) fn is_reserved(name: &[u8]) -> bool {
    name.starts_with(CHECK_NAME.as_bytes())
}

/// What the in-batch check asks. Functions `pg_catalog`-qualified: the client's search path
/// could hold look-alikes.
const CHECK_SQL: &str = "SELECT pg_catalog.current_setting('client_encoding'), \
     pg_catalog.current_setting('standard_conforming_strings')";

/// Whether a protocol message names the check's statement or portal.
fn uses_reserved_name(frame: &Frame) -> bool {
    let body = frame.body();
    let names: Vec<&[u8]> = match frame.tag() {
        tag::PARSE | tag::BIND => body.split(|&b| b == 0).take(2).collect(),
        tag::EXECUTE => body.split(|&b| b == 0).take(1).collect(),
        tag::DESCRIBE | tag::CLOSE => body
            .get(1..)
            .unwrap_or_default()
            .split(|&b| b == 0)
            .take(1)
            .collect(),
        _ => return false,
    };
    names.iter().any(|n| is_reserved(n))
}

/// How an in-batch check ended.
enum Checked {
    /// The server answered with settings Gatehouse can follow (now followed).
    Confirmed,
    /// The server is skipping to Sync (an earlier error, or the check's own in a failed
    /// transaction, whose error the client got): the text that waited will not run.
    Discarded,
    /// The server waits for COPY data.
    CopyIn,
}

/// SQLSTATE `character_not_in_repertoire`, as the server answers invalid text.
const NOT_IN_REPERTOIRE: &str = "22021";

/// Messages whose body holds text (a query string or names).
/// Whether the text of a message (its query string and names, not Bind's parameter values)
/// reads the same under any client encoding and string syntax (see `lexing`).
fn reads_the_same(tag: u8, body: &[u8]) -> bool {
    let mut cstrs = body.split(|&b| b == 0);
    let text: Vec<&[u8]> = match tag {
        tag::QUERY => vec![body],
        tag::PARSE | tag::BIND => cstrs.by_ref().take(2).collect(),
        tag::EXECUTE => cstrs.take(1).collect(),
        tag::DESCRIBE | tag::CLOSE => body
            .get(1..)
            .unwrap_or_default()
            .split(|&b| b == 0)
            .take(1)
            .collect(),
        _ => return true,
    };
    text.iter().all(|t| crate::lexing::reads_the_same(t))
}

/// What can be read of a refused message, for the trail: its query string (Query, Parse)
/// or first name, up to the first NUL, decoded lossily.
fn statement_text(frame: &Frame, enc: wire_pg::encoding::Encoding) -> String {
    let body = frame.body();
    let start = match frame.tag() {
        tag::PARSE => body.iter().position(|&b| b == 0).map_or(0, |p| p + 1),
        tag::DESCRIBE | tag::CLOSE => 1,
        _ => 0,
    };
    let rest = body.get(start..).unwrap_or_default();
    let text = rest.split(|&b| b == 0).next().unwrap_or_default();
    enc.decode_lossy(text).into_owned()
}

impl Up {
    /// The message, or `None` when its text was refused.
    pub(super) async fn decode(
        &mut self,
        t: &mut Tracking,
        frame: &Frame,
    ) -> Result<Option<FrontendMessage>, SessionError> {
        if uses_reserved_name(frame) {
            let msg = format!("gatehouse: names starting with \"{CHECK_NAME}\" are reserved");
            // Only extended-protocol messages name statements and portals.
            self.refuse(t, "42501", &msg, None, None, false).await?;
            t.batch_open = true;
            return Ok(None);
        }
        if t.ran_unconfirmed && !reads_the_same(frame.tag(), &frame.body()) {
            // Inside an unsynced batch the server is asked in the batch itself.
            let confirmed = if t.batch_open {
                self.check_in_batch(t).await?
            } else {
                self.settle(t).await?
            };
            if !confirmed {
                // Query text while the server waits for COPY data: a protocol violation the
                // server would fail the COPY for, and nothing can be confirmed meanwhile.
                let e = SessionError::Protocol("a query sent during COPY IN");
                self.fatal(t, SessionError::Protocol("a query sent during COPY IN"))
                    .await?;
                return Err(e);
            }
        }
        let enc = self.encoding.get();
        match FrontendMessage::parse_in(frame, enc) {
            Ok(m) => Ok(Some(m)),
            Err(e @ WireError::Encoding { .. }) => {
                self.undecodable(t, frame, &e).await?;
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Asks the server, inside the unsynced batch, for its current text settings: a named
    /// statement and portal of Gatehouse's own, run and closed, then Flush, which makes the
    /// server answer without ending the batch's implicit transaction. `false` when nothing
    /// could be confirmed (COPY IN).
    async fn check_in_batch(&mut self, t: &mut Tracking) -> Result<bool, SessionError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let mut skipped = None;
        self.pipeline
            .push_with(|g| {
                if g.discarding {
                    skipped = Some(Checked::Discarded);
                    None
                } else if g.copy_in {
                    skipped = Some(Checked::CopyIn);
                    None
                } else {
                    Some(Expect::TextCheck {
                        reply: Some(reply),
                        seen: 0,
                        confirmed: false,
                    })
                }
            })
            .await
            .map_err(|_| SessionError::Protocol("session ended"))?;
        let checked = match skipped {
            Some(s) => s,
            None => {
                t.checks += 1;
                let name = format!("{CHECK_NAME}.{}", t.checks);
                encode::parse(&mut t.out, &name, CHECK_SQL, &[]);
                encode::bind(&mut t.out, &name, &name, &[], &[]);
                encode::execute(&mut t.out, &name, 0);
                encode::close(&mut t.out, b'P', &name);
                encode::close(&mut t.out, b'S', &name);
                encode::flush(&mut t.out);
                self.flush(t).await?;
                match answer.await {
                    Ok(Ok(())) => Checked::Confirmed,
                    // The check failed (its error went to the client), or an earlier error
                    // made the server skip it: either way it skips to Sync.
                    Ok(Err(_)) => Checked::Discarded,
                    Err(_) if self.pipeline.lock().is_closed() => {
                        return Err(SessionError::Protocol("session ended"))
                    }
                    Err(_) => Checked::Discarded,
                }
            }
        };
        Ok(match checked {
            Checked::Confirmed => {
                t.ran_unconfirmed = false;
                true
            }
            Checked::Discarded => true,
            Checked::CopyIn => false,
        })
    }

    async fn undecodable(
        &mut self,
        t: &mut Tracking,
        frame: &Frame,
        e: &WireError,
    ) -> Result<(), SessionError> {
        let enc = self.encoding.get();
        let message = format!("gatehouse: {e}");
        tracing::warn!(session = %self.ctx.session, encoding = enc.name(), error = %e, "message refused");
        let simple = frame.tag() == tag::QUERY;
        let mut ev = self
            .ctx
            .event(AuditKind::Statement, self.state.clock.rfc3339());
        ev.statement = Some(statement_text(frame, enc));
        ev.outcome = Outcome::Error {
            sqlstate: NOT_IN_REPERTOIRE.into(),
            message: message.clone(),
        };
        let decision = Decision::Deny {
            reason: message.clone(),
            policy_id: "gatehouse.encoding".into(),
            hint: None,
            policies: Vec::new(),
        };
        Annotation::new(None, &decision, false).apply(&mut ev);
        if self.state.audit.submit(ev).is_err() {
            tracing::warn!(session = %self.ctx.session, "refusal could not be audited");
        }
        let hint = format!("the session's client_encoding is {}", enc.name());
        self.refuse(t, NOT_IN_REPERTOIRE, &message, None, Some(&hint), simple)
            .await?;
        if !simple {
            t.batch_open = true;
        }
        Ok(())
    }
}

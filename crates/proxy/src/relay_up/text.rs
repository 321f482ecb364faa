//! Reading a client message's text in the session's client encoding (see `lexing`). Any
//! statement can change client_encoding or standard_conforming_strings without showing it
//! (a function, a trigger, a column default, a domain's CHECK run while a Bind converts its
//! parameters, a cursor's query calling `set_config`), and the server reports the change only
//! when it is ready for the next query. So text that could
//! read differently under another setting (anything but plain ASCII without a backslash) is
//! read only once the server has answered everything that ran before it; inside an unsynced
//! batch, where it cannot be asked, such text is refused. Text that is not valid in
//! that encoding is refused — an error to the client, an audit event and a log line — and
//! the session goes on, as it does on the server (which refuses such text too).

use super::{Tracking, Up};
use crate::annotation::Annotation;
use crate::error::SessionError;
use model::decision::Decision;
use model::{AuditKind, Outcome};
use wire_pg::frontend::{tag, FrontendMessage};
use wire_pg::{Frame, WireError};

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
        if t.ran_unconfirmed && !reads_the_same(frame.tag(), &frame.body()) {
            if t.batch_open {
                // Inside an unsynced batch nothing can be confirmed.
                self.unconfirmed(t, frame).await?;
                return Ok(None);
            }
            if !self.settle(t).await? {
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

    /// Text that could read differently under a setting something earlier in this unsynced
    /// batch may have changed (a function, a trigger, a default, a cursor's query can run
    /// `set_config`): refused, as the server cannot be asked before the batch ends.
    async fn unconfirmed(&mut self, t: &mut Tracking, frame: &Frame) -> Result<(), SessionError> {
        let enc = self.encoding.get();
        let text = statement_text(frame, enc);
        tracing::warn!(session = %self.ctx.session, "text refused: the session's text settings are unconfirmed");
        let decision = super::check::lexing_unconfirmed();
        self.refuse_by_policy(t, &text, &[], &decision, false)
            .await?;
        t.batch_open = true;
        Ok(())
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

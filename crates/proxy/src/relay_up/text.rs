//! Reading a client message's text in the session's client encoding (see `lexing`): after
//! anything that could have changed the encoding the server is asked to answer first, so
//! the text is read in the encoding the server will read it in (unless the text reads the
//! same in every encoding: plain ASCII without a backslash). Text that is not valid in
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
fn carries_text(tag: u8) -> bool {
    matches!(
        tag,
        tag::QUERY | tag::PARSE | tag::BIND | tag::DESCRIBE | tag::CLOSE | tag::EXECUTE
    )
}

impl Up {
    /// The message, or `None` when its text was refused.
    pub(super) async fn decode(
        &mut self,
        t: &mut Tracking,
        frame: &Frame,
    ) -> Result<Option<FrontendMessage>, SessionError> {
        if carries_text(frame.tag()) && !crate::lexing::reads_the_same(&frame.body()) {
            self.settle(t).await?;
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
        // What can be read of it, for the trail: the text up to the first NUL, lossy.
        let body = frame.body();
        let start = usize::from(frame.tag() == tag::PARSE)
            * body.iter().position(|&b| b == 0).map_or(0, |p| p + 1);
        let rest = body.get(start..).unwrap_or_default();
        let text = rest.split(|&b| b == 0).next().unwrap_or_default();
        ev.statement = Some(enc.decode_lossy(text).into_owned());
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

//! Answers to Gatehouse's in-batch check of the text settings (`Expect::TextCheck`, sent by
//! `relay_up::text`): the server's current `client_encoding` and
//! `standard_conforming_strings`, read from the check's row. A supported encoding is followed
//! from here on (everything after this point in the stream is in it); an unsafe value ends the
//! session before the client's text that waited for the check is sent. Nothing of the check
//! reaches the client, except its error if it failed (a failed transaction): that error stands
//! in for the one the client's own message would have got.

use super::{Down, Out};
use crate::error::SessionError;
use crate::expect::Expect;
use crate::pipeline::Inner;
use wire_pg::backend::tag;
use wire_pg::Frame;

/// ParseComplete, BindComplete, DataRow, CommandComplete, CloseComplete, CloseComplete.
const RESPONSES: [u8; 6] = [
    tag::PARSE_COMPLETE,
    tag::BIND_COMPLETE,
    tag::DATA_ROW,
    tag::COMMAND_COMPLETE,
    tag::CLOSE_COMPLETE,
    tag::CLOSE_COMPLETE,
];

impl Down {
    pub(super) fn on_text_check(
        &self,
        g: &mut Inner,
        out: &mut Out,
        frame: Frame,
    ) -> Result<(), SessionError> {
        if frame.tag() == tag::ERROR_RESPONSE {
            out.bytes.extend_from_slice(frame.raw());
            if let Some(Expect::TextCheck { reply: Some(r), .. }) = g.queue.pop_front() {
                let e = wire_pg::backend::error_fields(&frame).unwrap_or_default();
                let _ = r.send(Err(format!("{} {}", e.code, e.message)));
            }
            // As after any error in a batch: the server skips to Sync.
            g.state.rolled_back();
            super::queue::skip_to_sync(g, out);
            g.discarding = true;
            return Ok(());
        }
        let Some(Expect::TextCheck {
            seen, confirmed, ..
        }) = g.queue.front_mut()
        else {
            return Ok(());
        };
        let expected = RESPONSES.get(usize::from(*seen)).copied();
        if expected != Some(frame.tag()) {
            return super::queue::desync("an unexpected answer to Gatehouse's settings check");
        }
        *seen += 1;
        if frame.tag() == tag::DATA_ROW {
            let row = crate::catalog::text_row(&frame)?;
            let (Some(Some(encoding)), Some(Some(scs))) = (row.first(), row.get(1)) else {
                return super::queue::desync("Gatehouse's settings check without values");
            };
            for (name, value) in [
                ("client_encoding", encoding),
                ("standard_conforming_strings", scs),
            ] {
                if crate::lexing::unsafe_setting(name, value) {
                    return Err(SessionError::UnsafeSetting(format!("{name} = {value}")));
                }
            }
            if !self.view.encoding.follow(encoding) {
                return Err(SessionError::UnsafeSetting(format!(
                    "client_encoding = {encoding}"
                )));
            }
            *confirmed = true;
        }
        if usize::from(*seen) == RESPONSES.len() {
            if let Some(Expect::TextCheck {
                reply: Some(r),
                confirmed,
                ..
            }) = g.queue.pop_front()
            {
                let answer = if confirmed {
                    Ok(())
                } else {
                    Err("no values".to_owned())
                };
                let _ = r.send(answer);
            }
        }
        Ok(())
    }
}

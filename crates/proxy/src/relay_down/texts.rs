//! What the client may read of the server's texts: error and notice fields with detected
//! sensitive values (and, for a masked statement, every quoted value) withheld, and the
//! reported settings that would make the server read statements differently.

use crate::error::SessionError;
use crate::upstream::MAX_UPSTREAM_MESSAGE;
use bytes::BytesMut;
use wire_pg::backend;
use wire_pg::encoding::Encoding;
use wire_pg::{decode_frame, encode, Frame};

/// What the client is told of a setting the server reports. A setting that would make the
/// server read statements differently from Gatehouse's analysis ends the session before
/// anything else is forwarded (see `lexing`); a new `client_encoding` is followed from now
/// on; `application_name` is reported as the client set it (see `startup_params::AppName`).
pub(super) fn parameter(frame: Frame, view: &ServerView) -> Result<Frame, SessionError> {
    let (name, value) = backend::parameter_status_in(&frame, view.encoding.get())?;
    let lower = name.to_ascii_lowercase();
    if crate::lexing::watched(&name) && crate::lexing::unsafe_setting(&lower, &value) {
        return Err(SessionError::UnsafeSetting(format!("{name} = {value}")));
    }
    if lower == "client_encoding" && !view.encoding.follow(&value) {
        return Err(SessionError::UnsafeSetting(format!("{name} = {value}")));
    }
    if lower == "application_name" {
        let shown = view.app.for_client(&value);
        if shown != value {
            let mut b = BytesMut::new();
            encode::parameter_status(&mut b, &name, shown);
            return decode_frame(&mut b, MAX_UPSTREAM_MESSAGE)?
                .ok_or(SessionError::Protocol("re-encoded ParameterStatus"));
        }
    }
    Ok(frame)
}

/// What the down half reads of the server's reports, shared with the session.
#[derive(Clone, Default)]
pub struct ServerView {
    pub encoding: crate::lexing::EncodingCell,
    pub app: crate::startup_params::AppName,
}

/// The fields of an error or notice with detected sensitive values masked (and, with
/// `quotes`, every quoted value withheld), if anything changed. The fields are in the client
/// encoding `enc`; a free-text field that does not decode exactly is withheld whole, since
/// the detectors could not read it.
pub(super) fn redact_fields(
    d: &masking::Detectors,
    frame: &Frame,
    quotes: bool,
    enc: Encoding,
) -> Option<Vec<(u8, Vec<u8>)>> {
    let mut fields = backend::all_fields(frame).ok()?;
    let mut changed = false;
    for (kind, raw) in fields.iter_mut() {
        // Message, detail, hint, context: the free-text fields that can quote data.
        if !matches!(*kind, b'M' | b'D' | b'H' | b'W') {
            continue;
        }
        let Ok(text) = enc.decode(raw) else {
            *raw = format!("(text withheld: not valid {})", enc.name()).into_bytes();
            changed = true;
            continue;
        };
        let mut value = text.into_owned();
        let mut field_changed = false;
        if let Some(r) = d.redact(value.as_bytes()) {
            value = String::from_utf8_lossy(&r).into_owned();
            field_changed = true;
        }
        if quotes {
            if let Some(r) = withhold_quoted(&value) {
                value = r;
                field_changed = true;
            }
        }
        if field_changed {
            *raw = enc.encode_lossy(&value);
            changed = true;
        }
    }
    changed.then_some(fields)
}

/// `text` with the contents of every `"…"` and `'…'` replaced by `***`, if it has any.
pub(super) fn withhold_quoted(text: &str) -> Option<String> {
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

//! What the client may read of the server's texts: error and notice fields with detected
//! sensitive values (and, for a masked statement, every quoted value) withheld, and the
//! reported settings that would make the server read statements differently.

use crate::error::SessionError;
use wire_pg::backend;
use wire_pg::Frame;

/// A setting the server reports that would make it read statements differently from
/// Gatehouse's analysis ends the session before anything else is forwarded (see `lexing`).
pub(super) fn check_parameter(frame: &Frame) -> Result<(), SessionError> {
    let (name, value) = backend::parameter_status(frame)?;
    if crate::lexing::watched(&name)
        && crate::lexing::unsafe_setting(&name.to_ascii_lowercase(), &value)
    {
        return Err(SessionError::UnsafeSetting(format!("{name} = {value}")));
    }
    Ok(())
}

/// The fields of an error or notice with detected sensitive values masked (and, with
/// `quotes`, every quoted value withheld), if anything changed.
pub(super) fn redact_fields(
    d: &masking::Detectors,
    frame: &Frame,
    quotes: bool,
) -> Option<Vec<(u8, String)>> {
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

//! [`mask_record_text`]: masks fields inside a record (composite) value in text format, the
//! output of `u::text`, `ROW(u.*)` or a whole-row reference `SELECT u FROM users u`.
//!
//! Syntax, from PostgreSQL's `record_out`/`record_in` (src/backend/utils/adt/rowtypes.c):
//! `(` fields separated by `,` `)`; an empty field is NULL; a field is double-quoted when it
//! is empty or holds `"`, `\`, `(`, `)`, `,` or whitespace, and inside quotes `"` and `\` are
//! doubled. On input `\` escapes the next character inside or outside quotes, and `""` inside
//! quotes is one quote. Untouched fields are copied verbatim.

use crate::cell::mask_value;
use crate::error::MaskError;
use crate::strategy::{ColumnMask, Format};
use std::borrow::Cow;

/// Masks the record fields listed in `positions` (0-based field index, mask) as `mask_cell`
/// would in text format, and re-serialises them with `record_out` quoting; a mask giving
/// NULL leaves the field empty. Returns the input borrowed when no field changed (all listed
/// fields NULL). Syntax errors and positions past the last field are errors: the plan and
/// the value disagree, so the caller must not send the value.
pub fn mask_record_text<'a>(
    value: &'a [u8],
    positions: &[(usize, ColumnMask)],
    key: &[u8],
) -> Result<Cow<'a, [u8]>, MaskError> {
    let err = |offset, reason| MaskError::InvalidRecord { offset, reason };
    // record_in skips whitespace around the parentheses; record_out never writes any.
    let lead = value.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if value.get(lead) != Some(&b'(') {
        return Err(err(lead, "expected '('"));
    }
    let mut pos = lead + 1;
    let mut index = 0;
    let mut copied = 0;
    let mut out: Option<Vec<u8>> = None;
    loop {
        let field = parse_field(value, pos)?;
        let mask = positions.iter().find(|(i, _)| *i == index).map(|(_, m)| m);
        if let (Some(mask), Some(content)) = (mask, &field.content) {
            let masked = mask_value(mask.strategy, mask.type_class(), Format::Text, content, key)?;
            let buf = out.get_or_insert_with(|| Vec::with_capacity(value.len() + 16));
            buf.extend_from_slice(&value[copied..pos]);
            if let Some(m) = masked {
                push_quoted(buf, &m);
            }
            copied = field.end;
        }
        index += 1;
        pos = field.end + 1;
        match value.get(field.end) {
            Some(b',') => {}
            Some(b')') => break,
            _ => return Err(err(field.end, "expected ',' or ')'")),
        }
    }
    if value[pos..].iter().any(|b| !b.is_ascii_whitespace()) {
        return Err(err(pos, "characters after ')'"));
    }
    if let Some((bad, _)) = positions.iter().find(|(i, _)| *i >= index) {
        return Err(MaskError::RecordField {
            index: *bad,
            fields: index,
        });
    }
    Ok(match out {
        None => Cow::Borrowed(value),
        Some(mut buf) => {
            buf.extend_from_slice(&value[copied..]);
            Cow::Owned(buf)
        }
    })
}

/// One parsed field: its decoded bytes (`None` for NULL) and where it ends (at the `,` or
/// `)` that follows it).
struct Field {
    content: Option<Vec<u8>>,
    end: usize,
}

/// Parses the field starting at `pos`. Quoted and unquoted parts may alternate within one
/// field, as `record_in` allows.
fn parse_field(value: &[u8], mut pos: usize) -> Result<Field, MaskError> {
    let err = |offset, reason| MaskError::InvalidRecord { offset, reason };
    let start = pos;
    let mut content = Vec::new();
    let mut quoted = false;
    loop {
        let Some(&c) = value.get(pos) else {
            return Err(err(
                pos,
                if quoted {
                    "unterminated quotes"
                } else {
                    "missing ')'"
                },
            ));
        };
        match (quoted, c) {
            (false, b',' | b')') => break,
            (_, b'\\') => {
                let next = value
                    .get(pos + 1)
                    .ok_or_else(|| err(pos, "dangling '\\'"))?;
                content.push(*next);
                pos += 2;
            }
            (true, b'"') if value.get(pos + 1) == Some(&b'"') => {
                content.push(b'"');
                pos += 2;
            }
            (_, b'"') => {
                quoted = !quoted;
                pos += 1;
            }
            (_, c) => {
                content.push(c);
                pos += 1;
            }
        }
    }
    // Nothing at all between the separators is NULL; `""` is the empty string.
    let content = (pos > start).then_some(content);
    Ok(Field { content, end: pos })
}

/// Writes a field value with `record_out`'s quoting rules.
fn push_quoted(buf: &mut Vec<u8>, v: &[u8]) {
    let needs_quotes = v.is_empty()
        || v.iter().any(|&b| {
            matches!(b, b'"' | b'\\' | b'(' | b')' | b',') || b.is_ascii_whitespace() || b == 0x0b
        });
    if !needs_quotes {
        buf.extend_from_slice(v);
        return;
    }
    buf.push(b'"');
    for &b in v {
        if b == b'"' || b == b'\\' {
            buf.push(b);
        }
        buf.push(b);
    }
    buf.push(b'"');
}

//! Applying a statement's mask plan to its result rows as they stream past: the plan is bound
//! to column types and formats when RowDescription arrives (or, when the client skipped
//! Describe, with unknown types, which mask to NULL), then each DataRow with a masked column
//! is re-encoded. Rows of unmasked statements are never decoded.

use crate::mask_plan::MaskPlan;
use bytes::BytesMut;
use masking::{ColumnMask, Format};
use wire_pg::backend::{self, FieldDesc};
use wire_pg::encoding::Encoding;
use wire_pg::{encode, Frame};

/// A column's mask, and whether its values are text in the client encoding (text format,
/// or a text-like type in binary format), which masking reads as UTF-8.
struct Masked {
    at: usize,
    mask: ColumnMask,
    textual: bool,
}

/// A plan bound to the result's columns.
pub struct Bound {
    masks: Vec<Masked>,
    /// Text columns (not otherwise masked) whose values pass through the value detectors:
    /// the opt-in safety net (`[masking] detect_all_text`).
    detect: Vec<usize>,
    /// A row could not be masked: the rest of the result is withheld and the statement ends
    /// with an error.
    pub failed: bool,
}

/// Format code of column `i` given Bind's result formats (protocol: none = all text, one =
/// all columns, else one per column), falling back to RowDescription's.
fn format_of(i: usize, formats: Option<&[i16]>, fields: Option<&[FieldDesc]>) -> Format {
    let code = match formats {
        Some([]) => 0,
        Some([one]) => *one,
        Some(many) => many.get(i).copied().unwrap_or(0),
        None => fields.and_then(|f| f.get(i)).map_or(0, |f| f.format),
    };
    Format::from_code(code).unwrap_or(Format::Binary)
}

pub fn bind(plan: &MaskPlan, fields: Option<&[FieldDesc]>, formats: Option<&[i16]>) -> Bound {
    let masks = plan
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let m = m.as_ref()?;
            // Unknown type (no RowDescription seen): 0, which masks to NULL.
            let type_oid = fields.and_then(|f| f.get(i)).map_or(0, |f| f.type_oid);
            let format = format_of(i, formats, fields);
            let mask =
                ColumnMask::new(m.strategy, type_oid, format).with_tags(m.tags.iter().cloned());
            Some(Masked {
                at: i,
                mask,
                textual: textual(type_oid, format),
            })
        })
        .collect();
    Bound {
        masks,
        detect: Vec::new(),
        failed: false,
    }
}

/// Adds a mask for every column the server reports as coming from a sensitive table column
/// (RowDescription's table OID and attribute number) that the plan left unmasked.
pub fn with_origins(
    bound: Option<Bound>,
    fields: &[FieldDesc],
    formats: Option<&[i16]>,
    origins: &crate::result::Origins,
) -> Option<Bound> {
    let mut b = bound.unwrap_or(Bound {
        masks: Vec::new(),
        detect: Vec::new(),
        failed: false,
    });
    for (i, f) in fields.iter().enumerate() {
        if f.table_oid == 0 || b.masks.iter().any(|m| m.at == i) {
            continue;
        }
        if let Some(o) = origins.get(&(f.table_oid, f.column_attr)) {
            let format = format_of(i, formats, Some(fields));
            let mask =
                ColumnMask::new(o.strategy, f.type_oid, format).with_tags(o.tags.iter().cloned());
            b.masks.push(Masked {
                at: i,
                mask,
                textual: textual(f.type_oid, format),
            });
        }
    }
    (!b.masks.is_empty()).then_some(b)
}

/// Whether a value of this type in this format is text in the client encoding: every value
/// in text format, and the text-like types in binary format (their binary form is the text;
/// jsonb's after a version byte; xml's).
fn textual(type_oid: u32, format: Format) -> bool {
    format == Format::Text || matches!(type_oid, 25 | 1043 | 1042 | 19 | 114 | 3802 | 142)
}

/// Types whose value, in the given format, is plain text the detectors can read.
fn detectable(type_oid: u32, format: Format) -> bool {
    // text, varchar, bpchar, name, json; jsonb only in text format (binary has a version byte).
    matches!(type_oid, 25 | 1043 | 1042 | 19 | 114) || (type_oid == 3802 && format == Format::Text)
}

/// Adds the safety net to `bound` (or to an empty binding): every detectable column not
/// already masked is scanned. Without column types nothing can be scanned safely.
pub fn with_detection(
    bound: Option<Bound>,
    fields: Option<&[FieldDesc]>,
    formats: Option<&[i16]>,
) -> Option<Bound> {
    let Some(fields) = fields else { return bound };
    let mut b = bound.unwrap_or(Bound {
        masks: Vec::new(),
        detect: Vec::new(),
        failed: false,
    });
    b.detect = fields
        .iter()
        .enumerate()
        .filter(|(i, f)| {
            !b.masks.iter().any(|m| m.at == *i)
                && detectable(f.type_oid, format_of(*i, formats, Some(fields)))
        })
        .map(|(i, _)| i)
        .collect();
    (!b.masks.is_empty() || !b.detect.is_empty()).then_some(b)
}

/// Applies `f`, which reads and writes UTF-8, to a value in client encoding `enc`.
fn in_utf8(
    enc: Encoding,
    value: &[u8],
    f: impl FnOnce(&[u8]) -> Result<Option<Vec<u8>>, String>,
) -> Result<Option<Vec<u8>>, String> {
    if enc.is_utf8() || value.is_ascii() {
        return f(value);
    }
    // A value that does not decode cannot be masked: the row is withheld (fail closed).
    let text = enc
        .decode(value)
        .map_err(|_| format!("a value is not valid {}", enc.name()))?;
    let Some(out) = f(text.as_bytes())? else {
        return Ok(None);
    };
    let out = String::from_utf8(out).map_err(|_| "a masked value is not text".to_owned())?;
    enc.encode(&out)
        .map(|b| Some(b.into_owned()))
        .map_err(|_| format!("a masked value cannot be written in {}", enc.name()))
}

/// Re-encodes `frame` (a DataRow) with masked cells into `out`; text values are in client
/// encoding `enc`.
pub fn rewrite(
    bound: &Bound,
    frame: &Frame,
    key: &[u8],
    detectors: Option<&masking::Detectors>,
    enc: Encoding,
    out: &mut BytesMut,
) -> Result<(), String> {
    let body = frame.body();
    let mut cells = backend::data_row_slices(&body).map_err(|e| e.to_string())?;
    // Masked values live here; `cells` then points at them.
    let mut masked: Vec<(usize, Option<Vec<u8>>)> = Vec::with_capacity(bound.masks.len());
    for m in &bound.masks {
        if let Some(Some(value)) = cells.get(m.at) {
            let apply = |v: &[u8]| masking::mask_cell(&m.mask, v, key).map_err(|e| e.to_string());
            let r = if m.textual {
                in_utf8(enc, value, apply)?
            } else {
                apply(value)?
            };
            masked.push((m.at, r));
        }
    }
    if let Some(d) = detectors {
        for i in &bound.detect {
            if let Some(Some(value)) = cells.get(*i) {
                // Bytes that are not UTF-8 in a UTF-8 session (the server switched encodings
                // in the middle of a query string, before reporting it): the detectors could
                // not read them, so the row is withheld rather than passed on unread.
                if enc.is_utf8() && std::str::from_utf8(value).is_err() {
                    return Err("a value is not valid UTF8".to_owned());
                }
                if let Some(r) = in_utf8(enc, value, |v| Ok(d.redact(v)))? {
                    masked.push((*i, Some(r)));
                }
            }
        }
    }
    for (i, m) in &masked {
        if let Some(cell) = cells.get_mut(*i) {
            *cell = m.as_deref();
        }
    }
    encode::data_row(out, cells.into_iter());
    Ok(())
}

/// A plan for the rows of `COPY … TO STDOUT` in the default text format: every masked
/// column is text there, whatever its type.
pub fn bind_copy(plan: &MaskPlan) -> Bound {
    let masks = plan
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, m)| {
            let m = m.as_ref()?;
            Some(Masked {
                at: i,
                mask: ColumnMask::new(m.strategy, 25, Format::Text)
                    .with_tags(m.tags.iter().cloned()),
                textual: true,
            })
        })
        .collect();
    Bound {
        masks,
        detect: Vec::new(),
        failed: false,
    }
}

/// Re-encodes a CopyData message holding one text-format row (tab-separated fields, `\N`
/// for NULL, backslash escapes, ending in a newline; in client encoding `enc`) with its
/// masked fields replaced.
pub fn rewrite_copy(
    bound: &Bound,
    frame: &Frame,
    key: &[u8],
    enc: Encoding,
    out: &mut BytesMut,
) -> Result<(), String> {
    let body = frame.body();
    let line = body
        .strip_suffix(b"\n")
        .ok_or("COPY data is not one whole row")?;
    let mut row = Vec::with_capacity(body.len());
    for (i, field) in line.split(|&b| b == b'\t').enumerate() {
        if i > 0 {
            row.push(b'\t');
        }
        match bound.masks.iter().find(|m| m.at == i) {
            Some(m) if field != b"\\N" => {
                let value = unescape(field);
                let apply =
                    |v: &[u8]| masking::mask_cell(&m.mask, v, key).map_err(|e| e.to_string());
                match in_utf8(enc, &value, apply)? {
                    Some(m) => escape(&m, &mut row),
                    None => row.extend_from_slice(b"\\N"),
                }
            }
            _ => row.extend_from_slice(field),
        }
    }
    row.push(b'\n');
    encode::copy_data(out, &row);
    Ok(())
}

/// COPY text-format escapes (PostgreSQL docs, COPY "Text Format").
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut it = field.iter().copied();
    while let Some(b) = it.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        match it.next() {
            Some(b't') => out.push(b'\t'),
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b'b') => out.push(8),
            Some(b'f') => out.push(12),
            Some(b'v') => out.push(11),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn escape(value: &[u8], out: &mut Vec<u8>) {
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            _ => out.push(b),
        }
    }
}

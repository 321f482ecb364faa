//! Applying a statement's mask plan to its result rows as they stream past: the plan is bound
//! to column types and formats when RowDescription arrives (or, when the client skipped
//! Describe, with unknown types, which mask to NULL), then each DataRow with a masked column
//! is re-encoded. Rows of unmasked statements are never decoded.

use crate::mask_plan::MaskPlan;
use bytes::BytesMut;
use masking::{ColumnMask, Format};
use wire_pg::backend::{self, FieldDesc};
use wire_pg::{encode, Frame};

/// A plan bound to the result's columns.
pub struct Bound {
    masks: Vec<(usize, ColumnMask)>,
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
            let mask = ColumnMask::new(m.strategy, type_oid, format_of(i, formats, fields))
                .with_tags(m.tags.iter().cloned());
            Some((i, mask))
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
        if f.table_oid == 0 || b.masks.iter().any(|(m, _)| *m == i) {
            continue;
        }
        if let Some(o) = origins.get(&(f.table_oid, f.column_attr)) {
            let mask = ColumnMask::new(o.strategy, f.type_oid, format_of(i, formats, Some(fields)))
                .with_tags(o.tags.iter().cloned());
            b.masks.push((i, mask));
        }
    }
    (!b.masks.is_empty()).then_some(b)
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
            !b.masks.iter().any(|(m, _)| m == i)
                && detectable(f.type_oid, format_of(*i, formats, Some(fields)))
        })
        .map(|(i, _)| i)
        .collect();
    (!b.masks.is_empty() || !b.detect.is_empty()).then_some(b)
}

/// Re-encodes `frame` (a DataRow) with masked cells into `out`.
pub fn rewrite(
    bound: &Bound,
    frame: &Frame,
    key: &[u8],
    detectors: Option<&masking::Detectors>,
    out: &mut BytesMut,
) -> Result<(), String> {
    let body = frame.body();
    let mut cells = backend::data_row_slices(&body).map_err(|e| e.to_string())?;
    // Masked values live here; `cells` then points at them.
    let mut masked: Vec<(usize, Option<Vec<u8>>)> = Vec::with_capacity(bound.masks.len());
    for (i, mask) in &bound.masks {
        if let Some(Some(value)) = cells.get(*i) {
            masked.push((
                *i,
                masking::mask_cell(mask, value, key).map_err(|e| e.to_string())?,
            ));
        }
    }
    if let Some(d) = detectors {
        for i in &bound.detect {
            if let Some(Some(value)) = cells.get(*i) {
                if let Some(r) = d.redact(value) {
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
            Some((
                i,
                ColumnMask::new(m.strategy, 25, Format::Text).with_tags(m.tags.iter().cloned()),
            ))
        })
        .collect();
    Bound {
        masks,
        detect: Vec::new(),
        failed: false,
    }
}

/// Re-encodes a CopyData message holding one text-format row (tab-separated fields, `\N`
/// for NULL, backslash escapes, ending in a newline) with its masked fields replaced.
pub fn rewrite_copy(
    bound: &Bound,
    frame: &Frame,
    key: &[u8],
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
        match bound.masks.iter().find(|(at, _)| *at == i) {
            Some((_, mask)) if field != b"\\N" => {
                let value = unescape(field);
                match masking::mask_cell(mask, &value, key).map_err(|e| e.to_string())? {
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

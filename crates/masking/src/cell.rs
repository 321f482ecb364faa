//! [`mask_cell`]: one cell in, its replacement out, valid for the column's type and format.
//! The per-type rules are the table in the crate documentation; this file is that table.

use crate::error::MaskError;
use crate::hash::{decode_hex, hex16, mac, push_hex};
use crate::strategy::{ColumnMask, Format, Strategy};
use crate::text::{self, FULL};
use crate::types::TypeClass;

/// The nil uuid in text form, the constant for uuid columns.
const NIL_UUID: &[u8] = b"00000000-0000-0000-0000-000000000000";

/// Masks one non-NULL cell (`value` is the cell's bytes as they arrived in DataRow) and
/// returns its replacement; `Ok(None)` means send SQL NULL. `key` keys the hash strategy.
///
/// The caller never calls this for columns outside the mask plan, and NULL cells need no
/// masking; only cells that are masked allocate.
pub fn mask_cell(
    mask: &ColumnMask,
    value: &[u8],
    key: &[u8],
) -> Result<Option<Vec<u8>>, MaskError> {
    mask_value(mask.strategy, mask.type_class(), mask.format, value, key)
}

/// [`mask_cell`] on its parts, so whole-row masking can mask embedded fields in text format
/// without building a `ColumnMask`.
pub(crate) fn mask_value(
    strategy: Strategy,
    class: TypeClass,
    format: Format,
    value: &[u8],
    key: &[u8],
) -> Result<Option<Vec<u8>>, MaskError> {
    if strategy == Strategy::Null {
        return Ok(None);
    }
    let hash = strategy == Strategy::Hash;
    let out = match class {
        TypeClass::Text if hash => hex16(key, value)?,
        // Text types send the same bytes in text and binary format.
        TypeClass::Text => text::mask(strategy, value),
        TypeClass::Int2 | TypeClass::Int4 | TypeClass::Int8 => {
            let n = if hash {
                hashed_int(class, format, value, key)?
            } else {
                0
            };
            encode_int(class, format, n)
        }
        TypeClass::Float4 | TypeClass::Float8 | TypeClass::Numeric if hash => return Ok(None),
        TypeClass::Float4 | TypeClass::Float8 | TypeClass::Numeric => zero(class, format),
        TypeClass::Uuid if hash => hashed_uuid(format, value, key)?,
        TypeClass::Uuid => match format {
            Format::Text => NIL_UUID.to_vec(),
            Format::Binary => vec![0; 16],
        },
        TypeClass::Bytea if hash => hashed_bytea(format, value, key)?,
        TypeClass::Bytea => match format {
            Format::Text => b"\\x".to_vec(),
            Format::Binary => Vec::new(),
        },
        TypeClass::Json | TypeClass::Jsonb => json_string(class, format, value, key, hash)?,
        TypeClass::NullOnly => return Ok(None),
    };
    Ok(Some(out))
}

fn bad(class: TypeClass, format: Format) -> MaskError {
    MaskError::BadValue {
        type_name: class.name(),
        format: format.name(),
    }
}

/// Decodes an integer cell so that text `42` and binary `00 00 00 2a` hash alike.
fn decode_int(class: TypeClass, format: Format, value: &[u8]) -> Result<i64, MaskError> {
    let err = || bad(class, format);
    match format {
        Format::Text => std::str::from_utf8(value)
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .ok_or_else(err),
        Format::Binary => match (class, value.len()) {
            (TypeClass::Int2, 2) => {
                let b: [u8; 2] = value.try_into().map_err(|_| err())?;
                Ok(i64::from(i16::from_be_bytes(b)))
            }
            (TypeClass::Int4, 4) => {
                let b: [u8; 4] = value.try_into().map_err(|_| err())?;
                Ok(i64::from(i32::from_be_bytes(b)))
            }
            (TypeClass::Int8, 8) => {
                let b: [u8; 8] = value.try_into().map_err(|_| err())?;
                Ok(i64::from_be_bytes(b))
            }
            _ => Err(err()),
        },
    }
}

/// A deterministic integer of the column's width from the MAC of the value's decimal text.
/// Narrow types collide more (int2 has 65,536 values), which only merges groups, never leaks.
fn hashed_int(
    class: TypeClass,
    format: Format,
    value: &[u8],
    key: &[u8],
) -> Result<i64, MaskError> {
    let n = decode_int(class, format, value)?;
    let m = mac(key, n.to_string().as_bytes())?;
    let mut first = [0u8; 8];
    first.copy_from_slice(&m[..8]);
    let h = i64::from_be_bytes(first);
    // Truncation to the column's width is the point: the result must fit the type.
    Ok(match class {
        TypeClass::Int2 => i64::from(h as i16),
        TypeClass::Int4 => i64::from(h as i32),
        _ => h,
    })
}

fn encode_int(class: TypeClass, format: Format, n: i64) -> Vec<u8> {
    match format {
        Format::Text => n.to_string().into_bytes(),
        Format::Binary => {
            let b = n.to_be_bytes();
            let width = match class {
                TypeClass::Int2 => 2,
                TypeClass::Int4 => 4,
                _ => 8,
            };
            b[8 - width..].to_vec()
        }
    }
}

/// Zero in the type's format. Binary numeric zero is ndigits=0, weight=0, sign=positive,
/// dscale=0: four big-endian u16 zeros (PostgreSQL `numeric_send`).
fn zero(class: TypeClass, format: Format) -> Vec<u8> {
    match (format, class) {
        (Format::Text, _) => b"0".to_vec(),
        (Format::Binary, TypeClass::Float4) => vec![0; 4],
        (Format::Binary, _) => vec![0; 8],
    }
}

/// A uuid derived from the MAC of the uuid's 16 bytes (text input is normalised to bytes).
fn hashed_uuid(format: Format, value: &[u8], key: &[u8]) -> Result<Vec<u8>, MaskError> {
    let err = || bad(TypeClass::Uuid, format);
    let raw = match format {
        Format::Binary if value.len() == 16 => value.to_vec(),
        Format::Binary => return Err(err()),
        Format::Text => {
            let hex: Vec<u8> = value.iter().copied().filter(|&b| b != b'-').collect();
            decode_hex(&hex).filter(|b| b.len() == 16).ok_or_else(err)?
        }
    };
    let m = mac(key, &raw)?;
    let id = &m[..16];
    Ok(match format {
        Format::Binary => id.to_vec(),
        Format::Text => {
            let mut out = Vec::with_capacity(36);
            for (i, chunk) in [&id[..4], &id[4..6], &id[6..8], &id[8..10], &id[10..]]
                .into_iter()
                .enumerate()
            {
                if i > 0 {
                    out.push(b'-');
                }
                push_hex(&mut out, chunk);
            }
            out
        }
    })
}

/// 8 MAC bytes of the bytea's raw bytes. Text input in hex format (`\x…`, the default
/// `bytea_output`) is decoded first; the legacy escape format is hashed as sent.
fn hashed_bytea(format: Format, value: &[u8], key: &[u8]) -> Result<Vec<u8>, MaskError> {
    let raw = match (format, value.strip_prefix(b"\\x")) {
        (Format::Text, Some(hex)) => {
            decode_hex(hex).ok_or_else(|| bad(TypeClass::Bytea, format))?
        }
        _ => value.to_vec(),
    };
    let m = mac(key, &raw)?;
    Ok(match format {
        Format::Binary => m[..8].to_vec(),
        Format::Text => {
            let mut out = b"\\x".to_vec();
            push_hex(&mut out, &m[..8]);
            out
        }
    })
}

/// A json/jsonb cell masked whole: a JSON string holding the stars or the hash, so the value
/// is still valid JSON. jsonb binary is version byte 1 followed by the text
/// (PostgreSQL `jsonb_send`); the hash ignores the version byte so formats agree.
fn json_string(
    class: TypeClass,
    format: Format,
    value: &[u8],
    key: &[u8],
    hash: bool,
) -> Result<Vec<u8>, MaskError> {
    let binary_jsonb = class == TypeClass::Jsonb && format == Format::Binary;
    let body = match (binary_jsonb, value.split_first()) {
        (true, Some((1, rest))) => rest,
        (true, Some((v, _))) => return Err(MaskError::JsonbVersion(*v)),
        (true, None) => return Err(bad(class, format)),
        (false, _) => value,
    };
    let mut out = Vec::with_capacity(20);
    if binary_jsonb {
        out.push(1);
    }
    out.push(b'"');
    if hash {
        out.extend_from_slice(&hex16(key, body)?);
    } else {
        out.extend_from_slice(FULL);
    }
    out.push(b'"');
    Ok(out)
}

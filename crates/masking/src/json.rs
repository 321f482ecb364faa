//! [`mask_json`]: masks listed keys inside a json/jsonb value (`row_to_json(u)`,
//! `to_jsonb(u)`, `json_agg(u)`), at any depth, without reformatting anything else.
//!
//! A small validating scanner walks the text once and copies untouched bytes verbatim, so
//! key order and whitespace survive (json keeps them; reserialising through a map would
//! not), and a value with no listed key is returned borrowed. Nesting is bounded by
//! [`MAX_DEPTH`] so hostile input cannot exhaust the stack.

use crate::cell::mask_value;
use crate::error::MaskError;
use crate::hash::hex16;
use crate::strategy::{ColumnMask, Format, Strategy};
use crate::types::TypeClass;
use std::borrow::Cow;

/// Deepest nesting accepted; deeper values are an error (the caller fails closed).
pub const MAX_DEPTH: usize = 128;

/// Masks every value whose key is listed in `fields`, in every object of `value` (nested
/// objects and arrays of objects included). A listed key's value is masked whole, as
/// `mask_cell` would mask that column in text format, then re-encoded as JSON: strings stay
/// strings, masked numbers stay numbers, NULL becomes `null`; an object or array under a
/// listed key becomes `null`, the hash of its text, or `"********"`.
///
/// `format` is the column's result format: jsonb binary is a version byte (1) and the JSON
/// text; json binary is the bare text. Keys match exactly and everywhere, so a same-named key
/// of another object is masked too (over-masking, never under-masking). Returns the input
/// borrowed when nothing was masked; invalid JSON is [`MaskError::InvalidJson`].
pub fn mask_json<'a>(
    value: &'a [u8],
    format: Format,
    fields: &[(String, ColumnMask)],
    key: &[u8],
) -> Result<Cow<'a, [u8]>, MaskError> {
    // json in binary format is its text; jsonb carries the version byte (jsonb_send).
    let (prefix, body) = match (format, value.split_first()) {
        (Format::Binary, Some((1, rest))) => (Some(1u8), rest),
        // Binary json (not jsonb) is bare text, which never starts with a control byte.
        (Format::Binary, Some((v @ 0..=8, _))) => return Err(MaskError::JsonbVersion(*v)),
        _ => (None, value),
    };
    if std::str::from_utf8(body).is_err() {
        return Err(MaskError::InvalidJson {
            offset: 0,
            reason: "not UTF-8",
        });
    }
    let mut w = Rewriter {
        src: body,
        pos: 0,
        copied: 0,
        out: None,
        fields,
        key,
    };
    w.ws();
    w.value(0, true)?;
    w.ws();
    if w.pos != body.len() {
        return Err(w.err("trailing characters"));
    }
    let Some(mut out) = w.out else {
        return Ok(Cow::Borrowed(value));
    };
    out.extend_from_slice(&body[w.copied..]);
    if let Some(p) = prefix {
        out.insert(0, p);
    }
    Ok(Cow::Owned(out))
}

struct Rewriter<'a> {
    src: &'a [u8],
    pos: usize,
    /// `src[..copied]` has been written to `out` (or needs no copy while `out` is `None`).
    copied: usize,
    /// Allocated at the first replacement only.
    out: Option<Vec<u8>>,
    fields: &'a [(String, ColumnMask)],
    key: &'a [u8],
}

impl<'a> Rewriter<'a> {
    fn err(&self, reason: &'static str) -> MaskError {
        MaskError::InvalidJson {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, reason: &'static str) -> Result<(), MaskError> {
        if self.peek() != Some(b) {
            return Err(self.err(reason));
        }
        self.pos += 1;
        Ok(())
    }

    /// Parses one value. With `rewrite` off (inside a value being replaced) it only validates.
    fn value(&mut self, depth: usize, rewrite: bool) -> Result<(), MaskError> {
        if depth > MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        match self.peek() {
            Some(b'{') => self.object(depth, rewrite),
            Some(b'[') => self.array(depth, rewrite),
            Some(b'"') => self.string().map(|_| ()),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            _ => Err(self.err("expected a value")),
        }
    }

    fn object(&mut self, depth: usize, rewrite: bool) -> Result<(), MaskError> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            let (ks, ke) = self.string()?;
            let mask = if rewrite { self.lookup(ks, ke)? } else { None };
            self.ws();
            self.expect(b':', "expected ':'")?;
            self.ws();
            let start = self.pos;
            self.value(depth + 1, rewrite && mask.is_none())?;
            if let Some(mask) = mask {
                self.replace(start, self.pos, mask)?;
            }
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or '}'")),
            }
        }
    }

    fn array(&mut self, depth: usize, rewrite: bool) -> Result<(), MaskError> {
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.ws();
            self.value(depth + 1, rewrite)?;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.err("expected ',' or ']'")),
            }
        }
    }

    /// Validates a string token and returns its span, quotes included.
    fn string(&mut self) -> Result<(usize, usize), MaskError> {
        let start = self.pos;
        self.expect(b'"', "expected a string")?;
        loop {
            match self.peek() {
                None => return Err(self.err("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok((start, self.pos));
                }
                Some(b'\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = self.src.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.err("bad \\u escape"));
                            }
                            self.pos += 5;
                        }
                        _ => return Err(self.err("bad escape")),
                    }
                }
                Some(c) if c < 0x20 => return Err(self.err("control character in string")),
                Some(_) => self.pos += 1,
            }
        }
    }

    fn number(&mut self) -> Result<(), MaskError> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.err("bad number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.require_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.require_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    fn require_digits(&mut self) -> Result<(), MaskError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            return Err(self.err("bad number"));
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), MaskError> {
        if !self.src[self.pos..].starts_with(word) {
            return Err(self.err("bad literal"));
        }
        self.pos += word.len();
        Ok(())
    }

    /// The mask for the key spanning `src[ks..ke]` (quotes included), if it is listed.
    fn lookup(&self, ks: usize, ke: usize) -> Result<Option<&'a ColumnMask>, MaskError> {
        let raw = &self.src[ks..ke];
        let decoded = unescape(raw, ks)?;
        let fields: &'a [(String, ColumnMask)] = self.fields;
        Ok(fields
            .iter()
            .find(|(name, _)| name.as_bytes() == decoded.as_ref())
            .map(|(_, m)| m))
    }

    /// Replaces `src[start..end]`, a listed key's value, with its masked form.
    fn replace(&mut self, start: usize, end: usize, mask: &ColumnMask) -> Result<(), MaskError> {
        let raw = &self.src[start..end];
        if raw == b"null" {
            return Ok(()); // nothing to hide
        }
        let replacement = masked_json(raw, start, mask, self.key)?;
        let out = self
            .out
            .get_or_insert_with(|| Vec::with_capacity(self.src.len()));
        out.extend_from_slice(&self.src[self.copied..start]);
        out.extend_from_slice(&replacement);
        self.copied = end;
        Ok(())
    }
}

/// The content of a string token (quotes included); borrowed unless it has escapes.
fn unescape(raw: &[u8], offset: usize) -> Result<Cow<'_, [u8]>, MaskError> {
    let inner = raw.get(1..raw.len().saturating_sub(1)).unwrap_or_default();
    if !inner.contains(&b'\\') {
        return Ok(Cow::Borrowed(inner));
    }
    serde_json::from_slice::<String>(raw)
        .map(|s| Cow::Owned(s.into_bytes()))
        .map_err(|_| MaskError::InvalidJson {
            offset,
            reason: "bad string",
        })
}

/// The JSON text replacing one listed value (`raw` is its token, already validated).
fn masked_json(
    raw: &[u8],
    offset: usize,
    mask: &ColumnMask,
    key: &[u8],
) -> Result<Vec<u8>, MaskError> {
    let class = mask.type_class();
    let masked = match raw.first() {
        // A nested object or array cannot carry a partial mask: it becomes a JSON string
        // (stars or the hash of its text) or null.
        Some(b'{' | b'[') => {
            let inner = match mask.strategy {
                Strategy::Null => return Ok(b"null".to_vec()),
                Strategy::Hash => hex16(key, raw)?,
                _ => crate::text::FULL.to_vec(),
            };
            let mut out = Vec::with_capacity(inner.len() + 2);
            out.push(b'"');
            out.extend_from_slice(&inner);
            out.push(b'"');
            return Ok(out);
        }
        Some(b'"') => {
            let text = unescape(raw, offset)?;
            mask_value(mask.strategy, class, Format::Text, &text, key)?
        }
        // Numbers and booleans: their JSON text is also their PostgreSQL text form.
        _ => mask_value(mask.strategy, class, Format::Text, raw, key)?,
    };
    let Some(masked) = masked else {
        return Ok(b"null".to_vec());
    };
    // Our masks of numeric types are plain decimal numbers, and json/jsonb masks are JSON
    // strings already: both embed as they are.
    if class.is_number() || matches!(class, TypeClass::Json | TypeClass::Jsonb) {
        return Ok(masked);
    }
    let text = String::from_utf8(masked).map_err(|_| MaskError::InvalidJson {
        offset,
        reason: "masked value is not UTF-8",
    })?;
    serde_json::to_vec(&text).map_err(|_| MaskError::InvalidJson {
        offset,
        reason: "cannot encode masked value",
    })
}

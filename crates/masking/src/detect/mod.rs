//! Value detectors: find sensitive values by their shape in arbitrary text, as a backstop
//! for columns whose lineage touches a sensitive column through an expression, and as an
//! optional safety net on every text column.
//!
//! Three passes over the text, each linear: one `RegexSet` pass tells which regex kinds
//! occur at all (usually none, and then no other regex runs); one Aho-Corasick pass finds
//! fixed markers (PEM `-----BEGIN `, `AKIA`/`ASIA`, the `eyJ` that starts every JWT) and
//! validates from each; one byte pass finds long tokens for the entropy check. Candidates
//! are then validated (Luhn, mod 97, SSN ranges, JWT header) and overlaps resolved by kind
//! priority, so a card number inside a JWT is reported once, as the JWT.
//!
//! Not owned here: deciding which columns to scan (the caller), masking typed cells
//! (`mask_cell`).

mod entropy;
mod markers;
mod patterns;
#[cfg(test)]
mod tests;

pub use entropy::{
    MAX_WORD_FRACTION as SECRET_MAX_WORD_FRACTION, MIN_BITS_PER_CHAR as SECRET_MIN_BITS_PER_CHAR,
    MIN_TOKEN_LEN as SECRET_MIN_LEN,
};

use crate::error::MaskError;
use crate::text;
use std::collections::BTreeMap;
use std::fmt;

/// What a detection found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DetectorKind {
    Email,
    /// E.164 (`+44 20 7946 0958`, `+14155550123`) and separated North-American numbers.
    Phone,
    /// `AAA-GG-SSSS` with a valid area, group and serial.
    UsSsn,
    /// 13–19 digits, optionally grouped by spaces or dashes, passing Luhn.
    CardNumber,
    /// An IBAN whose check digits verify (ISO 13616 mod 97).
    Iban,
    /// `AKIA`/`ASIA` and 16 uppercase alphanumerics.
    AwsAccessKey,
    /// Three (or five, JWE) base64url segments whose header is JSON with `alg`.
    Jwt,
    /// A PEM `-----BEGIN … PRIVATE KEY-----` block (to the end of the text if unterminated).
    PrivateKey,
    /// A long token of mixed character classes with high Shannon entropy.
    HighEntropySecret,
}

impl DetectorKind {
    /// A stable lower-case name, for audit records and configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            DetectorKind::Email => "email",
            DetectorKind::Phone => "phone",
            DetectorKind::UsSsn => "us_ssn",
            DetectorKind::CardNumber => "card_number",
            DetectorKind::Iban => "iban",
            DetectorKind::AwsAccessKey => "aws_access_key",
            DetectorKind::Jwt => "jwt",
            DetectorKind::PrivateKey => "private_key",
            DetectorKind::HighEntropySecret => "secret",
        }
    }

    /// Which kind wins when two detections overlap: the more specific, validated and more
    /// damaging one (a private key contains high-entropy runs; a JWT may contain digits).
    fn priority(self) -> u8 {
        match self {
            DetectorKind::PrivateKey => 9,
            DetectorKind::Jwt => 8,
            DetectorKind::AwsAccessKey => 7,
            DetectorKind::CardNumber => 6,
            DetectorKind::Iban => 5,
            DetectorKind::UsSsn => 4,
            DetectorKind::Email => 3,
            DetectorKind::Phone => 2,
            DetectorKind::HighEntropySecret => 1,
        }
    }
}

impl fmt::Display for DetectorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding: `text[start..end]` is a value of `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Detection {
    pub kind: DetectorKind,
    pub start: usize,
    pub end: usize,
}

/// The compiled detectors. Build once (compiling the patterns takes milliseconds) and share;
/// scanning takes `&self` and is safe from many threads.
#[derive(Debug)]
pub struct Detectors {
    patterns: patterns::RegexDetectors,
    markers: markers::Markers,
}

impl Detectors {
    /// Compiles every detector. Errors only if a built-in pattern is broken.
    pub fn new() -> Result<Self, MaskError> {
        Ok(Detectors {
            patterns: patterns::RegexDetectors::new()?,
            markers: markers::Markers::new()?,
        })
    }

    /// All detections in `text`, ordered by start and never overlapping.
    pub fn scan(&self, text: &[u8]) -> Vec<Detection> {
        let mut found = Vec::new();
        self.patterns.scan(text, &mut found);
        self.markers.scan(text, &mut found);
        entropy::scan(text, &mut found);
        resolve_overlaps(found)
    }

    /// `text` with every detection replaced by a kind-specific mask (partial for emails,
    /// phones, SSNs and cards, a `[kind]` label otherwise); `None` when nothing was found.
    pub fn redact(&self, text: &[u8]) -> Option<Vec<u8>> {
        let found = self.scan(text);
        if found.is_empty() {
            return None;
        }
        // Spans are sorted and disjoint by construction; were they ever not, the whole text
        // is withheld rather than some of it sent through.
        Some(splice(text, &found).unwrap_or_else(|| b"[redacted]".to_vec()))
    }
}

/// `text` with each detection replaced, or `None` if a span is out of order or bounds.
fn splice(text: &[u8], found: &[Detection]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut last = 0;
    for d in found {
        out.extend_from_slice(text.get(last..d.start)?);
        out.extend_from_slice(&replacement(d.kind, text.get(d.start..d.end)?));
        last = d.end;
    }
    out.extend_from_slice(text.get(last..)?);
    Some(out)
}

/// Keeps, among overlapping candidates, the highest-priority (then longest, then first) one.
fn resolve_overlaps(mut found: Vec<Detection>) -> Vec<Detection> {
    if found.len() < 2 {
        return found;
    }
    found.sort_by(|a, b| {
        (b.kind.priority(), b.end - b.start, a.start).cmp(&(
            a.kind.priority(),
            a.end - a.start,
            b.start,
        ))
    });
    // Accepted spans never overlap, so the accepted span with the greatest start before a
    // candidate's end is the only one that can overlap it.
    let mut accepted: BTreeMap<usize, Detection> = BTreeMap::new();
    for d in found {
        let clash = accepted
            .range(..d.end)
            .next_back()
            .is_some_and(|(_, prev)| prev.end > d.start);
        if !clash {
            accepted.insert(d.start, d);
        }
    }
    accepted.into_values().collect()
}

/// The masked form of one detected value.
fn replacement(kind: DetectorKind, value: &[u8]) -> Vec<u8> {
    let s = std::str::from_utf8(value).ok();
    let partial = match kind {
        DetectorKind::Email => s.and_then(text::email),
        DetectorKind::Phone | DetectorKind::UsSsn | DetectorKind::CardNumber => {
            s.and_then(|s| text::digits_keep_last4(s, 8))
        }
        _ => None,
    };
    partial.unwrap_or_else(|| format!("[{}]", kind.as_str()).into_bytes())
}

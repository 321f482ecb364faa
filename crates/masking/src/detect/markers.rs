//! Detectors anchored on fixed markers, found in one Aho-Corasick pass: PEM private keys
//! (`-----BEGIN … PRIVATE KEY-----`), AWS access key ids (`AKIA`/`ASIA`) and JWTs (every
//! JWT header is base64url of `{"`, which encodes as `eyJ`). Each marker is validated by a
//! bounded look at the bytes after it, and markers inside a longer token are rejected at
//! once, so the whole scan stays linear even on hostile input.

use super::{Detection, DetectorKind};
use crate::error::MaskError;
use aho_corasick::AhoCorasick;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

const BEGIN: &[u8] = b"-----BEGIN ";
const END: &[u8] = b"-----END ";
/// Marker list; the index of each is matched in [`Markers::scan`].
const MARKERS: [&[u8]; 5] = [BEGIN, END, b"AKIA", b"ASIA", b"eyJ"];
/// PEM labels are short (`ENCRYPTED PRIVATE KEY`, `OPENSSH PRIVATE KEY`).
const MAX_LABEL: usize = 64;
/// Real JWT headers are a few hundred bytes; a longer one is not worth decoding.
const MAX_JWT_HEADER: usize = 4096;

#[derive(Debug)]
pub(super) struct Markers {
    ac: AhoCorasick,
}

impl Markers {
    pub(super) fn new() -> Result<Self, MaskError> {
        let ac = AhoCorasick::new(MARKERS).map_err(|e| MaskError::Pattern(e.to_string()))?;
        Ok(Markers { ac })
    }

    pub(super) fn scan(&self, text: &[u8], out: &mut Vec<Detection>) {
        let mut begins = Vec::new();
        let mut ends = Vec::new();
        for m in self.ac.find_iter(text) {
            let s = m.start();
            let found = match m.pattern().as_usize() {
                0 => {
                    begins.push(s);
                    None
                }
                1 => {
                    ends.push(s);
                    None
                }
                2 | 3 => aws_key(text, s).map(|e| (DetectorKind::AwsAccessKey, e)),
                _ => jwt(text, s).map(|e| (DetectorKind::Jwt, e)),
            };
            if let Some((kind, end)) = found {
                out.push(Detection {
                    kind,
                    start: s,
                    end,
                });
            }
        }
        for b in begins {
            if let Some(end) = private_key(text, b, &ends) {
                out.push(Detection {
                    kind: DetectorKind::PrivateKey,
                    start: b,
                    end,
                });
            }
        }
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// End of the run of bytes satisfying `f` from `from`.
fn run_end(text: &[u8], from: usize, f: impl Fn(u8) -> bool) -> usize {
    from + text
        .get(from..)
        .map_or(0, |t| t.iter().take_while(|&&b| f(b)).count())
}

/// `AKIA`/`ASIA` + 16 of `[A-Z0-9]`, standing alone (not inside a longer token).
fn aws_key(text: &[u8], s: usize) -> Option<usize> {
    let alnum = |i: usize| text.get(i).is_some_and(u8::is_ascii_alphanumeric);
    if s > 0 && alnum(s - 1) {
        return None;
    }
    let key = text.get(s..s + 20)?;
    let ok = key
        .iter()
        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    (ok && !alnum(s + 20)).then_some(s + 20)
}

/// A JWS (3 segments) or JWE (5 segments) compact token starting at `s`: base64url segments
/// joined by `.`, the header decoding to a JSON object with `alg`. The last JWS segment (the
/// signature) may be empty: an unsigned token still carries its claims.
fn jwt(text: &[u8], s: usize) -> Option<usize> {
    if s > 0 && text.get(s - 1).is_some_and(|&b| is_b64url(b) || b == b'.') {
        return None; // inside a longer token; that token's own start was checked
    }
    let header_end = run_end(text, s, is_b64url);
    let mut end = header_end;
    let mut segments = 1;
    while segments < 5 && text.get(end) == Some(&b'.') {
        let seg_end = run_end(text, end + 1, is_b64url);
        // Only the third segment (the JWS signature) may be empty; an empty segment anywhere
        // else is the end of a sentence, not part of the token.
        if seg_end == end + 1 && segments != 2 {
            break;
        }
        end = seg_end;
        segments += 1;
    }
    if segments < 3 || header_end - s > MAX_JWT_HEADER {
        return None;
    }
    let header = URL_SAFE_NO_PAD.decode(text.get(s..header_end)?).ok()?;
    let json: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&header).ok()?;
    json.contains_key("alg").then_some(end)
}

/// A PEM private-key block from the BEGIN line at `s` through the matching END line, or to
/// the end of the text when it is cut off (a truncated key is still a secret).
fn private_key(text: &[u8], s: usize, ends: &[usize]) -> Option<usize> {
    let label_start = s + BEGIN.len();
    let header_end = pem_label_end(text, label_start)?;
    let label = text.get(label_start..header_end)?;
    if !label.windows(11).any(|w| w == b"PRIVATE KEY") {
        return None;
    }
    let after = header_end + 5;
    let Some(&e) = ends.get(ends.partition_point(|&e| e < after)) else {
        return Some(text.len());
    };
    let footer_label = e + END.len();
    Some(pem_label_end(text, footer_label).map_or(footer_label, |l| l + 5))
}

/// Where the label starting at `from` ends, if it is short `[A-Z0-9 ]` text closed by `-----`.
fn pem_label_end(text: &[u8], from: usize) -> Option<usize> {
    let window = text.get(from..)?;
    let window = window
        .get(..window.len().min(MAX_LABEL + 1))
        .unwrap_or(window);
    let end = from
        + window
            .iter()
            .take_while(|&&b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ')
            .count();
    let closed = text.get(end..end + 5) == Some(b"-----".as_slice());
    (end - from <= MAX_LABEL && closed).then_some(end)
}

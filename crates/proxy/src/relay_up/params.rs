//! Bound parameters as an approver sees them: each value decoded (text in the client
//! encoding; binary by its type, where the Parse declared it or the server described it) and
//! passed through the masking value detectors. A binary value of a type not decoded here shows
//! as its size; nothing is shown when the detectors cannot be built.

use super::{Tracking, Up};
use wire_pg::encoding::Encoding;

/// Longest value shown (characters); longer ones are cut with `…`.
const MAX_SHOWN: usize = 256;

impl Up {
    /// The parameters of `portal` for approvers (see the module docs). `declared`: the types
    /// its statement's Parse declared.
    pub(super) fn shown_params(
        &self,
        t: &Tracking,
        portal: &str,
        declared: &[u32],
    ) -> Vec<Option<String>> {
        let Some(p) = t.portals.get(portal) else {
            return Vec::new();
        };
        let described = self.pipeline.lock().state.param_types(&p.statement_name);
        let detectors = display_detectors(self.state.detectors.as_deref());
        let enc = self.encoding.get();
        p.key_params
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let v = v.as_deref()?;
                let oid = declared
                    .get(i)
                    .copied()
                    .filter(|o| *o != 0)
                    .or_else(|| described.as_ref().and_then(|d| d.get(i).copied()))
                    .unwrap_or(0);
                let text = shown_value(v, oid, enc);
                Some(match (text, detectors) {
                    (Shown::Value(s), Some(d)) => d
                        .redact(s.as_bytes())
                        .map_or(s, |r| String::from_utf8_lossy(&r).into_owned()),
                    (Shown::Value(_), None) => "[withheld]".to_owned(),
                    (Shown::Opaque(s), _) => s,
                })
            })
            .collect()
    }
}

enum Shown {
    /// A value to pass through the detectors.
    Value(String),
    /// Only a description of it (its size).
    Opaque(String),
}

/// One parameter as bound (`t:` or `b:` and the hex of its bytes, see `on_bind`).
fn shown_value(v: &str, oid: u32, enc: Encoding) -> Shown {
    let (binary, hex) = match (v.strip_prefix("b:"), v.strip_prefix("t:")) {
        (Some(h), _) => (true, h),
        (_, Some(h)) => (false, h),
        _ => return Shown::Opaque("[unreadable]".into()),
    };
    let Some(bytes) = unhex(hex) else {
        return Shown::Opaque("[unreadable]".into());
    };
    if !binary {
        let text = enc.decode_lossy(&bytes).into_owned();
        // bytea in its hex text form: what it holds is shown (through the detectors) when
        // it is text, else only its size.
        if matches!(oid, 0 | 17) {
            if let Some(inner) = text.strip_prefix("\\x").and_then(unhex) {
                return bytea(&inner);
            }
        }
        return Shown::Value(cut(text));
    }
    if oid == 17 {
        return bytea(&bytes);
    }
    match decode_binary(oid, &bytes) {
        Some(s) => Shown::Value(cut(s)),
        None => Shown::Opaque(format!("[binary, {} bytes]", bytes.len())),
    }
}

/// A binary value of a common type as PostgreSQL would print it.
fn decode_binary(oid: u32, b: &[u8]) -> Option<String> {
    Some(match oid {
        16 => match b {
            [0] => "false".into(),
            [1] => "true".into(),
            _ => return None,
        },
        21 => i16::from_be_bytes(b.try_into().ok()?).to_string(),
        23 => i32::from_be_bytes(b.try_into().ok()?).to_string(),
        20 => i64::from_be_bytes(b.try_into().ok()?).to_string(),
        26 => u32::from_be_bytes(b.try_into().ok()?).to_string(),
        700 => f32::from_be_bytes(b.try_into().ok()?).to_string(),
        701 => f64::from_be_bytes(b.try_into().ok()?).to_string(),
        // text, varchar, bpchar, name, json, unknown: the text itself (binary send is UTF-8
        // in the server encoding, which Gatehouse requires to be UTF-8).
        25 | 1043 | 1042 | 19 | 114 | 705 => String::from_utf8_lossy(b).into_owned(),
        // jsonb: a version byte, then the text.
        3802 => String::from_utf8_lossy(b.strip_prefix(&[1])?).into_owned(),
        2950 => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            if h.len() != 32 {
                return None;
            }
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }
        _ => return None,
    })
}

/// A bytea value: its text when it is UTF-8 (for the detectors), else only its size.
fn bytea(b: &[u8]) -> Shown {
    match std::str::from_utf8(b) {
        Ok(s) => Shown::Value(cut(format!("bytea: {s}"))),
        Err(_) => Shown::Opaque(format!("[bytea, {} bytes]", b.len())),
    }
}

fn unhex(h: &str) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(super) fn cut(mut s: String) -> String {
    if let Some((i, _)) = s.char_indices().nth(MAX_SHOWN) {
        s.truncate(i);
        s.push('…');
    }
    s
}

/// The value detectors for showing parameters to approvers: the server's when it built them,
/// else built once for this purpose (`None`, and values withheld, if they cannot be).
pub(super) fn display_detectors(
    server: Option<&masking::Detectors>,
) -> Option<&masking::Detectors> {
    static OWN: std::sync::OnceLock<Option<masking::Detectors>> = std::sync::OnceLock::new();
    server.or_else(|| OWN.get_or_init(|| masking::Detectors::new().ok()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(v: &str, oid: u32) -> String {
        match shown_value(v, oid, Encoding::UTF8) {
            Shown::Value(s) | Shown::Opaque(s) => s,
        }
    }

    #[test]
    fn binary_values_of_common_types() {
        assert_eq!(shown("b:0005", 21), "5");
        assert_eq!(shown("b:ffffffff", 23), "-1");
        assert_eq!(shown("b:0000000000000063", 20), "99");
        assert_eq!(shown("b:01", 16), "true");
        assert_eq!(shown("b:616263", 25), "abc");
        assert_eq!(
            shown("b:0123456789abcdef0123456789abcdef", 2950),
            "01234567-89ab-cdef-0123-456789abcdef"
        );
        // Wrong size for the type, or a type not decoded: only the size.
        assert_eq!(shown("b:0005", 23), "[binary, 2 bytes]");
        assert_eq!(shown("b:00050000", 0), "[binary, 4 bytes]");
        assert_eq!(shown("t:3432", 23), "42");
        assert_eq!(shown("x:00", 23), "[unreadable]");
        // bytea: its text when it is text (binary, or hex in text form), else its size.
        assert_eq!(shown("b:6869", 17), "bytea: hi");
        assert_eq!(shown("t:5c7836383639", 17), "bytea: hi");
        assert_eq!(shown("b:ff00", 17), "[bytea, 2 bytes]");
    }

    #[test]
    fn long_values_are_cut() {
        let long = "61".repeat(MAX_SHOWN + 10);
        let s = shown(&format!("t:{long}"), 25);
        assert_eq!(s.chars().count(), MAX_SHOWN + 1);
        assert!(s.ends_with('…'));
    }
}

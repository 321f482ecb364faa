//! The regex-shaped detectors (email, phone, SSN, card, IBAN) and the checks that turn a
//! shape into a finding. Patterns run in ASCII mode (`(?-u)`): the values are ASCII, and
//! Unicode word boundaries would cost speed for nothing.

use super::{Detection, DetectorKind};
use crate::error::MaskError;
use regex::bytes::{Regex, RegexSet};

/// Narrows a regex match to the span that passes validation, or rejects it.
type Accept = fn(&[u8], usize, usize) -> Option<(usize, usize)>;

struct Pattern {
    kind: DetectorKind,
    regex: &'static str,
    accept: Accept,
}

const PATTERNS: &[Pattern] = &[
    Pattern {
        kind: DetectorKind::Email,
        regex: r"(?i-u)\b[a-z0-9._%+\-]{1,64}@(?:[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}\b",
        accept: |_, s, e| Some((s, e)),
    },
    // E.164: `+`, country code, 8–15 digits in all, single separators allowed.
    Pattern {
        kind: DetectorKind::Phone,
        regex: r"(?-u)\+[1-9](?:[ .\-]?[0-9]){7,14}\b",
        accept: |t, s, e| (!prev_is(t, s, |b| b.is_ascii_alphanumeric())).then_some((s, e)),
    },
    // North American Numbering Plan with separators: area and exchange start with 2–9. Bare
    // ten-digit runs are left out: they are indistinguishable from ids.
    Pattern {
        kind: DetectorKind::Phone,
        regex: r"(?-u)(?:\b1[ .\-]?)?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4}\b",
        accept: |_, s, e| Some((s, e)),
    },
    Pattern {
        kind: DetectorKind::UsSsn,
        regex: r"(?-u)\b[0-9]{3}[ \-][0-9]{2}[ \-][0-9]{4}\b",
        accept: |t, s, e| valid_ssn(t.get(s..e)?).then_some((s, e)),
    },
    Pattern {
        kind: DetectorKind::CardNumber,
        regex: r"(?-u)\b[0-9](?:[ \-]?[0-9]){12,18}\b",
        accept: |t, s, e| {
            if prev_is(t, s, |b| b == b'+') {
                return None; // an international phone number
            }
            shrink(t, s, e, valid_card)
        },
    },
    Pattern {
        kind: DetectorKind::Iban,
        regex: r"(?-u)\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b",
        accept: |t, s, e| shrink(t, s, e, valid_iban),
    },
];

/// The compiled regex detectors.
#[derive(Debug)]
pub(super) struct RegexDetectors {
    set: RegexSet,
    each: Vec<Regex>,
}

impl RegexDetectors {
    pub(super) fn new() -> Result<Self, MaskError> {
        let err = |e: regex::Error| MaskError::Pattern(e.to_string());
        let set = RegexSet::new(PATTERNS.iter().map(|p| p.regex)).map_err(err)?;
        let each = PATTERNS
            .iter()
            .map(|p| Regex::new(p.regex))
            .collect::<Result<_, _>>()
            .map_err(err)?;
        Ok(RegexDetectors { set, each })
    }

    /// Adds validated findings to `out`. Only patterns the set saw run individually.
    pub(super) fn scan(&self, text: &[u8], out: &mut Vec<Detection>) {
        for i in self.set.matches(text).iter() {
            let (Some(p), Some(re)) = (PATTERNS.get(i), self.each.get(i)) else {
                continue;
            };
            for m in re.find_iter(text) {
                if let Some((start, end)) = (p.accept)(text, m.start(), m.end()) {
                    out.push(Detection {
                        kind: p.kind,
                        start,
                        end,
                    });
                }
            }
        }
    }
}

fn prev_is(text: &[u8], start: usize, f: impl Fn(u8) -> bool) -> bool {
    start
        .checked_sub(1)
        .and_then(|i| text.get(i))
        .is_some_and(|&b| f(b))
}

/// A greedy match may swallow a trailing group (`4111 1111 1111 1111 2024`): drop
/// space/dash-separated groups from the right until the rest validates.
fn shrink(
    text: &[u8],
    start: usize,
    mut end: usize,
    valid: fn(&[u8]) -> bool,
) -> Option<(usize, usize)> {
    loop {
        let span = text.get(start..end)?;
        if valid(span) {
            return Some((start, end));
        }
        end = start + span.iter().rposition(|&b| b == b' ' || b == b'-')?;
    }
}

/// SSA rules: area not 000, 666 or 9xx; group not 00; serial not 0000.
pub(super) fn valid_ssn(s: &[u8]) -> bool {
    let digits: Vec<u8> = s.iter().copied().filter(u8::is_ascii_digit).collect();
    let (Some(area), Some(group), Some(serial)) =
        (digits.get(..3), digits.get(3..5), digits.get(5..))
    else {
        return false;
    };
    digits.len() == 9
        && area != b"000"
        && area != b"666"
        && area.first() != Some(&b'9')
        && group != b"00"
        && serial != b"0000"
}

/// 13–19 digits (separators ignored), not all the same digit, Luhn checksum valid.
pub(super) fn valid_card(s: &[u8]) -> bool {
    let digits: Vec<u8> = s
        .iter()
        .filter(|b| b.is_ascii_digit())
        .map(|b| b - b'0')
        .collect();
    if !(13..=19).contains(&digits.len()) || digits.windows(2).all(|w| w[0] == w[1]) {
        return false;
    }
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// ISO 13616: 15–34 alphanumerics, check digits 02–98, and the number formed by moving the
/// first four characters to the end (letters as 10–35) is 1 mod 97.
pub(super) fn valid_iban(s: &[u8]) -> bool {
    let chars: Vec<u8> = s.iter().copied().filter(|&b| b != b' ').collect();
    if !(15..=34).contains(&chars.len()) {
        return false;
    }
    let country_ok = chars
        .get(..2)
        .is_some_and(|c| c.iter().all(u8::is_ascii_uppercase));
    let check = match chars.get(2..4) {
        Some(&[a, b]) if a.is_ascii_digit() && b.is_ascii_digit() => (a - b'0') * 10 + (b - b'0'),
        _ => return false,
    };
    if !country_ok || !(2..=98).contains(&check) {
        return false;
    }
    let (head, tail) = chars.split_at(4);
    let mut rem: u32 = 0;
    for &c in tail.iter().chain(head) {
        let v = match c {
            b'0'..=b'9' => u32::from(c - b'0'),
            b'A'..=b'Z' => u32::from(c - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

//! Masks for text-like values (and for the partial redactions of the detectors). All outputs
//! are ASCII stars plus pieces of the (valid UTF-8) input, so they are valid text in any
//! ASCII-compatible client encoding. Input that is not UTF-8 (a LATIN1 client, say) cannot be
//! cut safely by character, so it gets the full mask.

use crate::strategy::Strategy;

/// The full mask: fixed width so the masked value does not leak the clear value's length.
pub(crate) const FULL: &[u8] = b"********";

/// Values with fewer digits/alphanumerics than this are fully masked by Partial/Last4: keeping
/// four characters of a short value would reveal half of it or more.
const MIN_KEEP_LAST4: usize = 8;

/// Masks a text value with a non-hash, non-null strategy.
pub(crate) fn mask(strategy: Strategy, value: &[u8]) -> Vec<u8> {
    let Ok(s) = std::str::from_utf8(value) else {
        return FULL.to_vec();
    };
    // bpchar values arrive blank-padded to the column width; the padding is not data.
    let s = s.trim_end_matches(' ');
    let masked = match strategy {
        Strategy::Partial => email(s)
            .or_else(|| digits_keep_last4(s, MIN_KEEP_LAST4))
            .or_else(|| first_char(s)),
        Strategy::Email => email(s),
        Strategy::Last4 => last4(s),
        Strategy::Full | Strategy::Hash | Strategy::Null => None,
    };
    masked.unwrap_or_else(|| FULL.to_vec())
}

/// Splits an email address into (local part, domain) when the value is one address and
/// nothing else: one `@`, a non-empty local part without spaces, a dotted domain of
/// letters, digits, `-` and `.`.
pub(crate) fn split_email(s: &str) -> Option<(&str, &str)> {
    let (local, domain) = s.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains(|c: char| c.is_whitespace() || c == '@' || c.is_control());
    let domain_ok = domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    (local_ok && domain_ok).then_some((local, domain))
}

/// `alice@example.com` → `a***@example.com`: the domain stays (it is rarely personal and is
/// what analysts group by), the local part keeps only its first character.
pub(crate) fn email(s: &str) -> Option<Vec<u8>> {
    let (local, domain) = split_email(s)?;
    let first = local.chars().next()?;
    let mut out = Vec::with_capacity(first.len_utf8() + 4 + domain.len());
    let mut buf = [0u8; 4];
    out.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
    out.extend_from_slice(b"***@");
    out.extend_from_slice(domain.as_bytes());
    Some(out)
}

/// Digit-shaped values (phone, SSN, card: digits plus ` -().+/`) with at least `min_digits`
/// digits: every digit but the last four becomes `*`, separators stay, so the shape remains
/// recognisable (`***-**-6789`, `************1111`).
pub(crate) fn digits_keep_last4(s: &str, min_digits: usize) -> Option<Vec<u8>> {
    let shaped = s
        .bytes()
        .all(|b| b.is_ascii_digit() || b" -().+/".contains(&b));
    let digits = s.bytes().filter(u8::is_ascii_digit).count();
    if !shaped || digits < min_digits.max(5) {
        return None;
    }
    let mut seen = 0;
    let out = s
        .bytes()
        .map(|b| {
            if !b.is_ascii_digit() {
                return b;
            }
            seen += 1;
            if seen + 4 > digits {
                b
            } else {
                b'*'
            }
        })
        .collect();
    Some(out)
}

/// Any other text of 4+ characters: first character and 7 stars (8 characters in all, so the
/// length is not leaked). Shorter values get the full mask.
fn first_char(s: &str) -> Option<Vec<u8>> {
    let mut chars = s.chars();
    let first = chars.next()?;
    if chars.take(3).count() < 3 || first.is_whitespace() {
        return None;
    }
    let mut out = Vec::with_capacity(first.len_utf8() + 7);
    let mut buf = [0u8; 4];
    out.extend_from_slice(first.encode_utf8(&mut buf).as_bytes());
    out.extend_from_slice(&FULL[..7]);
    Some(out)
}

/// `****` plus the last four ASCII alphanumerics, for values with at least 8 of them.
fn last4(s: &str) -> Option<Vec<u8>> {
    let alnum = s.bytes().filter(u8::is_ascii_alphanumeric).count();
    if alnum < MIN_KEEP_LAST4 {
        return None;
    }
    let mut out = b"****".to_vec();
    let tail = s.bytes().filter(u8::is_ascii_alphanumeric).skip(alnum - 4);
    out.extend(tail);
    Some(out)
}

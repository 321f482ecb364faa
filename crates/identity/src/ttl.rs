//! Parsing token lifetimes such as `8h`, `30m`, `90s`, `7d` or `1h30m`.
//!
//! A lifetime is one or more `<number><unit>` parts with units `d`, `h`, `m`, `s`, each unit at
//! most once and largest first (so `30m1h` and `1h1h` are refused as probable typos). A bare
//! number is refused: "8" could mean hours or seconds. The total must be positive.

use crate::IdentityError;

/// Seconds in `input` (see the module docs).
pub fn parse_ttl(input: &str) -> Result<u64, IdentityError> {
    let invalid = |reason: &str| IdentityError::InvalidTtl {
        input: input.to_owned(),
        reason: reason.to_owned(),
    };
    if input.is_empty() {
        return Err(invalid("empty"));
    }
    let mut total: u64 = 0;
    let mut last_unit_secs = u64::MAX;
    let mut rest = input;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(invalid("expected a number"));
        }
        let (number, tail) = rest.split_at(digits);
        let mut chars = tail.chars();
        let unit_secs = match chars.next() {
            Some('d') => 86_400,
            Some('h') => 3_600,
            Some('m') => 60,
            Some('s') => 1,
            Some(_) => return Err(invalid("unknown unit (use d, h, m or s)")),
            None => return Err(invalid("missing unit (use d, h, m or s)")),
        };
        if unit_secs >= last_unit_secs {
            return Err(invalid("units must appear once each, largest first"));
        }
        last_unit_secs = unit_secs;
        let part = number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_secs))
            .ok_or_else(|| invalid("too long"))?;
        total = total.checked_add(part).ok_or_else(|| invalid("too long"))?;
        rest = chars.as_str();
    }
    if total == 0 {
        return Err(invalid("must be positive"));
    }
    // Expiry is stored as i64 epoch seconds.
    if i64::try_from(total).is_err() {
        return Err(invalid("too long"));
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_documented_forms() {
        let cases = [
            ("8h", 28_800),
            ("30m", 1_800),
            ("90s", 90),
            ("7d", 604_800),
            ("1h30m", 5_400),
            ("1d2h3m4s", 93_784),
            ("0h5m", 300),
        ];
        for (input, secs) in cases {
            assert_eq!(parse_ttl(input).ok(), Some(secs), "{input}");
        }
    }

    #[test]
    fn refuses_the_rest() {
        for input in [
            "",
            "8",
            "h",
            "8x",
            "-1h",
            "+1h",
            "1h 30m",
            "30m1h",
            "1h1h",
            "0s",
            "0h0m",
            "1.5h",
            "8H",
            "99999999999999999999d",
            "213503982334602d",
            "106751991167301d",
        ] {
            assert!(parse_ttl(input).is_err(), "{input:?}");
        }
    }
}

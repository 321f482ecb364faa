//! `mask_record_text`: PostgreSQL composite text (`u::text`) with quotes, escapes and NULLs.

use crate::KEY;
use masking::{mask_record_text, oid, ColumnMask, Format, MaskError, Strategy};
use std::borrow::Cow;

/// A plan entry in shorthand: field index, strategy, type OID.
type Pos = (usize, Strategy, u32);

fn plan(positions: &[Pos]) -> Vec<(usize, ColumnMask)> {
    positions
        .iter()
        .map(|&(i, s, t)| (i, ColumnMask::new(s, t, Format::Text)))
        .collect()
}

fn masked(input: &str, positions: &[Pos]) -> String {
    let out = mask_record_text(input.as_bytes(), &plan(positions), KEY).unwrap();
    String::from_utf8(out.into_owned()).unwrap()
}

#[test]
fn golden() {
    use Strategy::*;
    const T: u32 = oid::TEXT;
    #[rustfmt::skip]
    let table: &[(&str, &[Pos], &str)] = &[
        ("(1,alice@x.com,Alice)", &[(1, Partial, T)], "(1,a***@x.com,Alice)"),
        // Quoted field with a comma and a doubled quote, left as it was.
        (r#"(1,"Smith, ""Al""",alice@x.com)"#, &[(2, Email, T)], r#"(1,"Smith, ""Al""",a***@x.com)"#),
        // Masking a quoted field: decoded first, re-quoted only if needed.
        (r#"(1,"alice@x.com")"#, &[(1, Partial, T)], "(1,a***@x.com)"),
        // Backslash escapes inside and outside quotes.
        (r#"(1,"a\\b \"c\"")"#, &[(1, Full, T)], "(1,********)"),
        (r#"(1,a\,b)"#, &[(1, Full, T)], "(1,********)"),
        // NULL fields stay NULL; an empty string is not NULL.
        ("(1,,x)", &[(1, Full, T)], "(1,,x)"),
        (r#"(1,"",x)"#, &[(1, Full, T)], "(1,********,x)"),
        // Null strategy empties the field; int columns get 0; dates NULL.
        ("(1,alice@x.com,42,1990-04-01)", &[(1, Null, T), (2, Full, oid::INT4), (3, Partial, oid::DATE)], "(1,,0,)"),
        // Partial masks that contain spaces or quotes are quoted on the way out.
        (r#"(1,"Alice Smith")"#, &[(1, Partial, T)], "(1,A*******)"),
        (r#"(1,"+1 (555) 123-4567")"#, &[(1, Partial, T)], r#"(1,"+* (***) ***-4567")"#),
        // Hash: identical to mask_cell on the column.
        ("(alice@example.com)", &[(0, Hash, T)], "(f4ec100211f13d19)"),
        // Nested composite: a quoted field holding a record, masked whole.
        (r#"(1,"(2,""b@y.io"")")"#, &[(1, Full, T)], "(1,********)"),
        // First and last fields.
        ("(a@b.co,x,c@d.co)", &[(0, Email, T), (2, Email, T)], "(a***@b.co,x,c***@d.co)"),
        // Single NULL field.
        ("()", &[(0, Full, T)], "()"),
    ];
    for (input, positions, want) in table {
        assert_eq!(masked(input, positions), *want, "{input}");
    }
}

#[test]
fn quoting_follows_record_out() {
    // A masked value holding a quote or backslash is quoted with both doubled; Partial
    // keeps the first character, which is how such a byte reaches the output.
    let out = masked(r#"(1,"\"quoted\"")"#, &[(1, Strategy::Partial, oid::TEXT)]);
    assert_eq!(out, r#"(1,"""*******")"#);
    let out = masked(r#"(1,"\\\\path")"#, &[(1, Strategy::Partial, oid::TEXT)]);
    assert_eq!(out, r#"(1,"\\*******")"#);
}

#[test]
fn untouched_is_borrowed() {
    let out = mask_record_text(b"(1,,x)", &plan(&[(1, Strategy::Full, oid::TEXT)]), KEY).unwrap();
    assert!(matches!(out, Cow::Borrowed(_)));
    let out = mask_record_text(b"(1,a,x)", &[], KEY).unwrap();
    assert!(matches!(out, Cow::Borrowed(_)));
}

#[test]
fn errors() {
    let p = plan(&[(0, Strategy::Full, oid::TEXT)]);
    for bad in ["", "1,2", "(1,2", "(1,\"2)", "(1,2) x", "(1,2\\", "x(1)"] {
        assert!(
            matches!(
                mask_record_text(bad.as_bytes(), &p, KEY),
                Err(MaskError::InvalidRecord { .. })
            ),
            "{bad:?}"
        );
    }
    let far = plan(&[(3, Strategy::Full, oid::TEXT)]);
    assert_eq!(
        mask_record_text(b"(1,2)", &far, KEY),
        Err(MaskError::RecordField {
            index: 3,
            fields: 2
        })
    );
    // Whitespace around the parentheses is accepted, as record_in does.
    assert!(mask_record_text(b" (1,2) ", &p, KEY).is_ok());
}

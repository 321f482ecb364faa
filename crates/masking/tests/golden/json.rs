//! `mask_json`: listed keys masked at every depth, everything else byte-for-byte unchanged.

use crate::KEY;
use masking::{mask_json, oid, ColumnMask, Format, MaskError, Strategy, JSON_MAX_DEPTH};
use std::borrow::Cow;

fn fields() -> Vec<(String, ColumnMask)> {
    vec![
        (
            "email".into(),
            ColumnMask::new(Strategy::Partial, oid::TEXT, Format::Text),
        ),
        (
            "ssn".into(),
            ColumnMask::new(Strategy::Last4, oid::VARCHAR, Format::Binary),
        ),
        (
            "salary".into(),
            ColumnMask::new(Strategy::Full, oid::INT4, Format::Text),
        ),
        (
            "token".into(),
            ColumnMask::new(Strategy::Hash, oid::TEXT, Format::Text),
        ),
        (
            "dob".into(),
            ColumnMask::new(Strategy::Full, oid::DATE, Format::Text),
        ),
        (
            "profile".into(),
            ColumnMask::new(Strategy::Full, oid::JSONB, Format::Text),
        ),
        (
            "score".into(),
            ColumnMask::new(Strategy::Hash, oid::INT8, Format::Text),
        ),
    ]
}

fn masked(input: &str) -> String {
    let out = mask_json(input.as_bytes(), Format::Text, &fields(), KEY).unwrap();
    String::from_utf8(out.into_owned()).unwrap()
}

#[test]
fn golden() {
    #[rustfmt::skip]
    let table = [
        (r#"{"id":1,"email":"alice@example.com"}"#, r#"{"id":1,"email":"a***@example.com"}"#),
        // Whitespace and key order survive (json keeps both).
        (r#"{ "z": true ,  "email" : "bob@x.org", "a": null }"#, r#"{ "z": true ,  "email" : "b***@x.org", "a": null }"#),
        // Arrays of objects (json_agg) and nested objects (row_to_json of a join).
        (r#"[{"email":"a@b.co"},{"email":"c@d.co","n":{"ssn":"123-45-6789"}}]"#,
         r#"[{"email":"a***@b.co"},{"email":"c***@d.co","n":{"ssn":"****6789"}}]"#),
        // Numbers stay numbers; dates (no partial form) become null; nulls stay null.
        (r#"{"salary":125000,"dob":"1990-04-01","email":null}"#, r#"{"salary":0,"dob":null,"email":null}"#),
        // Hash: same hex as mask_cell on the text column; ints hash to ints.
        (r#"{"token":"alice@example.com","score":42}"#, r#"{"token":"f4ec100211f13d19","score":3001345065537455239}"#),
        // A listed key holding an object is replaced whole; inner keys are not visited.
        (r#"{"profile":{"email":"x@y.io","tags":[1,2]},"k":"email"}"#, r#"{"profile":"********","k":"email"}"#),
        // Escaped keys and values are decoded before matching and masking.
        (r#"{"em\u0061il":"al\u0069ce@example.com"}"#, r#"{"em\u0061il":"a***@example.com"}"#),
        // A value that needs escaping after masking is re-escaped.
        (r#"{"email":"\"Q\" <q@x.io>"}"#, r#"{"email":"\"*******"}"#),
    ];
    for (input, want) in table {
        assert_eq!(masked(input), want, "{input}");
    }
}

#[test]
fn untouched_values_are_borrowed() {
    for input in [
        r#"{"id":1,"name":"x"}"#,
        r#"[1,2,{"a":[]}]"#,
        r#""email""#,
        "42",
        r#"{"email":null}"#,
    ] {
        let out = mask_json(input.as_bytes(), Format::Text, &fields(), KEY).unwrap();
        assert!(matches!(out, Cow::Borrowed(_)), "{input}");
    }
}

#[test]
fn jsonb_binary_keeps_version_byte() {
    let input = b"\x01{\"email\": \"alice@example.com\", \"id\": 7}";
    let out = mask_json(input, Format::Binary, &fields(), KEY).unwrap();
    assert_eq!(
        &out[..],
        b"\x01{\"email\": \"a***@example.com\", \"id\": 7}"
    );
    // json (not jsonb) in binary format is bare text.
    let out = mask_json(br#"{"email":"a@b.co"}"#, Format::Binary, &fields(), KEY).unwrap();
    assert_eq!(&out[..], br#"{"email":"a***@b.co"}"#);
    assert_eq!(
        mask_json(b"\x02{}", Format::Binary, &fields(), KEY),
        Err(MaskError::JsonbVersion(2))
    );
}

#[test]
fn invalid_json_is_an_error() {
    let deep = "[".repeat(JSON_MAX_DEPTH + 2) + &"]".repeat(JSON_MAX_DEPTH + 2);
    let ok_deep = "[".repeat(JSON_MAX_DEPTH) + &"]".repeat(JSON_MAX_DEPTH);
    assert!(mask_json(ok_deep.as_bytes(), Format::Text, &fields(), KEY).is_ok());
    for bad in [
        "",
        "{",
        r#"{"email":}"#,
        r#"{"email" "x"}"#,
        r#"{"a":1,}"#,
        "[1,]",
        "01",
        "1.",
        "-",
        r#""\x""#,
        "\"\u{1}\"",
        "tru",
        r#"{"a":1} x"#,
        "{'a':1}",
        "NaN",
        &deep,
        "\"unterminated",
    ] {
        assert!(
            matches!(
                mask_json(bad.as_bytes(), Format::Text, &fields(), KEY),
                Err(MaskError::InvalidJson { .. })
            ),
            "{bad:?}"
        );
    }
    assert!(mask_json(b"\"\xff\"", Format::Text, &fields(), KEY).is_err());
}

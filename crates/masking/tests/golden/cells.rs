//! `mask_cell` per strategy × type × format. Expected values are literal; hashes were
//! computed independently (Python `hmac.new(b"test-key", value, sha256)`).

use crate::KEY;
use masking::{mask_cell, oid, ColumnMask, Format, MaskError, Strategy};

use Format::{Binary, Text};
use Strategy::{Email, Full, Hash, Last4, Null, Partial};

fn run(strategy: Strategy, type_oid: u32, format: Format, value: &[u8]) -> Option<Vec<u8>> {
    let mask = ColumnMask::new(strategy, type_oid, format);
    match mask_cell(&mask, value, KEY) {
        Ok(v) => v,
        Err(e) => panic!("{strategy} {type_oid} {format:?} {value:?}: {e}"),
    }
}

/// One row of a table: strategy, type OID, format, input cell, expected replacement.
type Row<'a> = (Strategy, u32, Format, &'a [u8], Option<Vec<u8>>);

fn s(v: &str) -> Option<Vec<u8>> {
    Some(v.as_bytes().to_vec())
}

#[test]
fn text_types_keep_their_type() {
    #[rustfmt::skip]
    let table: &[(Strategy, &str, Option<Vec<u8>>)] = &[
        (Full, "alice@example.com", s("********")),
        (Full, "x", s("********")),
        (Full, "a much longer value that must not leak its length", s("********")),
        (Partial, "alice@example.com", s("a***@example.com")),
        (Partial, "123-45-6789", s("***-**-6789")),
        (Partial, "4111111111111111", s("************1111")),
        (Partial, "+1 (555) 123-4567", s("+* (***) ***-4567")),
        (Partial, "Alice Smith", s("A*******")),
        (Partial, "Zoë", s("********")),
        (Partial, "Émilie", s("É*******")),
        (Partial, "555-1234", s("5*******")),
        (Partial, "bob@x.org      ", s("b***@x.org")), // bpchar padding
        (Email, "bob.jones@corp.example.org", s("b***@corp.example.org")),
        (Email, "not an email", s("********")),
        (Email, "a@b", s("********")),
        (Last4, "4111 1111 1111 1111", s("****1111")),
        (Last4, "123-45-6789", s("****6789")),
        (Last4, "1234567", s("********")),
        (Hash, "alice@example.com", s("f4ec100211f13d19")),
        (Null, "alice@example.com", None),
    ];
    for t in [oid::TEXT, oid::VARCHAR, oid::BPCHAR, oid::NAME] {
        for f in [Text, Binary] {
            for (st, input, want) in table {
                assert_eq!(
                    &run(*st, t, f, input.as_bytes()),
                    want,
                    "{st} {t} {f:?} {input}"
                );
            }
        }
    }
}

#[test]
fn non_utf8_text_gets_the_full_mask() {
    for st in [Partial, Email, Last4, Full] {
        assert_eq!(run(st, oid::TEXT, Text, b"caf\xe9 cr\xe8me"), s("********"));
    }
}

#[test]
fn integers_text_and_binary() {
    #[rustfmt::skip]
    let table: &[Row] = &[
        (Full, oid::INT4, Text, b"123456", s("0")),
        (Partial, oid::INT8, Text, b"-9", s("0")),
        (Last4, oid::INT2, Text, b"7", s("0")),
        (Email, oid::INT4, Text, b"7", s("0")),
        (Full, oid::INT2, Binary, &[0, 7], Some(vec![0; 2])),
        (Full, oid::INT4, Binary, &[0, 1, 226, 64], Some(vec![0; 4])),
        (Partial, oid::INT8, Binary, &[0, 0, 0, 0, 0, 1, 226, 64], Some(vec![0; 8])),
        (Null, oid::INT4, Binary, &[0, 0, 0, 42], None),
        (Hash, oid::INT8, Text, b"42", s("3001345065537455239")),
        (Hash, oid::INT8, Binary, &[0, 0, 0, 0, 0, 0, 0, 42], Some(3001345065537455239i64.to_be_bytes().to_vec())),
        (Hash, oid::INT4, Text, b"42", s("1874543751")),
        (Hash, oid::INT4, Binary, &[0, 0, 0, 42], Some(1874543751i32.to_be_bytes().to_vec())),
        (Hash, oid::INT2, Text, b"42", s("17543")),
        (Hash, oid::INT2, Binary, &[0, 42], Some(17543i16.to_be_bytes().to_vec())),
    ];
    for (st, t, f, input, want) in table {
        assert_eq!(&run(*st, *t, *f, input), want, "{st} {t} {f:?} {input:?}");
    }
}

#[test]
fn other_types() {
    const NIL: &str = "00000000-0000-0000-0000-000000000000";
    const U: &str = "550e8400-e29b-41d4-a716-446655440000";
    let u_bin: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&U.replace('-', "")[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    let hashed_u = "50e5fd72-2d76-87d3-98b1-d375f9f74285";
    let hashed_u_bin: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&hashed_u.replace('-', "")[i * 2..i * 2 + 2], 16).unwrap())
        .collect();
    #[rustfmt::skip]
    let table: Vec<Row> = vec![
        (Full, oid::NUMERIC, Text, b"1234.50", s("0")),
        (Partial, oid::NUMERIC, Binary, &[0, 1, 0, 0, 0, 0, 0, 0, 4, 210], Some(vec![0; 8])),
        (Hash, oid::NUMERIC, Text, b"1234.50", None),
        (Full, oid::FLOAT4, Binary, &[63, 128, 0, 0], Some(vec![0; 4])),
        (Full, oid::FLOAT8, Binary, &[63, 240, 0, 0, 0, 0, 0, 0], Some(vec![0; 8])),
        (Last4, oid::FLOAT8, Text, b"3.14", s("0")),
        (Hash, oid::FLOAT8, Text, b"3.14", None),
        (Full, oid::UUID, Text, U.as_bytes(), s(NIL)),
        (Partial, oid::UUID, Binary, &u_bin, Some(vec![0; 16])),
        (Hash, oid::UUID, Text, U.as_bytes(), s(hashed_u)),
        (Hash, oid::UUID, Binary, &u_bin, Some(hashed_u_bin.clone())),
        (Full, oid::BYTEA, Text, b"\\xdeadbeef", s("\\x")),
        (Full, oid::BYTEA, Binary, &[0xde, 0xad, 0xbe, 0xef], Some(vec![])),
        (Hash, oid::BYTEA, Text, b"\\xDEADBEEF", s("\\x010791afb703ddb1")),
        (Hash, oid::BYTEA, Binary, &[0xde, 0xad, 0xbe, 0xef], Some(vec![0x01, 0x07, 0x91, 0xaf, 0xb7, 0x03, 0xdd, 0xb1])),
        (Full, oid::JSON, Text, br#"{"a":1}"#, s(r#""********""#)),
        (Full, oid::JSONB, Text, br#"{"a": 1}"#, s(r#""********""#)),
        (Partial, oid::JSONB, Binary, b"\x01{\"a\": 1}", Some(b"\x01\"********\"".to_vec())),
        (Full, oid::JSON, Binary, br#"{"a":1}"#, s(r#""********""#)),
        (Full, oid::BOOL, Text, b"t", None),
        (Full, oid::BOOL, Binary, &[1], None),
        (Partial, oid::DATE, Text, b"1990-04-01", None),
        (Full, oid::TIMESTAMP, Binary, &[0; 8], None),
        (Full, oid::TIMESTAMPTZ, Text, b"2024-01-01 00:00:00+00", None),
        (Full, 99_999, Text, b"whatever", None),
        (Hash, 99_999, Binary, b"whatever", None),
    ];
    for (st, t, f, input, want) in &table {
        assert_eq!(&run(*st, *t, *f, input), want, "{st} {t} {f:?} {input:?}");
    }
    // Text and binary jsonb hash alike (the version byte is not hashed).
    let jt = run(Hash, oid::JSONB, Text, br#"{"a": 1}"#).unwrap();
    let jb = run(Hash, oid::JSONB, Binary, b"\x01{\"a\": 1}").unwrap();
    assert_eq!(jb.first(), Some(&1));
    assert_eq!(&jb[1..], &jt[..]);
}

#[test]
fn unknown_oid_is_text_only_when_told() {
    let citext = 16_385;
    let told = ColumnMask::new(Partial, citext, Text).as_text();
    assert_eq!(
        mask_cell(&told, b"alice@example.com", KEY),
        Ok(s("a***@example.com"))
    );
    let untold = ColumnMask::new(Partial, citext, Text);
    assert_eq!(mask_cell(&untold, b"alice@example.com", KEY), Ok(None));
    // Known non-text types are never reinterpreted as text.
    let date = ColumnMask::new(Partial, oid::DATE, Binary).as_text();
    assert_eq!(mask_cell(&date, &[0, 0, 0, 1], KEY), Ok(None));
}

#[test]
fn errors_fail_closed() {
    let int4 = ColumnMask::new(Hash, oid::INT4, Binary);
    assert!(matches!(
        mask_cell(&int4, &[0, 0, 42], KEY),
        Err(MaskError::BadValue { .. })
    ));
    let int4t = ColumnMask::new(Hash, oid::INT4, Text);
    assert!(matches!(
        mask_cell(&int4t, b"forty-two", KEY),
        Err(MaskError::BadValue { .. })
    ));
    let text = ColumnMask::new(Hash, oid::TEXT, Text);
    assert_eq!(mask_cell(&text, b"x", b""), Err(MaskError::EmptyKey));
    let jsonb = ColumnMask::new(Full, oid::JSONB, Binary);
    assert_eq!(
        mask_cell(&jsonb, b"\x02{}", KEY),
        Err(MaskError::JsonbVersion(2))
    );
    let uuid = ColumnMask::new(Hash, oid::UUID, Text);
    assert!(mask_cell(&uuid, b"not-a-uuid", KEY).is_err());
    let bytea = ColumnMask::new(Hash, oid::BYTEA, Text);
    assert!(mask_cell(&bytea, b"\\xzz", KEY).is_err());
}

#[test]
fn hash_is_keyed_and_deterministic() {
    let m = ColumnMask::new(Hash, oid::TEXT, Text);
    let a = mask_cell(&m, b"alice@example.com", b"k1").unwrap();
    assert_eq!(a, mask_cell(&m, b"alice@example.com", b"k1").unwrap());
    assert_ne!(a, mask_cell(&m, b"alice@example.com", b"k2").unwrap());
    assert_ne!(a, mask_cell(&m, b"bob@example.com", b"k1").unwrap());
}

#[test]
fn strategy_names_round_trip() {
    for st in [Full, Partial, Hash, Null, Email, Last4] {
        assert_eq!(st.to_string().parse::<Strategy>(), Ok(st));
    }
    assert_eq!("PARTIAL".parse::<Strategy>(), Ok(Partial));
    assert!(matches!(
        "redact".parse::<Strategy>(),
        Err(MaskError::UnknownStrategy(_))
    ));
    assert_eq!(Format::from_code(0), Some(Text));
    assert_eq!(Format::from_code(1), Some(Binary));
    assert_eq!(Format::from_code(2), None);
}

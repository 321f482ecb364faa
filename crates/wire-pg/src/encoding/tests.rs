use super::*;

#[test]
fn names_as_postgresql_spells_them() {
    for (name, canonical) in [
        ("UTF8", "UTF8"),
        ("utf-8", "UTF8"),
        ("Unicode", "UTF8"),
        ("LATIN9", "LATIN9"),
        ("iso-8859-15", "LATIN9"),
        ("ISO_8859_9", "LATIN5"),
        ("win1252", "WIN1252"),
        ("Windows-1251", "WIN1251"),
        ("win", "WIN1251"),
        ("KOI8", "KOI8R"),
        ("euc_jp", "EUC_JP"),
        ("EUC-KR", "EUC_KR"),
        ("SQL_ASCII", "SQL_ASCII"),
        ("iso_8859_5", "ISO_8859_5"),
    ] {
        assert_eq!(
            Encoding::from_name(name).map(Encoding::name),
            Ok(canonical),
            "{name}"
        );
    }
    for bad in [
        "SJIS",
        "Shift_JIS",
        "BIG5",
        "GBK",
        "UHC",
        "GB18030",
        "JOHAB",
        "win932",
        "cp936",
        "WIN949",
        "windows950",
    ] {
        assert_eq!(Encoding::from_name(bad), Err(Unsupported::Unsafe), "{bad}");
    }
    for none in ["EUC_TW", "EUC_JIS_2004", "MULE_INTERNAL"] {
        assert_eq!(
            Encoding::from_name(none),
            Err(Unsupported::NoConverter),
            "{none}"
        );
    }
    assert_eq!(Encoding::from_name("klingon"), Err(Unsupported::Unknown));
    assert_eq!(Encoding::from_name("cp1252"), Err(Unsupported::Unknown));
    for (i, _) in TABLE.iter().enumerate() {
        let e = Encoding::from_id(i as u8);
        assert_eq!(Encoding::from_name(e.name()), Ok(e));
    }
}

#[test]
fn single_byte_round_trips() {
    let latin9 = Encoding::from_name("LATIN9").unwrap();
    // "café €" in ISO 8859-15: é = E9, € = A4.
    let bytes = b"SELECT 'caf\xe9 \xa4'";
    let text = latin9.decode(bytes).unwrap();
    assert_eq!(text, "SELECT 'café €'");
    assert_eq!(&*latin9.encode(&text).unwrap(), bytes);
    let latin1 = Encoding::from_name("LATIN1").unwrap();
    assert_eq!(latin1.decode(b"\xa4\x80").unwrap(), "\u{a4}\u{80}");
    let latin5 = Encoding::from_name("LATIN5").unwrap();
    assert_eq!(latin5.decode(b"\xd0\xfd\xe9").unwrap(), "Ğıé");
    assert_eq!(&*latin5.encode("Ğıé").unwrap(), b"\xd0\xfd\xe9");
    assert_eq!(latin5.encode("Ð"), Err(EncodeError));
    // Not representable: refused, or `?` where Gatehouse writes the text itself.
    assert_eq!(latin9.encode("日本"), Err(EncodeError));
    assert_eq!(latin9.encode_lossy("a日é"), b"a?\xe9");
}

#[test]
fn multi_byte_keeps_the_ascii_skeleton() {
    let euc_jp = Encoding::from_name("EUC_JP").unwrap();
    // 日本 in EUC-JP.
    let bytes = b"SELECT '\xc6\xfc\xcb\xdc'";
    assert_eq!(euc_jp.decode(bytes).unwrap(), "SELECT '日本'");
    assert_eq!(&*euc_jp.encode("SELECT '日本'").unwrap(), bytes);
    // A lead byte followed by a quote: never one character with the quote inside.
    assert_eq!(euc_jp.decode(b"'\xc6' OR 1=1 --"), Err(DecodeError));
    // GB18030's four-byte form hides ASCII digits: refused under EUC_CN.
    let euc_cn = Encoding::from_name("EUC_CN").unwrap();
    assert_eq!(euc_cn.decode(b"\x81\x30\x81\x30"), Err(DecodeError));
    assert_eq!(euc_cn.decode(b"\xc4\xe3").unwrap(), "你");
    // UHC's extended forms take ASCII letters as trail bytes: refused under EUC_KR.
    let euc_kr = Encoding::from_name("EUC_KR").unwrap();
    assert_eq!(euc_kr.decode(b"\x81\x41"), Err(DecodeError));
    assert_eq!(euc_kr.decode(b"\xb0\xa1").unwrap(), "가");
}

#[test]
fn utf8_is_strict_and_lossy_only_on_request() {
    let utf8 = Encoding::UTF8;
    assert_eq!(utf8.decode(b"caf\xc3\xa9").unwrap(), "café");
    assert_eq!(utf8.decode(b"caf\xe9"), Err(DecodeError));
    assert_eq!(utf8.decode_lossy(b"caf\xe9"), "caf\u{fffd}");
    let koi8 = Encoding::from_name("KOI8R").unwrap();
    assert_eq!(koi8.decode_lossy(b"\xc1"), "а");
}

#[test]
fn skeletons() {
    assert!(same_skeleton(b"a\xc3\xa9b", "aéb"));
    assert!(same_skeleton(b"\xa4\xa2\xa4\xa2'", "ああ'"));
    assert!(!same_skeleton(b"\x81A'", "X'"));
    assert!(!same_skeleton(b"a'", "a"));
}

#[test]
fn mappings_follow_postgresql_where_whatwg_differs() {
    // Each pair checked against convert_from(…) on PostgreSQL 15.
    for (enc, bytes, pg) in [
        ("KOI8U", &b"\xae"[..], "\u{255D}"),
        ("KOI8U", &b"\xbe"[..], "\u{256C}"),
        ("EUC_CN", &b"\xa1\xa4"[..], "\u{30FB}"),
        ("EUC_CN", &b"\xa1\xaa"[..], "\u{2015}"),
        ("EUC_JP", &b"\x8f\xa2\xc3"[..], "\u{FFE4}"),
    ] {
        let e = Encoding::from_name(enc).unwrap();
        assert_eq!(e.decode(bytes).unwrap(), pg, "{enc} {bytes:x?}");
        assert_eq!(e.decode_lossy(bytes), pg, "{enc} {bytes:x?}");
        assert_eq!(&*e.encode(pg).unwrap(), bytes, "{enc} {pg}");
    }
    // The WHATWG decoder's characters have no bytes in PostgreSQL's mapping.
    let koi8u = Encoding::from_name("KOI8U").unwrap();
    assert_eq!(koi8u.encode("\u{045E}"), Err(EncodeError));
    let euc_cn = Encoding::from_name("EUC_CN").unwrap();
    assert_eq!(euc_cn.encode("\u{00B7}"), Err(EncodeError));
}

//! Detector tables: every kind with positive and negative cases, then redaction.

use masking::{DetectorKind as K, Detectors};

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi+ZJ8qcGCSvLVkJ1a0Zx7cH0xN\nq8Zt3VfLx2RmN9pKc7WyB4hJd6GsA1eTuXo5Qn0M==\n-----END RSA PRIVATE KEY-----";

/// Runs the detectors and returns each finding as (kind, matched text).
fn found(text: &str) -> Vec<(K, String)> {
    let d = Detectors::new().unwrap();
    d.scan(text.as_bytes())
        .into_iter()
        .map(|x| (x.kind, text[x.start..x.end].to_string()))
        .collect()
}

fn one(kind: K, s: &str) -> Vec<(K, String)> {
    vec![(kind, s.to_string())]
}

#[test]
fn positives() {
    #[rustfmt::skip]
    let table: Vec<(String, Vec<(K, String)>)> = vec![
        ("mail alice@example.com now".into(), one(K::Email, "alice@example.com")),
        ("<Bob.Smith+tag@mail.example.co.uk>".into(), one(K::Email, "Bob.Smith+tag@mail.example.co.uk")),
        ("call +14155550123.".into(), one(K::Phone, "+14155550123")),
        ("tel +44 20 7946 0958 office".into(), one(K::Phone, "+44 20 7946 0958")),
        ("us (415) 555-0123 x".into(), one(K::Phone, "(415) 555-0123")),
        ("us 415-555-0123".into(), one(K::Phone, "415-555-0123")),
        ("us 1-415-555-0123".into(), one(K::Phone, "1-415-555-0123")),
        ("ssn 123-45-6789.".into(), one(K::UsSsn, "123-45-6789")),
        ("ssn 078 05 1120".into(), one(K::UsSsn, "078 05 1120")),
        ("card 4111111111111111 ok".into(), one(K::CardNumber, "4111111111111111")),
        ("card 4111 1111 1111 1111 exp 2027".into(), one(K::CardNumber, "4111 1111 1111 1111")),
        ("amex 3782-822463-10005".into(), one(K::CardNumber, "3782-822463-10005")),
        ("iban GB82WEST12345698765432.".into(), one(K::Iban, "GB82WEST12345698765432")),
        ("iban DE89 3704 0044 0532 0130 00 paid".into(), one(K::Iban, "DE89 3704 0044 0532 0130 00")),
        ("key=AKIAIOSFODNN7EXAMPLE;".into(), one(K::AwsAccessKey, "AKIAIOSFODNN7EXAMPLE")),
        ("ASIAY34FZKBOKMUTVV7A".into(), one(K::AwsAccessKey, "ASIAY34FZKBOKMUTVV7A")),
        (format!("Authorization: Bearer {JWT}"), one(K::Jwt, JWT)),
        (format!("token {JWT}. Next"), one(K::Jwt, JWT)),
        (format!("x {PEM} y"), one(K::PrivateKey, PEM)),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA".into(),
            one(K::PrivateKey, "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA")),
        ("secret wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY end".into(),
            one(K::HighEntropySecret, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")),
        ("q8Zt3VfLx2RmN9pKc7WyB4hJd6GsA1eTuXo5Qn0M".into(),
            one(K::HighEntropySecret, "q8Zt3VfLx2RmN9pKc7WyB4hJd6GsA1eTuXo5Qn0M")),
        ("ghp_R4nd0mT0k3nV4lu3F0rT3st1ngAbCdEfGh12".into(),
            one(K::HighEntropySecret, "ghp_R4nd0mT0k3nV4lu3F0rT3st1ngAbCdEfGh12")),
        ("STRIPE=sk_live_4eC39HqLyjWDarjtT1zdp7dc".into(),
            one(K::HighEntropySecret, "sk_live_4eC39HqLyjWDarjtT1zdp7dc")),
        ("key AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI".into(),
            one(K::HighEntropySecret, "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI")),
    ];
    for (text, want) in &table {
        assert_eq!(&found(text), want, "{text}");
    }
}

#[test]
fn negatives() {
    let table = [
        "no sensitive data here at all",
        "user@localhost",
        "4111111111111112",                         // Luhn-invalid
        "0000 0000 0000 0000",                      // Luhn-valid, all one digit
        "order 1234567890123",                      // 13 digits, Luhn-invalid
        "000-12-3456",                              // area 000
        "666-12-3456",                              // area 666
        "912-34-5678",                              // area 9xx
        "123-00-4567",                              // group 00
        "123-45-0000",                              // serial 0000
        "GB82WEST12345698765433",                   // IBAN check fails
        "GB83WEST12345698765432",                   // IBAN check digits altered
        "AKIAIOSFODNN7EXAMPL",                      // 19 chars
        "XAKIAIOSFODNN7EXAMPLE",                    // inside a longer token
        "AKIAiosfodnn7example",                     // lowercase
        "eyJub3QiOiJhIGp3dCJ9.eyJzdWIiOiIxIn0.sig", // header has no "alg"
        "eyJhbGciOiJIUzI1NiJ9",                     // one segment
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----",
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+g\n-----END CERTIFICATE-----",
        "internationalization responsibilities",
        "550e8400-e29b-41d4-a716-446655440000",
        "550E8400-E29B-41D4-A716-446655440000",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709", // hex digest
        "getUserAccountSettingsById(42)",
        "ThisIsATestOfTheEmergencyBroadcastSystem",
        "/usr/local/lib/x86_64-linux-gnu/libssl.so.3",
        "HTTP2ConnectionManager_Impl_Version3",
        "org/apache/commons/lang3/StringUtils",
        "x86_64-unknown-linux-gnu/Release2024",
        "AbstractSingletonProxyFactoryBean2",
        "Base64EncodedWordsLikeThisOne12",
        "released 2024-01-02 12:34:56",
        "ip 192.168.100.200",
        "price 1234.56 EUR",
        "5551234567", // bare ten digits: ambiguous with ids, not reported
    ];
    for text in table {
        assert_eq!(found(text), vec![], "{text}");
    }
}

#[test]
fn several_kinds_in_one_text_in_order() {
    let text = format!("a@b.io paid with 4111-1111-1111-1111, ssn 123-45-6789, {JWT}");
    let kinds: Vec<K> = found(&text).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec![K::Email, K::CardNumber, K::UsSsn, K::Jwt]);
}

#[test]
fn redaction() {
    let d = Detectors::new().unwrap();
    let table = [
        ("mail alice@example.com now", "mail a***@example.com now"),
        ("ssn 123-45-6789.", "ssn ***-**-6789."),
        ("card 4111 1111 1111 1111", "card **** **** **** 1111"),
        ("call +1 415 555 0123", "call +* *** *** 0123"),
        ("key AKIAIOSFODNN7EXAMPLE", "key [aws_access_key]"),
        ("iban GB82WEST12345698765432", "iban [iban]"),
        ("s=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "s=[secret]"),
    ];
    for (input, want) in table {
        let got = d.redact(input.as_bytes()).map(String::from_utf8);
        assert_eq!(got, Some(Ok(want.to_string())), "{input}");
    }
    let jwt = format!("Bearer {JWT}");
    assert_eq!(d.redact(jwt.as_bytes()), Some(b"Bearer [jwt]".to_vec()));
    let pem = format!("k={PEM}\n");
    assert_eq!(
        d.redact(pem.as_bytes()),
        Some(b"k=[private_key]\n".to_vec())
    );
    assert_eq!(d.redact(b"nothing to see"), None);
}

#[test]
fn detection_ranges_are_in_bounds_on_non_utf8() {
    let d = Detectors::new().unwrap();
    let text = b"\xff\xfealice@example.com\xff4111111111111111\xfe";
    let got = d.scan(text);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|x| x.start < x.end && x.end <= text.len()));
}

//! Unit tests of the detector internals (validators, entropy figures, overlap resolution);
//! the golden positive/negative tables live in `tests/golden/detectors.rs`.

use super::entropy::{looks_secret, shannon_bits};
use super::patterns::{valid_card, valid_iban, valid_ssn};
use super::{resolve_overlaps, Detection, DetectorKind};

#[test]
fn luhn() {
    assert!(valid_card(b"4111111111111111"));
    assert!(valid_card(b"4111-1111-1111-1111"));
    assert!(valid_card(b"378282246310005")); // Amex test number
    assert!(!valid_card(b"4111111111111112"));
    assert!(!valid_card(b"0000000000000000")); // Luhn-valid but all one digit
    assert!(!valid_card(b"411111111111")); // 12 digits
}

#[test]
fn iban_mod97() {
    assert!(valid_iban(b"GB82WEST12345698765432"));
    assert!(valid_iban(b"GB82 WEST 1234 5698 7654 32"));
    assert!(valid_iban(b"DE89370400440532013000"));
    assert!(!valid_iban(b"GB82WEST12345698765433"));
    assert!(!valid_iban(b"GB00WEST12345698765432"));
    assert!(!valid_iban(b"gb82WEST12345698765432"));
}

#[test]
fn ssn_rules() {
    assert!(valid_ssn(b"123-45-6789"));
    for bad in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
    ] {
        assert!(!valid_ssn(bad.as_bytes()), "{bad}");
    }
}

#[test]
fn entropy_figures() {
    // All-distinct bytes: log2(n).
    assert!((shannon_bits(b"abcdefghijklmnop") - 4.0).abs() < 1e-9);
    assert!(shannon_bits(b"aaaaaaaaaaaaaaaaaaaa") < 1e-9);
    assert!(looks_secret(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"));
    assert!(!looks_secret(b"internationalization"));
    assert!(!looks_secret(b"550e8400-e29b-41d4-a716-446655440000"));
}

#[test]
fn overlaps_keep_the_stronger_kind() {
    let d = |kind, start, end| Detection { kind, start, end };
    let got = resolve_overlaps(vec![
        d(DetectorKind::HighEntropySecret, 0, 40),
        d(DetectorKind::Jwt, 0, 60),
        d(DetectorKind::CardNumber, 10, 26),
        d(DetectorKind::Email, 70, 80),
        d(DetectorKind::Phone, 75, 90),
    ]);
    assert_eq!(
        got,
        vec![d(DetectorKind::Jwt, 0, 60), d(DetectorKind::Email, 70, 80)]
    );
}

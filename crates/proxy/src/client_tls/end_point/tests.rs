//! Real certificates made with `openssl req -x509` (hashes checked with `sha384sum`), and
//! hand-built DER for the algorithms and malformed shapes.
use super::*;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// P-256 key, signed with ecdsa-with-SHA384.
const ECDSA_SHA384: &str = "MIIBcjCCARegAwIBAgIUS8EjK/PrrP0bhH0BhAzVnvBfJ7kwCgYIKoZIzj0EAwMwDTELMAkGA1UEAwwCZ2gwIBcNMjYxMTI5MTg1MDIyWhgPMjEyNjExMDUxODUwMjJaMA0xCzAJBgNVBAMMAmdoMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEB//rMENuhX2A/qwqIrec+CoAc8Lc2LwYzwvIk6QnYvoox4q3GLGN/3J2b/PqxIcx3bUD22s99P1vniIDZolwOqNTMFEwHQYDVR0OBBYEFDQP6qCee6gfabqeN0GxTdhLLG/xMB8GA1UdIwQYMBaAFDQP6qCee6gfabqeN0GxTdhLLG/xMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwMDSQAwRgIhALaHDWfAXn5JW/GQ+aZ77Gb+8nfDgZmYDCWGlnM/l75IAiEAkxHg5d0KaP0SZaz9Cq+H1riMJMuafjzKvdmdt0b4Z4I=";
const ECDSA_SHA384_HASH: &str = "0e9c5796675b5f653b2a07e5112981152a681ebe73a9bc9522d2a801742993cec34e6f208c65c52aad269e488bc4727e";
/// Ed25519: signed without a separate hash.
const ED25519: &str = "MIIBMDCB46ADAgECAhR8Vf/zjOve+bl0MyUizj3yDcXzSzAFBgMrZXAwDTELMAkGA1UEAwwCZ2gwIBcNMjYxMTI5MTg1MDIyWhgPMjEyNjExMDUxODUwMjJaMA0xCzAJBgNVBAMMAmdoMCowBQYDK2VwAyEAfgwbH8M05n6F5pfrs5Zkv7INhz8PxoNr1p6VJK6qdNKjUzBRMB0GA1UdDgQWBBSKjJFToEhPwp0wbT1p383nP8x/vzAfBgNVHSMEGDAWgBSKjJFToEhPwp0wbT1p383nP8x/vzAPBgNVHRMBAf8EBTADAQH/MAUGAytlcANBAPmPsVy0yIxPFBm92A2HXjD0qYt5qB90MjvUPEVedMUbJsN687rfFkTYZe8E+fgkQmUel8WyO4oBII9CK+Peng8=";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn real_certificates() {
    let ecdsa = B64.decode(ECDSA_SHA384).unwrap();
    assert_eq!(
        of(&ecdsa).map(|h| hex(&h)).as_deref(),
        Some(ECDSA_SHA384_HASH)
    );
    assert_eq!(of(&B64.decode(ED25519).unwrap()), None);
}

/// DER of a length (short or long form).
fn len(n: usize) -> Vec<u8> {
    match n {
        0..=0x7f => vec![n as u8],
        0x80..=0xff => vec![0x81, n as u8],
        _ => vec![0x82, (n >> 8) as u8, n as u8],
    }
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend(len(contents.len()));
    v.extend_from_slice(contents);
    v
}

/// A certificate shape with a `tbs` of `tbs_len` bytes and the given algorithm OID.
fn cert(tbs_len: usize, oid: &[u8]) -> Vec<u8> {
    let mut alg = tlv(OBJECT_IDENTIFIER, oid);
    alg.extend([0x05, 0x00]);
    let mut body = tlv(SEQUENCE, &vec![0; tbs_len]);
    body.extend(tlv(SEQUENCE, &alg));
    body.extend(tlv(0x03, &[0x00]));
    tlv(SEQUENCE, &body)
}

#[test]
fn hash_follows_the_signature_algorithm() {
    for (oid, hash) in ALGORITHMS {
        // Short and long length forms.
        for tbs_len in [3, 200, 1000] {
            let c = cert(tbs_len, oid);
            let want = match hash {
                Hash::Sha224 => Sha224::digest(&c).to_vec(),
                Hash::Sha256 => Sha256::digest(&c).to_vec(),
                Hash::Sha384 => Sha384::digest(&c).to_vec(),
                Hash::Sha512 => Sha512::digest(&c).to_vec(),
            };
            assert_eq!(of(&c), Some(want), "{oid:02x?}");
        }
    }
    // sha1WithRSAEncryption binds with SHA-256 (RFC 5929 §4.1), sha512 with SHA-512.
    let sha1 = cert(3, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05]);
    assert_eq!(of(&sha1).map(|h| h.len()), Some(32));
    let sha512 = cert(3, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d]);
    assert_eq!(of(&sha512).map(|h| h.len()), Some(64));
}

#[test]
fn unknown_or_malformed_gives_no_binding() {
    // RSASSA-PSS (hash in the parameters), Ed25519, a made-up OID.
    for oid in [
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a][..],
        &[0x2b, 0x65, 0x70],
        &[0x2a, 0x03],
    ] {
        assert_eq!(of(&cert(3, oid)), None);
    }
    let good = cert(3, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]);
    // Every truncation, and each wrong tag, fails without panicking.
    for n in 0..good.len() {
        assert_eq!(of(&good[..n]), None, "truncated to {n}");
    }
    for i in [0, 2, 7, 9] {
        let mut bad = good.clone();
        bad[i] ^= 0x01;
        assert_eq!(of(&bad), None, "tag at {i}");
    }
    // Indefinite and oversized lengths.
    assert_eq!(of(&[0x30, 0x80, 0x00, 0x00]), None);
    assert_eq!(of(&[0x30, 0x85, 1, 0, 0, 0, 0]), None);
    assert_eq!(of(&[]), None);
}

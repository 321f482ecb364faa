//! RFC 7677 section 3's example exchange, replayed against the server side.
use super::*;
use pbkdf2::pbkdf2_hmac;

fn verifier(password: &str, salt: &[u8], iterations: u32) -> ([u8; 32], [u8; 32]) {
    let mut salted = [0u8; 32];
    pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations, &mut salted);
    let client_key = hmac(&salted, b"Client Key");
    let stored: [u8; 32] = Sha256::digest(client_key).into();
    (stored, hmac(&salted, b"Server Key"))
}

const SALT_B64: &str = "W22ZaJ0SNY7soEsUEjb6gQ==";

#[test]
fn rfc7677_example() {
    let salt = B64.decode(SALT_B64).unwrap();
    let (state, server_first) = start(
        Offer::Plain,
        MECHANISM,
        b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
        &salt,
        4096,
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    )
    .unwrap();
    assert_eq!(
        server_first,
        b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let wrong = verifier("not-pencil", &salt, 4096);
    let right = verifier("pencil", &salt, 4096);
    let v = state
        .finish(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
            &[wrong, right],
        )
        .unwrap();
    assert_eq!(v.candidate, 1);
    assert_eq!(
        v.server_final,
        b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    );
}

#[test]
fn wrong_password_and_nonce() {
    let salt = B64.decode(SALT_B64).unwrap();
    let wrong = verifier("nope", &salt, 4096);
    let (state, _) = start(
        Offer::Plain,
        MECHANISM,
        b"n,,n=,r=rOprNGfwEbeRWgbNEkqO",
        &salt,
        4096,
        "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
    )
    .unwrap();
    let final_msg = b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    assert_eq!(state.finish(final_msg, &[wrong]), Err(ScramError::Proof));
    let (state, _) = start(Offer::Plain, MECHANISM, b"n,,n=,r=abc", &salt, 4096, "def").unwrap();
    assert_eq!(
        state.finish(b"c=biws,r=abcxyz,p=AAAA", &[wrong]),
        Err(ScramError::Nonce)
    );
}

#[test]
fn channel_binding_refused_without_an_offer() {
    let first = b"p=tls-server-end-point,,n=,r=abc";
    assert_eq!(
        start(Offer::Plain, MECHANISM, first, b"s", 4096, "x").unwrap_err(),
        ScramError::ChannelBinding
    );
    assert_eq!(
        start(Offer::Plain, MECHANISM_PLUS, first, b"s", 4096, "x").unwrap_err(),
        ScramError::Mechanism
    );
    assert!(start(Offer::Plain, MECHANISM, b"garbage", b"s", 4096, "x").is_err());
}

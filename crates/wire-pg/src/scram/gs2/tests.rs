//! Channel binding against `postgres-protocol`'s SCRAM client (the one tokio-postgres uses),
//! and the GS2 header cases PostgreSQL refuses.
use super::super::*;
use pbkdf2::pbkdf2_hmac;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

const SALT: &[u8] = b"sixteen byte slt";
const END_POINT: &[u8] = b"hash of the server certificate..";

fn verifier(password: &str) -> ([u8; 32], [u8; 32]) {
    let mut salted = [0u8; 32];
    pbkdf2_hmac::<Sha256>(password.as_bytes(), SALT, 4096, &mut salted);
    let stored: [u8; 32] = Sha256::digest(hmac(&salted, b"Client Key")).into();
    (stored, hmac(&salted, b"Server Key"))
}

/// Runs a whole exchange: the client binds with `client_binding` and picks `mechanism`.
fn exchange(
    offer: Offer<'_>,
    mechanism: &str,
    client_binding: ChannelBinding,
) -> Result<(), ScramError> {
    let mut client = ScramSha256::new(b"token", client_binding);
    let (state, server_first) = start(offer, mechanism, client.message(), SALT, 4096, "srv")?;
    client.update(&server_first).unwrap();
    let verified = state.finish(client.message(), &[verifier("token")])?;
    client.finish(&verified.server_final).unwrap();
    Ok(())
}

const PLUS: Offer<'static> = Offer::Plus {
    end_point: END_POINT,
};

#[test]
fn plus_is_offered_first() {
    assert_eq!(PLUS.mechanisms(), [MECHANISM_PLUS, MECHANISM]);
    assert_eq!(Offer::Plain.mechanisms(), [MECHANISM]);
}

#[test]
fn plus_with_the_right_binding() {
    let binding = ChannelBinding::tls_server_end_point(END_POINT.to_vec());
    assert_eq!(exchange(PLUS, MECHANISM_PLUS, binding), Ok(()));
}

#[test]
fn plus_with_another_certificate_is_refused() {
    // What a client behind a TLS-terminating man in the middle computes.
    let binding = ChannelBinding::tls_server_end_point(b"hash of another certificate....".to_vec());
    assert_eq!(
        exchange(PLUS, MECHANISM_PLUS, binding),
        Err(ScramError::ChannelBinding)
    );
}

#[test]
fn plain_scram_without_binding_is_fine_either_way() {
    assert_eq!(
        exchange(PLUS, MECHANISM, ChannelBinding::unsupported()),
        Ok(())
    );
    assert_eq!(
        exchange(Offer::Plain, MECHANISM, ChannelBinding::unsupported()),
        Ok(())
    );
    // `y` is honest when the server did not offer PLUS.
    assert_eq!(
        exchange(Offer::Plain, MECHANISM, ChannelBinding::unrequested()),
        Ok(())
    );
}

#[test]
fn y_flag_when_plus_was_offered_is_a_downgrade() {
    assert_eq!(
        exchange(PLUS, MECHANISM, ChannelBinding::unrequested()),
        Err(ScramError::Downgrade)
    );
}

fn first(offer: Offer<'_>, mechanism: &str, msg: &str) -> Result<(), ScramError> {
    start(offer, mechanism, msg.as_bytes(), SALT, 4096, "srv").map(|_| ())
}

#[test]
fn flag_and_mechanism_must_agree() {
    use ScramError::*;
    let bare = "n=,r=abc";
    let cases = [
        // PLUS without binding.
        (PLUS, MECHANISM_PLUS, format!("n,,{bare}"), ChannelBinding),
        (PLUS, MECHANISM_PLUS, format!("y,,{bare}"), ChannelBinding),
        // Binding with plain SCRAM.
        (
            PLUS,
            MECHANISM,
            format!("p=tls-server-end-point,,{bare}"),
            ChannelBinding,
        ),
        // A binding type PostgreSQL does not support.
        (
            PLUS,
            MECHANISM_PLUS,
            format!("p=tls-unique,,{bare}"),
            ChannelBinding,
        ),
        (
            PLUS,
            MECHANISM_PLUS,
            format!("p=tls-exporter,,{bare}"),
            ChannelBinding,
        ),
        // PLUS when it was not offered (no TLS).
        (
            Offer::Plain,
            MECHANISM_PLUS,
            format!("p=tls-server-end-point,,{bare}"),
            Mechanism,
        ),
        (PLUS, "SCRAM-SHA-1", format!("n,,{bare}"), Mechanism),
        (
            PLUS,
            "scram-sha-256-plus",
            format!("p=tls-server-end-point,,{bare}"),
            Mechanism,
        ),
        // An authorization identity, an unknown flag.
        (
            PLUS,
            MECHANISM_PLUS,
            format!("p=tls-server-end-point,a=bob,{bare}"),
            Malformed,
        ),
        (PLUS, MECHANISM, format!("x,,{bare}"), Malformed),
        (
            PLUS,
            MECHANISM_PLUS,
            "p=tls-server-end-point".to_owned(),
            Malformed,
        ),
    ];
    for (offer, mechanism, msg, want) in cases {
        assert_eq!(
            first(offer, mechanism, &msg),
            Err(want),
            "{mechanism} {msg}"
        );
    }
}

/// Starts a PLUS exchange and returns the state with a client-final for `c`.
fn final_with(c: &[u8]) -> Result<Verified, ScramError> {
    let (state, server_first) = start(
        PLUS,
        MECHANISM_PLUS,
        b"p=tls-server-end-point,,n=,r=abc",
        SALT,
        4096,
        "srv",
    )?;
    let nonce = attr(std::str::from_utf8(&server_first).unwrap(), "r").unwrap();
    let msg = format!("c={},r={nonce},p={}", B64.encode(c), B64.encode([0u8; 32]));
    state.finish(msg.as_bytes(), &[verifier("token")])
}

#[test]
fn c_attribute_must_carry_header_and_binding_data() {
    let header = b"p=tls-server-end-point,,".to_vec();
    // The header alone, plain SCRAM's headers, truncated or extended binding data.
    let mut truncated = header.clone();
    truncated.extend_from_slice(&END_POINT[..END_POINT.len() - 1]);
    let mut extended = header.clone();
    extended.extend_from_slice(END_POINT);
    extended.push(0);
    for c in [
        &header,
        &b"n,,".to_vec(),
        &b"y,,".to_vec(),
        &truncated,
        &extended,
    ] {
        assert_eq!(final_with(c), Err(ScramError::ChannelBinding), "{c:?}");
    }
    // The right c= gets past the binding check to the proof (here a wrong one).
    let mut right = header;
    right.extend_from_slice(END_POINT);
    assert_eq!(final_with(&right), Err(ScramError::Proof));
}

//! SCRAM-SHA-256 verifiers against RFC 7677's example exchange and a real client library.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use identity::{client_proof_matches, scram_verifier, server_signature};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};

type TestResult = Result<(), Box<dyn std::error::Error>>;

// RFC 7677 §3: user "user", password "pencil".
const CLIENT_FIRST_BARE: &str = "n=user,r=rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const CLIENT_FINAL_NO_PROOF: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
const PROOF: &str = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const SERVER_SIGNATURE: &str = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

#[test]
fn rfc7677_example_exchange() -> TestResult {
    let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==")?;
    let verifier = scram_verifier("pencil", &salt, 4096);
    assert_eq!(verifier.salt, salt);
    assert_eq!(verifier.iterations, 4096);

    let auth_message = format!("{CLIENT_FIRST_BARE},{SERVER_FIRST},{CLIENT_FINAL_NO_PROOF}");
    let proof = STANDARD.decode(PROOF)?;
    assert!(client_proof_matches(
        &verifier,
        auth_message.as_bytes(),
        &proof
    ));
    assert_eq!(
        STANDARD.encode(server_signature(&verifier, auth_message.as_bytes())),
        SERVER_SIGNATURE
    );

    // A wrong password, a flipped proof bit or another exchange must not pass.
    let wrong = scram_verifier("pencil2", &salt, 4096);
    assert!(!client_proof_matches(
        &wrong,
        auth_message.as_bytes(),
        &proof
    ));
    let mut flipped = proof.clone();
    flipped[0] ^= 1;
    assert!(!client_proof_matches(
        &verifier,
        auth_message.as_bytes(),
        &flipped
    ));
    assert!(!client_proof_matches(
        &verifier,
        b"another exchange",
        &proof
    ));
    Ok(())
}

/// Runs postgres-protocol's client (the same computation libpq does) against a verifier.
#[test]
fn real_client_library_authenticates_against_a_token_verifier() -> TestResult {
    let token = "gh_5u3GdUq1Tr-OpYbZ_kEFv8sXhPq0cjX2QzM6a9wLtBc";
    let salt = [3u8; 16];
    let verifier = scram_verifier(token, &salt, 4096);

    let mut client = ScramSha256::new(token.as_bytes(), ChannelBinding::unsupported());
    let client_first = String::from_utf8(client.message().to_vec())?;
    let client_first_bare = client_first.strip_prefix("n,,").ok_or("no gs2 header")?;
    // The nonce is every printable character but ','; it may itself contain "r=".
    let (_, client_nonce) = client_first_bare.split_once(",r=").ok_or("no nonce")?;
    let server_first = format!(
        "r={client_nonce}serverpart,s={},i=4096",
        STANDARD.encode(salt)
    );
    client.update(server_first.as_bytes())?;

    let client_final = String::from_utf8(client.message().to_vec())?;
    let (without_proof, proof_b64) = client_final.split_once(",p=").ok_or("no proof")?;
    let auth_message = format!("{client_first_bare},{server_first},{without_proof}");
    let proof = STANDARD.decode(proof_b64)?;
    assert!(client_proof_matches(
        &verifier,
        auth_message.as_bytes(),
        &proof
    ));

    let server_final = format!(
        "v={}",
        STANDARD.encode(server_signature(&verifier, auth_message.as_bytes()))
    );
    client.finish(server_final.as_bytes())?;
    Ok(())
}

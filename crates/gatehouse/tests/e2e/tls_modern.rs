//! Modern TLS towards clients (issue 8): direct TLS negotiation with ALPN `postgresql`
//! (libpq 17's `sslnegotiation=direct`) and SCRAM-SHA-256-PLUS channel binding
//! (`channel_binding=require`), through psql, tokio-postgres and raw frames.
//!
//! Each certificate kind matters: the binding hash follows the certificate's signature
//! algorithm (SHA-256 for RSA/SHA-256, SHA-384 for ECDSA/SHA-384), and an Ed25519 certificate
//! has none, so PLUS is not offered at all. `attacks` tries downgrades, ALPN mismatches,
//! forged bindings and a man in the middle.

mod attacks;
pub(crate) mod certs;
mod mitm;
mod pg_tls;
mod wire;

use crate::harness::{Gatehouse, WAIT};
use bytes::BytesMut;
use certs::Kind;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio_postgres::config::{ChannelBinding as Binding, SslMode, SslNegotiation};
use wire::{Outcome, Start};

const PLUS: &str = "SCRAM-SHA-256-PLUS";
const SCRAM: &str = "SCRAM-SHA-256";
const ALPN: &[&[u8]] = &[b"postgresql"];

/// psql as alice with `conninfo` appended to the proxy's; success and stdout + stderr.
async fn psql(gh: &Gatehouse, token: &str, conninfo: &str, sql: &str) -> (bool, String) {
    crate::harness::psql_as(gh, "alice", token, conninfo, sql).await
}

/// tokio-postgres over rustls with the given negotiation and channel binding policy.
async fn tokio_pg(
    gh: &Gatehouse,
    token: &str,
    kind: Kind,
    alpn: &[&[u8]],
    negotiation: SslNegotiation,
    binding: Binding,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg = gh.pg_config("alice", token);
    cfg.ssl_mode(SslMode::Require)
        .ssl_negotiation(negotiation)
        .channel_binding(binding);
    let tls = pg_tls::Rustls {
        config: wire::client_config(alpn),
        kind,
    };
    let (client, conn) = tokio::time::timeout(WAIT, cfg.connect(tls))
        .await
        .unwrap()?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test]
async fn psql_channel_binding_require() {
    let cert = certs::make(Kind::RsaSha256);
    let gh = certs::proxy(&cert).await;
    let token = gh.issue("alice", "human", &[]).await;
    let sql = "SELECT current_setting('gatehouse.identity')";
    let (ok, text) = psql(&gh, &token, "sslmode=require channel_binding=require", sql).await;
    assert!(ok && text == "alice", "{text}");
    // Without TLS there is nothing to bind to: PLUS is not offered, and libpq refuses.
    let (ok, text) = psql(&gh, &token, "sslmode=disable channel_binding=require", sql).await;
    assert!(!ok && text.contains("channel binding"), "{text}");
    let (ok, text) = psql(&gh, &token, "sslmode=disable channel_binding=prefer", sql).await;
    assert!(ok && text == "alice", "{text}");
}

#[tokio::test]
async fn sha384_certificate_binds_with_psql_and_tokio_postgres_both_negotiations() {
    let cert = certs::make(Kind::EcdsaSha384);
    let gh = certs::proxy(&cert).await;
    let token = gh.issue("alice", "human", &[]).await;
    // libpq computes the SHA-384 binding from the certificate itself.
    let (ok, text) = psql(
        &gh,
        &token,
        "sslmode=require channel_binding=require",
        "SELECT 7",
    )
    .await;
    assert!(ok && text == "7", "{text}");
    for negotiation in [SslNegotiation::Postgres, SslNegotiation::Direct] {
        let client = tokio_pg(&gh, &token, cert.kind, ALPN, negotiation, Binding::Require)
            .await
            .unwrap_or_else(|e| panic!("{negotiation:?}: {e:?}"));
        let row = client.query_one("SELECT 1 + 1", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 2);
    }
    // Raw: the exchange names PLUS first, and the binding is SHA-384 of the certificate.
    let mut s = wire::tls(gh.port, Start::Direct, ALPN).await.unwrap();
    let (der, alpn) = wire::peer(&s);
    assert_eq!(alpn.as_deref(), Some(&b"postgresql"[..]));
    let mut buf = BytesMut::new();
    assert_eq!(
        wire::offered(&mut s, &mut buf, "alice").await,
        [PLUS, SCRAM]
    );
    let binding = ChannelBinding::tls_server_end_point(cert.kind.end_point(&der).unwrap());
    let scram = ScramSha256::new(token.as_bytes(), binding);
    let outcome = wire::scram(&mut s, &mut buf, PLUS, scram).await;
    assert!(matches!(outcome, Outcome::LoggedIn), "{outcome:?}");
}

#[tokio::test]
async fn ed25519_certificate_offers_no_binding() {
    let cert = certs::make(Kind::Ed25519);
    let gh = certs::proxy(&cert).await;
    let token = gh.issue("alice", "human", &[]).await;
    let mut s = wire::tls(gh.port, Start::SslRequest, ALPN).await.unwrap();
    let mut buf = BytesMut::new();
    assert_eq!(wire::offered(&mut s, &mut buf, "alice").await, [SCRAM]);
    // `y` is the truth here (the server offered no binding), so it is accepted.
    let scram = ScramSha256::new(token.as_bytes(), ChannelBinding::unrequested());
    let outcome = wire::scram(&mut s, &mut buf, SCRAM, scram).await;
    assert!(matches!(outcome, Outcome::LoggedIn), "{outcome:?}");
    let (ok, text) = psql(
        &gh,
        &token,
        "sslmode=require channel_binding=require",
        "SELECT 1",
    )
    .await;
    assert!(!ok && text.contains("channel binding"), "{text}");
    let (ok, text) = psql(
        &gh,
        &token,
        "sslmode=require channel_binding=prefer",
        "SELECT 1",
    )
    .await;
    assert!(ok && text == "1", "{text}");
    let r = tokio_pg(
        &gh,
        &token,
        cert.kind,
        ALPN,
        SslNegotiation::Postgres,
        Binding::Require,
    );
    let Err(e) = r.await else {
        panic!("channel_binding=require must fail without PLUS");
    };
    assert!(format!("{e:?}").contains("channel binding"), "{e:?}");
}

#[tokio::test]
async fn direct_tls_needs_alpn_postgresql() {
    let cert = certs::make(Kind::RsaSha256);
    let gh = certs::proxy(&cert).await;
    let token = gh.issue("alice", "human", &[]).await;

    // Direct TLS with ALPN postgresql: SCRAM-SHA-256-PLUS to ReadyForQuery.
    let mut s = wire::tls(gh.port, Start::Direct, ALPN).await.unwrap();
    let (der, alpn) = wire::peer(&s);
    assert_eq!(alpn.as_deref(), Some(&b"postgresql"[..]));
    let mut buf = BytesMut::new();
    assert_eq!(
        wire::offered(&mut s, &mut buf, "alice").await,
        [PLUS, SCRAM]
    );
    let binding = ChannelBinding::tls_server_end_point(cert.kind.end_point(&der).unwrap());
    let outcome = wire::scram(
        &mut s,
        &mut buf,
        PLUS,
        ScramSha256::new(token.as_bytes(), binding),
    )
    .await;
    assert!(matches!(outcome, Outcome::LoggedIn), "{outcome:?}");

    // tokio-postgres, direct, with and without ALPN.
    let client = tokio_pg(
        &gh,
        &token,
        cert.kind,
        ALPN,
        SslNegotiation::Direct,
        Binding::Require,
    )
    .await
    .unwrap();
    assert_eq!(
        client
            .query_one("SELECT 3", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        3
    );
    let refused = tokio_pg(
        &gh,
        &token,
        cert.kind,
        &[],
        SslNegotiation::Direct,
        Binding::Prefer,
    )
    .await;
    assert!(refused.is_err(), "direct TLS without ALPN must be refused");

    // The SSLRequest path: no ALPN (libpq before 17) is fine, and postgresql is chosen from a
    // list that has it.
    let s = wire::tls(gh.port, Start::SslRequest, &[]).await.unwrap();
    assert_eq!(wire::peer(&s).1, None);
    let s = wire::tls(gh.port, Start::SslRequest, &[b"http/1.1", b"postgresql"])
        .await
        .unwrap();
    assert_eq!(wire::peer(&s).1.as_deref(), Some(&b"postgresql"[..]));
}

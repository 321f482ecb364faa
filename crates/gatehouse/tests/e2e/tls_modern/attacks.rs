//! Attacks on the TLS and SCRAM-PLUS changes: downgrades (`y`, PLUS without binding, binding
//! with plain SCRAM), bindings of another certificate or hash, ALPN mismatches on both ways of
//! starting TLS, PLUS without TLS, and a man in the middle with its own certificate.

use super::certs::{self, Kind};
use super::wire::{self, Outcome, Start, Tls};
use super::{mitm, psql, tokio_pg, ALPN, PLUS, SCRAM};
use crate::harness::{of_kind, Gatehouse};
use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use tokio::io::AsyncWriteExt;
use tokio_postgres::config::{ChannelBinding as Binding, SslNegotiation};

/// A fresh TLS connection (SSLRequest, ALPN postgresql) that has been offered PLUS.
async fn over_tls(gh: &Gatehouse) -> (Tls, BytesMut, Vec<u8>) {
    let mut s = wire::tls(gh.port, Start::SslRequest, ALPN).await.unwrap();
    let der = wire::peer(&s).0;
    let mut buf = BytesMut::new();
    assert_eq!(
        wire::offered(&mut s, &mut buf, "alice").await,
        [PLUS, SCRAM]
    );
    (s, buf, der)
}

fn assert_refused(outcome: &Outcome, sqlstate: &str, text: &str, what: &str) {
    match outcome {
        Outcome::Refused(code, msg) => {
            assert_eq!(code, sqlstate, "{what}: {msg}");
            assert!(msg.contains(text), "{what}: {msg}");
        }
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn scram_plus_downgrades_and_forged_bindings_are_refused() {
    let cert = certs::make(Kind::RsaSha256);
    let other = certs::make(Kind::RsaSha256);
    let gh = certs::proxy(&cert).await;
    let token = gh.issue("alice", "human", &[]).await;
    let scram = |b| ScramSha256::new(token.as_bytes(), b);
    let check = "SCRAM channel binding check failed";

    // The binding of another certificate (what a client behind a TLS-terminating proxy sees),
    // and of ours hashed with the wrong function: the c= attribute does not match.
    let (mut s, mut buf, _) = over_tls(&gh).await;
    let forged =
        ChannelBinding::tls_server_end_point(Kind::RsaSha256.end_point(&other.der()).unwrap());
    let outcome = wire::scram(&mut s, &mut buf, PLUS, scram(forged)).await;
    assert_refused(&outcome, "08P01", check, "another certificate");
    let (mut s, mut buf, der) = over_tls(&gh).await;
    let sha384 = ChannelBinding::tls_server_end_point(Kind::EcdsaSha384.end_point(&der).unwrap());
    let outcome = wire::scram(&mut s, &mut buf, PLUS, scram(sha384)).await;
    assert_refused(&outcome, "08P01", check, "wrong hash");

    // `y` (client can bind, thinks the server cannot) after PLUS was offered: PLUS was
    // stripped on the way.
    let (mut s, mut buf, _) = over_tls(&gh).await;
    let outcome = wire::scram(
        &mut s,
        &mut buf,
        SCRAM,
        scram(ChannelBinding::unrequested()),
    )
    .await;
    assert_refused(&outcome, "08P01", "negotiation error", "y flag");

    // Headers that do not fit the mechanism, and a binding type PostgreSQL does not have.
    for (mechanism, header) in [
        (PLUS, "n,,"),
        (PLUS, "y,,"),
        (SCRAM, "p=tls-server-end-point,,"),
        (PLUS, "p=tls-unique,,"),
        (PLUS, "p=tls-exporter,,"),
        ("SCRAM-SHA-1", "n,,"),
    ] {
        let (mut s, mut buf, _) = over_tls(&gh).await;
        let outcome =
            wire::initial_raw(&mut s, &mut buf, mechanism, &wire::client_first(header)).await;
        assert!(
            matches!(&outcome, Outcome::Refused(code, _) if code == "08P01"),
            "{mechanism} {header}: {outcome:?}"
        );
    }

    // The right binding does not stand in for the token.
    let (mut s, mut buf, der) = over_tls(&gh).await;
    let right = ChannelBinding::tls_server_end_point(cert.kind.end_point(&der).unwrap());
    let wrong_token = ScramSha256::new(b"gh_not-the-token", right);
    let outcome = wire::scram(&mut s, &mut buf, PLUS, wrong_token).await;
    assert_refused(
        &outcome,
        "28P01",
        "password authentication failed",
        "wrong token",
    );

    // A client without binding support (`n`) still logs in over TLS, as with PostgreSQL.
    let (mut s, mut buf, _) = over_tls(&gh).await;
    let outcome = wire::scram(
        &mut s,
        &mut buf,
        SCRAM,
        scram(ChannelBinding::unsupported()),
    )
    .await;
    assert!(matches!(outcome, Outcome::LoggedIn), "{outcome:?}");

    // Every refusal is an audited authentication failure.
    gh.wait_events("auth failures", |evs| {
        of_kind(evs, "auth_failure").len() >= 10
    })
    .await;
}

#[tokio::test]
async fn alpn_mismatch_and_direct_tls_oddities_are_refused() {
    let cert = certs::make(Kind::RsaSha256);
    let gh = certs::proxy(&cert).await;
    // Only another protocol offered: no_application_protocol, on either path.
    for start in [Start::SslRequest, Start::Direct] {
        let r = wire::tls(gh.port, start, &[b"http/1.1"]).await;
        assert!(r.is_err(), "{start:?} with ALPN http/1.1 was accepted");
    }
    // Direct TLS without ALPN: the handshake completes, then the proxy closes without a word.
    let mut s = wire::tls(gh.port, Start::Direct, &[]).await.unwrap();
    let _ = s
        .write_all(&crate::raw::startup(&[
            ("user", "alice"),
            ("database", "app"),
        ]))
        .await;
    let mut buf = BytesMut::new();
    assert!(wire::read_msg(&mut s, &mut buf).await.is_none());
    // An SSLRequest inside a direct TLS session is refused.
    let mut s = wire::tls(gh.port, Start::Direct, ALPN).await.unwrap();
    let mut req = BytesMut::new();
    postgres_protocol::message::frontend::ssl_request(&mut req);
    s.write_all(&req).await.unwrap();
    assert!(wire::read_msg(&mut s, &mut buf).await.is_none());
    assert!(
        gh.log().contains("did not negotiate ALPN postgresql"),
        "{}",
        gh.log()
    );
}

#[tokio::test]
async fn without_tls_plus_is_neither_offered_nor_accepted() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let connect = || async { crate::raw::connect(gh.port).await };
    let mut buf = BytesMut::new();

    let mut s = connect().await;
    assert_eq!(wire::offered(&mut s, &mut buf, "alice").await, [SCRAM]);
    let first = wire::client_first("p=tls-server-end-point,,");
    let outcome = wire::initial_raw(&mut s, &mut buf, PLUS, &first).await;
    assert_refused(
        &outcome,
        "08P01",
        "invalid SASL authentication mechanism",
        "PLUS in clear",
    );

    // `y` is honest without TLS: accepted.
    let mut s = connect().await;
    buf.clear();
    wire::offered(&mut s, &mut buf, "alice").await;
    let y = ScramSha256::new(token.as_bytes(), ChannelBinding::unrequested());
    let outcome = wire::scram(&mut s, &mut buf, SCRAM, y).await;
    assert!(matches!(outcome, Outcome::LoggedIn), "{outcome:?}");

    // Direct TLS and SSLRequest to a proxy without TLS.
    assert!(wire::tls(gh.port, Start::Direct, ALPN).await.is_err());
    assert!(wire::tls(gh.port, Start::SslRequest, ALPN).await.is_err());
    assert!(gh.log().contains("TLS is not configured"), "{}", gh.log());
}

#[tokio::test]
async fn man_in_the_middle_with_its_own_certificate_is_caught() {
    let cert = certs::make(Kind::RsaSha256);
    let theirs = certs::make(Kind::RsaSha256);
    let gh = certs::proxy(&cert).await;
    let token = gh.issue("alice", "human", &[]).await;
    let port = mitm::start(gh.port, &theirs).await;
    let mut via = tokio_postgres::Config::new();
    via.host("127.0.0.1")
        .port(port)
        .user("alice")
        .password(&token)
        .dbname("app");

    // Without binding the relay works: that is the attack binding exists to stop.
    let tls = super::pg_tls::Rustls {
        config: wire::client_config(ALPN),
        kind: Kind::RsaSha256,
    };
    let mut cfg = via.clone();
    cfg.ssl_mode(tokio_postgres::config::SslMode::Require)
        .channel_binding(Binding::Disable);
    let (client, conn) = cfg.connect(tls.clone()).await.unwrap();
    tokio::spawn(conn);
    assert_eq!(
        client
            .query_one("SELECT 5", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        5
    );

    // With binding, the client binds to the relay's certificate and the proxy refuses.
    cfg.channel_binding(Binding::Require);
    let Err(e) = cfg.connect(tls).await else {
        panic!("the relay must be caught");
    };
    let db = e.as_db_error().unwrap_or_else(|| panic!("{e:?}"));
    assert_eq!(db.code().code(), "08P01");
    assert!(
        db.message().contains("channel binding check failed"),
        "{}",
        db.message()
    );
    let (ok, text) = psql_via(&gh, port, &token).await;
    assert!(
        !ok && text.contains("channel binding check failed"),
        "{text}"
    );
    // A direct connection with the same settings works.
    let direct = tokio_pg(
        &gh,
        &token,
        cert.kind,
        ALPN,
        SslNegotiation::Postgres,
        Binding::Require,
    )
    .await;
    assert!(direct.is_ok(), "{:?}", direct.err());
}

/// psql with channel_binding=require through the relay on `port`.
async fn psql_via(gh: &Gatehouse, port: u16, token: &str) -> (bool, String) {
    let conninfo = format!("port={port} sslmode=require channel_binding=require");
    psql(gh, token, &conninfo, "SELECT 1").await
}

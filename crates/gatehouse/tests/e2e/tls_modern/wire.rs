//! A raw client over TLS: both ways of starting TLS (SSLRequest, direct), any ALPN list, and a
//! SCRAM exchange driven step by step so a test can send what a real client would not.

use crate::raw::{self, Msg};
use bytes::{Buf, BytesMut};
use postgres_protocol::authentication::sasl::ScramSha256;
use postgres_protocol::message::frontend;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub type Tls = tokio_rustls::client::TlsStream<TcpStream>;

/// How the client starts TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// SSLRequest, then the handshake after `S`.
    SslRequest,
    /// The handshake at once (libpq's `sslnegotiation=direct`).
    Direct,
}

/// Accepts any certificate (these tests check the binding, not the chain), but still checks
/// the handshake signatures.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client configuration offering `alpn` (empty: no ALPN extension at all).
pub fn client_config(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Starts TLS to `port`; the error is the handshake's (or the refused SSLRequest's).
pub async fn tls(port: u16, start: Start, alpn: &[&[u8]]) -> std::io::Result<Tls> {
    let mut tcp = raw::connect(port).await;
    if start == Start::SslRequest {
        let mut req = BytesMut::new();
        frontend::ssl_request(&mut req);
        tcp.write_all(&req).await?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).await?;
        if answer != *b"S" {
            return Err(std::io::Error::other("SSLRequest answered N"));
        }
    }
    let name = ServerName::try_from("localhost").unwrap();
    let connect = tokio_rustls::TlsConnector::from(client_config(alpn)).connect(name, tcp);
    tokio::time::timeout(Duration::from_secs(10), connect)
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The DER certificate the server presented and the ALPN protocol agreed on.
pub fn peer(tls: &Tls) -> (Vec<u8>, Option<Vec<u8>>) {
    let conn = tls.get_ref().1;
    let cert = conn.peer_certificates().unwrap()[0].as_ref().to_vec();
    (cert, conn.alpn_protocol().map(<[u8]>::to_vec))
}

/// Reads one backend message; `None` at EOF, on an error or after 10 s of silence.
pub async fn read_msg<S: AsyncRead + Unpin>(s: &mut S, buf: &mut BytesMut) -> Option<Msg> {
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            assert!((4..1 << 24).contains(&len), "implausible length {len}");
            if buf.len() > len {
                let tag = buf[0];
                buf.advance(5);
                let body = buf.split_to(len - 4).to_vec();
                return Some(Msg { tag, body });
            }
        }
        match tokio::time::timeout(Duration::from_secs(10), s.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => return None,
        }
    }
}

/// Sends a StartupMessage for `user` and returns the SASL mechanisms offered.
pub async fn offered<S>(s: &mut S, buf: &mut BytesMut, user: &str) -> Vec<String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    s.write_all(&raw::startup(&[("user", user), ("database", "app")]))
        .await
        .unwrap();
    let m = read_msg(s, buf).await.expect("an authentication request");
    assert_eq!(m.tag, b'R', "{m:?}");
    assert_eq!(m.body[..4], 10i32.to_be_bytes(), "AuthenticationSASL");
    m.body[4..]
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| String::from_utf8_lossy(n).into_owned())
        .collect()
}

/// How a SCRAM exchange ended.
#[derive(Debug)]
pub enum Outcome {
    /// ReadyForQuery: logged in.
    LoggedIn,
    /// An ErrorResponse: SQLSTATE and message.
    Refused(String, String),
    /// The connection closed without an error.
    Closed,
}

/// Runs SCRAM after [`offered`]: `mechanism` in SASLInitialResponse with the messages of
/// `scram` (whose channel binding the test chose), up to ReadyForQuery or an error.
pub async fn scram<S>(
    s: &mut S,
    buf: &mut BytesMut,
    mechanism: &str,
    mut scram: ScramSha256,
) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    frontend::sasl_initial_response(mechanism, scram.message(), &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    loop {
        let Some(m) = read_msg(s, buf).await else {
            return Outcome::Closed;
        };
        match (m.tag, m.body.get(..4)) {
            (b'R', Some(code)) if code == 11i32.to_be_bytes() => {
                scram.update(&m.body[4..]).unwrap();
                out.clear();
                frontend::sasl_response(scram.message(), &mut out).unwrap();
                s.write_all(&out).await.unwrap();
            }
            (b'R', Some(code)) if code == 12i32.to_be_bytes() => {
                scram.finish(&m.body[4..]).unwrap();
            }
            (b'E', _) => {
                return Outcome::Refused(
                    m.field(b'C').unwrap_or_default(),
                    m.field(b'M').unwrap_or_default(),
                )
            }
            (b'Z', _) => return Outcome::LoggedIn,
            _ => {}
        }
    }
}

/// A SCRAM client whose first message is exactly `gs2_header` + `n=,r=<nonce>`, for headers
/// no client library writes (a postgres-protocol client supplies the rest of the exchange).
pub fn client_first(gs2_header: &str) -> Vec<u8> {
    format!("{gs2_header}n=,r=fyko+d2lbbFgONRv9qkxdawL").into_bytes()
}

/// Sends a SASLInitialResponse with raw client-first `data` and returns what came back.
pub async fn initial_raw<S>(s: &mut S, buf: &mut BytesMut, mechanism: &str, data: &[u8]) -> Outcome
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = BytesMut::new();
    frontend::sasl_initial_response(mechanism, data, &mut out).unwrap();
    s.write_all(&out).await.unwrap();
    match read_msg(s, buf).await {
        Some(m) if m.tag == b'E' => Outcome::Refused(
            m.field(b'C').unwrap_or_default(),
            m.field(b'M').unwrap_or_default(),
        ),
        Some(m) if m.tag == b'R' => panic!("the server went on with the exchange: {m:?}"),
        Some(m) => panic!("unexpected {m:?}"),
        None => Outcome::Closed,
    }
}

//! The first packets of a connection: SSL/GSSAPI-encryption negotiation, then either a
//! StartupMessage or a CancelRequest.
//!
//! TLS starts in one of two ways (protocol docs, "SSL Session Encryption"): the classic
//! SSLRequest answered `S`, or *direct* TLS (PostgreSQL 17, libpq's `sslnegotiation=direct`),
//! where the client's first byte is already a TLS handshake record. A direct connection must
//! negotiate ALPN `postgresql`, as PostgreSQL 17 requires: otherwise a TLS client meant for
//! another service could be steered here (cross-protocol attacks such as ALPACA). On either
//! path a negotiated ALPN other than `postgresql` is refused.

use crate::client_tls::ALPN;
use crate::error::SessionError;
use crate::stream::MaybeTls;
use bytes::BytesMut;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire_pg::startup::{decode_startup, StartupPacket};

pub enum Opening {
    Startup {
        stream: MaybeTls,
        params: Vec<(String, String)>,
        /// Bytes the client pipelined after the startup packet.
        leftover: BytesMut,
    },
    Cancel {
        process_id: i32,
        secret_key: i32,
    },
}

/// Reads packets until a StartupMessage or CancelRequest arrives.
pub async fn open(
    tcp: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> Result<Opening, SessionError> {
    let mut stream = if starts_with_tls_record(&tcp).await? {
        direct_tls(tcp, tls.as_ref()).await?
    } else {
        MaybeTls::Plain(tcp)
    };
    let mut buf = BytesMut::with_capacity(1024);
    // SSLRequest and GSSENCRequest may each come once before the startup packet.
    for _ in 0..3 {
        let packet = read_packet(&mut stream, &mut buf).await?;
        match packet {
            StartupPacket::SslRequest => {
                // Bytes after SSLRequest but before the handshake would be injected plaintext
                // (CVE-2021-23214): refuse them.
                if !buf.is_empty() {
                    return Err(SessionError::Protocol("data after SSLRequest"));
                }
                stream = negotiate_tls(stream, tls.as_ref()).await?;
            }
            StartupPacket::GssEncRequest => stream.write_all(b"N").await?,
            StartupPacket::Cancel {
                process_id,
                secret_key,
            } => {
                return Ok(Opening::Cancel {
                    process_id,
                    secret_key,
                })
            }
            StartupPacket::Startup { minor, params } => {
                let params = negotiate_version(&mut stream, minor, params).await?;
                return Ok(Opening::Startup {
                    stream,
                    params,
                    leftover: buf,
                });
            }
        }
    }
    Err(SessionError::Protocol("too many negotiation packets"))
}

/// Gatehouse speaks protocol 3.0 on both sides. A client asking for a newer minor version, or
/// sending protocol options (`_pq_.*`), is told so with NegotiateProtocolVersion before
/// authentication, exactly as PostgreSQL does; the options never reach the upstream.
async fn negotiate_version(
    stream: &mut MaybeTls,
    minor: u16,
    params: Vec<(String, String)>,
) -> Result<Vec<(String, String)>, SessionError> {
    let (options, params): (Vec<_>, Vec<_>) = params
        .into_iter()
        .partition(|(k, _)| k.starts_with(wire_pg::startup::PROTOCOL_OPTION_PREFIX));
    if minor > 0 || !options.is_empty() {
        let names: Vec<&str> = options.iter().map(|(k, _)| k.as_str()).collect();
        let mut out = BytesMut::new();
        wire_pg::encode::negotiate_protocol_version(&mut out, 0, &names);
        stream.write_all(&out).await?;
    }
    Ok(params)
}

async fn negotiate_tls(
    mut stream: MaybeTls,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<MaybeTls, SessionError> {
    match (stream, tls) {
        (MaybeTls::Plain(mut tcp), Some(cfg)) => {
            tcp.write_all(b"S").await?;
            let tls = accept(tcp, cfg).await?;
            // Clients before PostgreSQL 17 send no ALPN; one that negotiated, negotiated ours.
            match tls.get_ref().1.alpn_protocol() {
                None | Some(ALPN) => Ok(MaybeTls::ServerTls(Box::new(tls))),
                Some(_) => Err(SessionError::Tls("ALPN protocol is not postgresql".into())),
            }
        }
        (s @ MaybeTls::Plain(_), None) => {
            stream = s;
            stream.write_all(b"N").await?;
            Ok(stream)
        }
        _ => Err(SessionError::Protocol("SSLRequest inside TLS")),
    }
}

/// The TLS record type of a handshake message (RFC 8446 §5.1): a ClientHello starts with it,
/// while every startup packet starts with a length below 2^24, i.e. a zero byte.
const TLS_HANDSHAKE: u8 = 0x16;

async fn starts_with_tls_record(tcp: &TcpStream) -> Result<bool, SessionError> {
    let mut first = [0u8; 1];
    // Peeking leaves the byte for the TLS acceptor or the packet reader; 0 bytes is EOF,
    // which the packet reader reports.
    let n = tcp.peek(&mut first).await?;
    Ok(n == 1 && first[0] == TLS_HANDSHAKE)
}

/// Direct TLS: the handshake comes first, and it must have agreed on ALPN `postgresql`.
/// Refusals close the connection without a message, as PostgreSQL does (there is no channel
/// the client is known to read one on).
async fn direct_tls(
    tcp: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<MaybeTls, SessionError> {
    let Some(cfg) = tls else {
        tracing::info!("direct TLS connection refused: TLS is not configured");
        return Err(SessionError::Protocol("direct TLS without TLS configured"));
    };
    let tls = accept(tcp, cfg).await?;
    if tls.get_ref().1.alpn_protocol() != Some(ALPN) {
        tracing::info!(
            "direct TLS connection refused: the client did not negotiate ALPN postgresql"
        );
        return Err(SessionError::Tls(
            "direct TLS without ALPN postgresql".into(),
        ));
    }
    Ok(MaybeTls::ServerTls(Box::new(tls)))
}

async fn accept(
    tcp: TcpStream,
    cfg: &Arc<rustls::ServerConfig>,
) -> Result<tokio_rustls::server::TlsStream<TcpStream>, SessionError> {
    tokio_rustls::TlsAcceptor::from(cfg.clone())
        .accept(tcp)
        .await
        .map_err(|e| SessionError::Tls(e.to_string()))
}

async fn read_packet(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
) -> Result<StartupPacket, SessionError> {
    loop {
        match decode_startup(buf) {
            Ok(Some(p)) => return Ok(p),
            Ok(None) => {}
            Err(e @ wire_pg::WireError::Version(major, minor)) => {
                // As PostgreSQL answers: a FATAL error the client can show.
                let mut out = BytesMut::new();
                let msg = format!(
                    "unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0"
                );
                wire_pg::encode::error(&mut out, "FATAL", "0A000", &msg, None, None);
                let _ = stream.write_all(&out).await;
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(SessionError::Protocol("connection closed during startup"));
        }
    }
}

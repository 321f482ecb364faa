//! The first packets of a connection: SSL/GSSAPI-encryption negotiation, then either a
//! StartupMessage or a CancelRequest.

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
    let mut stream = MaybeTls::Plain(tcp);
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
            StartupPacket::Startup { params } => {
                return Ok(Opening::Startup {
                    stream,
                    params,
                    leftover: buf,
                })
            }
        }
    }
    Err(SessionError::Protocol("too many negotiation packets"))
}

async fn negotiate_tls(
    mut stream: MaybeTls,
    tls: Option<&Arc<rustls::ServerConfig>>,
) -> Result<MaybeTls, SessionError> {
    match (stream, tls) {
        (MaybeTls::Plain(mut tcp), Some(cfg)) => {
            tcp.write_all(b"S").await?;
            let acceptor = tokio_rustls::TlsAcceptor::from(cfg.clone());
            let tls = acceptor
                .accept(tcp)
                .await
                .map_err(|e| SessionError::Tls(e.to_string()))?;
            Ok(MaybeTls::ServerTls(Box::new(tls)))
        }
        (s @ MaybeTls::Plain(_), None) => {
            stream = s;
            stream.write_all(b"N").await?;
            Ok(stream)
        }
        _ => Err(SessionError::Protocol("SSLRequest inside TLS")),
    }
}

async fn read_packet(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
) -> Result<StartupPacket, SessionError> {
    loop {
        if let Some(p) = decode_startup(buf)? {
            return Ok(p);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(SessionError::Protocol("connection closed during startup"));
        }
    }
}

//! Logging in to the upstream PostgreSQL with the target's credentials (which clients never
//! see), carrying the client's identity into the session: `application_name` starts with
//! `gatehouse:<identity>` and `gatehouse.identity` is set through the `options` parameter.

use crate::auth::read_frame;
use crate::config::{TargetConfig, UpstreamTls};
use crate::error::SessionError;
use crate::stream::MaybeTls;
use bytes::BytesMut;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wire_pg::backend::{self, tag, Authentication};
use wire_pg::encode;

/// Upstream messages can legitimately be large (a wide DataRow); PostgreSQL's own limit.
pub const MAX_UPSTREAM_MESSAGE: usize = 1 << 30;

/// A logged-in upstream connection, ready for queries.
pub struct Upstream {
    pub stream: MaybeTls,
    /// Bytes already read past ReadyForQuery.
    pub buf: BytesMut,
    /// ParameterStatus values to pass on to the client.
    pub params: Vec<(String, String)>,
    /// The upstream's BackendKeyData, used to forward cancel requests.
    pub process_id: i32,
    pub secret_key: i32,
}

pub async fn connect(
    target: &TargetConfig,
    startup: &[(String, String)],
) -> Result<Upstream, SessionError> {
    let tcp = TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| {
            SessionError::Upstream(format!("connect {}:{}: {e}", target.host, target.port))
        })?;
    let _ = tcp.set_nodelay(true);
    let mut stream = negotiate_tls(tcp, target).await?;
    let mut out = BytesMut::new();
    let params: Vec<(&str, &str)> = startup
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    encode::startup(&mut out, &params);
    stream.write_all(&out).await?;
    let mut buf = BytesMut::with_capacity(8192);
    login(&mut stream, &mut buf, target).await?;
    let mut up = Upstream {
        stream,
        buf,
        params: Vec::new(),
        process_id: 0,
        secret_key: 0,
    };
    await_ready(&mut up).await?;
    Ok(up)
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    target: &TargetConfig,
) -> Result<MaybeTls, SessionError> {
    let config = match &target.tls {
        UpstreamTls::Disable => return Ok(MaybeTls::Plain(tcp)),
        UpstreamTls::Require => tls_config(None),
        UpstreamTls::VerifyFull(roots) => tls_config(Some(roots.clone())),
    }?;
    let mut out = BytesMut::new();
    encode::ssl_request(&mut out);
    tcp.write_all(&out).await?;
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer).await?;
    if answer != *b"S" {
        return Err(SessionError::Upstream(
            "server refused TLS (sslmode requires it)".into(),
        ));
    }
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|e| SessionError::Tls(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| SessionError::Tls(e.to_string()))?;
    Ok(MaybeTls::ClientTls(Box::new(tls)))
}

fn tls_config(
    roots: Option<Arc<rustls::RootCertStore>>,
) -> Result<Arc<rustls::ClientConfig>, SessionError> {
    let builder = rustls::ClientConfig::builder();
    let config = match roots {
        Some(r) => builder.with_root_certificates(r).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(crate::upstream_tls::EncryptOnly::new()))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// Runs the authentication exchange the server asks for.
async fn login(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    target: &TargetConfig,
) -> Result<(), SessionError> {
    let password = || {
        target.password.as_deref().ok_or_else(|| {
            SessionError::Upstream("server asked for a password and none is configured".into())
        })
    };
    let mut scram: Option<ScramSha256> = None;
    let mut out = BytesMut::new();
    loop {
        let frame = read_frame(stream, buf, MAX_UPSTREAM_MESSAGE).await?;
        match frame.tag() {
            tag::AUTHENTICATION => {}
            tag::ERROR_RESPONSE => return Err(upstream_error(&frame)),
            tag::NOTICE_RESPONSE => continue,
            _ => {
                return Err(SessionError::Upstream(
                    "unexpected message during login".into(),
                ))
            }
        }
        out.clear();
        match Authentication::parse(&frame)? {
            Authentication::Ok => return Ok(()),
            Authentication::CleartextPassword => encode::password(&mut out, password()?.as_bytes()),
            Authentication::Md5Password { salt } => {
                let hash = postgres_protocol::authentication::md5_hash(
                    target.user.as_bytes(),
                    password()?.as_bytes(),
                    salt,
                );
                encode::password(&mut out, hash.as_bytes());
            }
            Authentication::Sasl { mechanisms } => {
                if !mechanisms.iter().any(|m| m == wire_pg::scram::MECHANISM) {
                    return Err(SessionError::Upstream("no supported SASL mechanism".into()));
                }
                let s = ScramSha256::new(password()?.as_bytes(), ChannelBinding::unsupported());
                encode::sasl_initial_response(&mut out, wire_pg::scram::MECHANISM, s.message());
                scram = Some(s);
            }
            Authentication::SaslContinue(data) => {
                let s = scram
                    .as_mut()
                    .ok_or(SessionError::Protocol("SASL out of order"))?;
                s.update(&data)
                    .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
                encode::sasl_response(&mut out, s.message());
            }
            Authentication::SaslFinal(data) => {
                let mut s = scram
                    .take()
                    .ok_or(SessionError::Protocol("SASL out of order"))?;
                s.finish(&data)
                    .map_err(|e| SessionError::Upstream(format!("SCRAM: {e}")))?;
                continue;
            }
            Authentication::Unsupported(code) => {
                return Err(SessionError::Upstream(format!(
                    "unsupported authentication request {code}"
                )))
            }
        }
        stream.write_all(&out).await?;
    }
}

/// Collects ParameterStatus and BackendKeyData until ReadyForQuery.
async fn await_ready(up: &mut Upstream) -> Result<(), SessionError> {
    loop {
        let frame = read_frame(&mut up.stream, &mut up.buf, MAX_UPSTREAM_MESSAGE).await?;
        match frame.tag() {
            tag::PARAMETER_STATUS => up.params.push(backend::parameter_status(&frame)?),
            tag::BACKEND_KEY_DATA => {
                (up.process_id, up.secret_key) = backend::backend_key_data(&frame)?;
            }
            tag::READY_FOR_QUERY => return Ok(()),
            tag::NOTICE_RESPONSE => {}
            tag::ERROR_RESPONSE => return Err(upstream_error(&frame)),
            _ => {
                return Err(SessionError::Upstream(
                    "unexpected message before ReadyForQuery".into(),
                ))
            }
        }
    }
}

fn upstream_error(frame: &wire_pg::Frame) -> SessionError {
    match backend::error_fields(frame) {
        Ok(e) => SessionError::Upstream(format!("{} {}: {}", e.severity, e.code, e.message)),
        Err(e) => SessionError::Wire(e),
    }
}

/// Sends a CancelRequest for an upstream backend over a fresh connection.
pub async fn cancel(
    target: &TargetConfig,
    process_id: i32,
    secret_key: i32,
) -> Result<(), SessionError> {
    let mut tcp = TcpStream::connect((target.host.as_str(), target.port)).await?;
    let mut out = BytesMut::new();
    encode::cancel_request(&mut out, process_id, secret_key);
    tcp.write_all(&out).await?;
    // The server closes the connection without answering.
    let mut sink = [0u8; 16];
    let _ = tcp.read(&mut sink).await;
    Ok(())
}

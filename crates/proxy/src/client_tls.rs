//! TLS towards clients: the rustls server configuration Gatehouse presents, and the channel
//! binding data of its certificate for SCRAM-SHA-256-PLUS.
//!
//! Owns: ALPN (`postgresql`, as PostgreSQL 17 advertises it; a client offering only other
//! protocols is refused by rustls with the `no_application_protocol` alert) and which
//! certificate the binding data is computed from (the end-entity certificate, the one sent
//! first). Does not own: reading PEM files (the binary does) or the handshake (`handshake`).

mod end_point;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// The ALPN protocol name of PostgreSQL (protocol docs, "SSL Session Encryption").
pub const ALPN: &[u8] = b"postgresql";

/// A server configuration and the `tls-server-end-point` data of its certificate.
#[derive(Debug, Clone)]
pub struct ClientTls {
    pub config: Arc<rustls::ServerConfig>,
    /// `None` when the certificate's signature algorithm names no usable hash (Ed25519,
    /// RSA-PSS): SCRAM-SHA-256-PLUS is then not offered.
    pub end_point: Option<Vec<u8>>,
}

/// Builds the client-facing TLS configuration from a certificate chain (end entity first) and
/// its private key.
pub fn server(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ClientTls, rustls::Error> {
    let end_point = chain.first().and_then(|c| end_point::of(c.as_ref()));
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(ClientTls {
        config: Arc::new(config),
        end_point,
    })
}

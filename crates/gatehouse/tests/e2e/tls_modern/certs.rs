//! Certificates made with `openssl req -x509` (one per signature algorithm that matters for
//! channel binding) and a proxy that presents one.

use crate::harness::{Gatehouse, Options};
use sha2::{Digest, Sha256, Sha384};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The key and signature algorithm of a test certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// sha256WithRSAEncryption: binding hash SHA-256.
    RsaSha256,
    /// ecdsa-with-SHA384 (P-384): binding hash SHA-384.
    EcdsaSha384,
    /// Ed25519 signs without a separate hash: no binding data (RFC 5929 §4.1).
    Ed25519,
}

impl Kind {
    /// What a client computes as `tls-server-end-point` from the DER certificate.
    pub fn end_point(self, der: &[u8]) -> Option<Vec<u8>> {
        match self {
            Kind::RsaSha256 => Some(Sha256::digest(der).to_vec()),
            Kind::EcdsaSha384 => Some(Sha384::digest(der).to_vec()),
            Kind::Ed25519 => None,
        }
    }
}

/// A certificate and key in a directory of their own.
pub struct Cert {
    pub kind: Kind,
    pub crt: PathBuf,
    pub key: PathBuf,
    _dir: tempfile::TempDir,
}

pub fn make(kind: Kind) -> Cert {
    let dir = tempfile::tempdir().unwrap();
    let (crt, key) = (dir.path().join("gh.crt"), dir.path().join("gh.key"));
    let algorithm: &[&str] = match kind {
        Kind::RsaSha256 => &["-newkey", "rsa:2048", "-sha256"],
        Kind::EcdsaSha384 => &[
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-384",
            "-sha384",
        ],
        Kind::Ed25519 => &["-newkey", "ed25519"],
    };
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(algorithm)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&crt)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl req failed for {kind:?}");
    Cert {
        kind,
        crt,
        key,
        _dir: dir,
    }
}

impl Cert {
    /// The certificate as DER.
    pub fn der(&self) -> Vec<u8> {
        let pem = std::fs::read(&self.crt).unwrap();
        let mut reader = &pem[..];
        let first = rustls_pemfile::certs(&mut reader).next().unwrap().unwrap();
        first.as_ref().to_vec()
    }

    /// A client-facing TLS configuration with this certificate, built as Gatehouse builds its
    /// own (ALPN `postgresql`).
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        let pem = std::fs::read(&self.crt).unwrap();
        let chain = rustls_pemfile::certs(&mut &pem[..])
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let pem = std::fs::read(&self.key).unwrap();
        let key = rustls_pemfile::private_key(&mut &pem[..]).unwrap().unwrap();
        proxy::client_tls::server(chain, key).unwrap().config
    }
}

/// A proxy presenting `cert` to clients.
pub async fn proxy(cert: &Cert) -> Gatehouse {
    Gatehouse::start_with(Options {
        extra_toml: format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            cert.crt.display().to_string(),
            cert.key.display().to_string()
        ),
        ..Options::default()
    })
    .await
}

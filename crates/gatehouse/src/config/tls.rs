//! TLS towards clients from `[tls] cert` and `key` (PEM files); `proxy::client_tls` builds the
//! configuration (ALPN, channel binding data) from them.

use super::raw::RawTls;
use proxy::client_tls::{self, ClientTls};
use std::path::Path;

pub fn server_config(t: &RawTls, base: &Path, errors: &mut Vec<String>) -> Option<ClientTls> {
    let (Some(cert), Some(key)) = (&t.cert, &t.key) else {
        errors.push("tls: both cert and key are required".into());
        return None;
    };
    let cert_path = base.join(cert);
    let key_path = base.join(key);
    let certs: Vec<_> = match std::fs::File::open(&cert_path) {
        Ok(f) => rustls_pemfile::certs(&mut std::io::BufReader::new(f))
            .filter_map(Result::ok)
            .collect(),
        Err(e) => {
            errors.push(format!("tls.cert: {}: {e}", cert_path.display()));
            return None;
        }
    };
    if certs.is_empty() {
        errors.push(format!(
            "tls.cert: {}: no PEM certificate found",
            cert_path.display()
        ));
        return None;
    }
    let key = match std::fs::File::open(&key_path) {
        Ok(f) => match rustls_pemfile::private_key(&mut std::io::BufReader::new(f)) {
            Ok(Some(k)) => k,
            _ => {
                errors.push(format!(
                    "tls.key: {}: no PEM private key found",
                    key_path.display()
                ));
                return None;
            }
        },
        Err(e) => {
            errors.push(format!("tls.key: {}: {e}", key_path.display()));
            return None;
        }
    };
    match client_tls::server(certs, key) {
        // A certificate whose signature names no hash (Ed25519, RSA-PSS) still serves TLS;
        // SCRAM-SHA-256-PLUS is then not offered (`ClientTls::end_point`).
        Ok(c) => Some(c),
        Err(e) => {
            errors.push(format!(
                "tls: certificate and key do not form a usable pair: {e}"
            ));
            None
        }
    }
}

//! TLS towards clients from `[tls] cert` and `key` (PEM files).

use super::raw::RawTls;
use std::path::Path;
use std::sync::Arc;

pub fn server_config(
    t: &RawTls,
    base: &Path,
    errors: &mut Vec<String>,
) -> Option<Arc<rustls::ServerConfig>> {
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
    match rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
    {
        Ok(c) => Some(Arc::new(c)),
        Err(e) => {
            errors.push(format!(
                "tls: certificate and key do not form a usable pair: {e}"
            ));
            None
        }
    }
}

//! Upstream URLs: `postgresql://user[:password]@host[:port]/database[?sslmode=…&sslrootcert=…]`.
//! The password belongs in `password_env`; one in the URL is accepted but discouraged.

use proxy::{TargetConfig, UpstreamTls};
use std::sync::Arc;

pub fn target(
    key: &str,
    name: &str,
    upstream: &str,
    password: Option<String>,
    environment: String,
    errors: &mut Vec<String>,
) -> Option<TargetConfig> {
    let err = |errors: &mut Vec<String>, m: String| errors.push(format!("{key}.upstream: {m}"));
    let url = match url::Url::parse(upstream) {
        Ok(u) => u,
        Err(e) => {
            err(errors, format!("not a URL ({e})"));
            return None;
        }
    };
    if !matches!(url.scheme(), "postgres" | "postgresql") {
        err(
            errors,
            format!("scheme must be postgresql://, got {}://", url.scheme()),
        );
        return None;
    }
    let host = url
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_owned();
    let user = percent(url.username());
    if user.is_empty() {
        err(
            errors,
            "a user is required (postgresql://USER@host/db)".into(),
        );
    }
    let database = percent(url.path().trim_start_matches('/'));
    let database = if database.is_empty() {
        user.clone()
    } else {
        database
    };
    let password = password.or_else(|| url.password().map(percent));
    let mut sslmode = "disable".to_owned();
    let mut rootcert = None;
    for (k, v) in url.query_pairs() {
        match k.as_ref() {
            "sslmode" => sslmode = v.into_owned(),
            "sslrootcert" => rootcert = Some(v.into_owned()),
            other => err(errors, format!("unsupported URL parameter {other:?}")),
        }
    }
    let tls = match sslmode.as_str() {
        "disable" => UpstreamTls::Disable,
        "require" => UpstreamTls::Require,
        "verify-full" => UpstreamTls::VerifyFull(Arc::new(roots(rootcert.as_deref(), key, errors))),
        other => {
            err(
                errors,
                format!("sslmode {other:?} is not one of disable, require, verify-full"),
            );
            UpstreamTls::Disable
        }
    };
    Some(TargetConfig {
        name: name.to_owned(),
        host,
        port: url.port().unwrap_or(5432),
        user,
        database,
        password,
        tls,
        environment,
        sensitive: Default::default(),
    })
}

fn percent(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Trust roots for verify-full: `sslrootcert` when given, else the Mozilla roots.
fn roots(path: Option<&str>, key: &str, errors: &mut Vec<String>) -> rustls::RootCertStore {
    let mut store = rustls::RootCertStore::empty();
    let Some(path) = path else {
        store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        return store;
    };
    match std::fs::File::open(path) {
        Ok(f) => {
            for cert in rustls_pemfile::certs(&mut std::io::BufReader::new(f)) {
                match cert.map(|c| store.add(c)) {
                    Ok(Ok(())) => {}
                    _ => errors.push(format!(
                        "{key}.upstream: sslrootcert {path}: invalid certificate"
                    )),
                }
            }
        }
        Err(e) => errors.push(format!("{key}.upstream: sslrootcert {path}: {e}")),
    }
    store
}

//! `[[approvals.webhooks]]`: where new approval requests are announced. Each entry is
//! checked here (a name of its own, an http(s) URL, a known format, a bounded attempt count,
//! and a shared secret present in the environment when serving), so the notifier never meets
//! a half-valid webhook.

use super::{raw::RawWebhook, Secrets};
use webhooks::{Format, Secret, Webhook};

pub fn build(raw: &[RawWebhook], secrets: Secrets, errors: &mut Vec<String>) -> Vec<Webhook> {
    let mut hooks: Vec<Webhook> = Vec::new();
    for (i, w) in raw.iter().enumerate() {
        let key = format!("approvals.webhooks[{i}]");
        let before = errors.len();
        if w.name.trim().is_empty() || w.name.len() > 63 {
            errors.push(format!("{key}.name: must be 1 to 63 bytes"));
        }
        if raw.iter().take(i).any(|h| h.name == w.name) {
            errors.push(format!("{key}.name: duplicate webhook {:?}", w.name));
        }
        // The URL may carry a secret (Slack's do): errors name the key, not the value.
        match url::Url::parse(&w.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(_) => errors.push(format!("{key}.url: must be an http:// or https:// URL")),
            Err(e) => errors.push(format!("{key}.url: not a URL ({e})")),
        }
        let format = match w.format.as_deref() {
            None | Some("json") => Format::Json,
            Some("slack") => Format::Slack,
            Some(other) => {
                errors.push(format!(
                    "{key}.format: {other:?} is not one of \"json\", \"slack\""
                ));
                Format::Json
            }
        };
        if w.groups.iter().any(|g| g.trim().is_empty()) {
            errors.push(format!("{key}.groups: a group name is empty"));
        }
        let max_attempts = match w.max_attempts {
            None => Webhook::DEFAULT_MAX_ATTEMPTS,
            Some(n) if n >= 1 && n <= i64::from(Webhook::MAX_ATTEMPTS_LIMIT) => {
                u32::try_from(n).unwrap_or(Webhook::DEFAULT_MAX_ATTEMPTS)
            }
            Some(n) => {
                errors.push(format!(
                    "{key}.max_attempts: must be 1 to {}, got {n}",
                    Webhook::MAX_ATTEMPTS_LIMIT
                ));
                Webhook::DEFAULT_MAX_ATTEMPTS
            }
        };
        let secret = match std::env::var(&w.secret_env) {
            Ok(s) if !s.is_empty() => s,
            _ if secrets == Secrets::Optional => String::new(),
            Ok(_) => {
                errors.push(format!(
                    "{key}.secret_env: environment variable {} is empty",
                    w.secret_env
                ));
                String::new()
            }
            Err(_) => {
                errors.push(format!(
                    "{key}.secret_env: environment variable {} is not set",
                    w.secret_env
                ));
                String::new()
            }
        };
        if errors.len() == before {
            hooks.push(Webhook {
                name: w.name.clone(),
                url: w.url.clone(),
                groups: w.groups.clone(),
                format,
                secret: Secret::new(secret),
                max_attempts,
            });
        }
    }
    hooks
}

//! Delivering one notification: POST the body, signed afresh for each attempt, until a 2xx
//! answer, a permanent refusal, or the webhook's last attempt; exponential backoff between
//! attempts.
//!
//! A 4xx answer other than 408 (timeout) and 429 (rate limited) is permanent (a wrong URL,
//! a payload the receiver refuses): retrying would only repeat it. Redirects are not
//! followed: the signed body goes only where the configuration says.

use crate::{sign, Webhook};
use std::time::Duration;

/// Waits between attempts: `base`, then doubled each time, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, … up to 60 s between attempts.
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after the `failed`-th failed attempt (1-based).
    pub fn delay(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

/// How a notification ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// The receiver answered 2xx to attempt `attempts`.
    Delivered { attempts: u32, status: u16 },
    /// No attempt succeeded; `error` is the last one's failure.
    Failed { attempts: u32, error: String },
}

/// What one attempt came to.
enum Attempt {
    Ok(u16),
    Retry(String),
    Permanent(String),
}

/// The HTTP client for webhooks: no redirects, bounded connect and request times. The
/// caller installs the process's rustls crypto provider first.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("gatehouse-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| e.to_string())
}

/// Delivers `body` to `hook`, attempting at most `hook.max_attempts` times; `now_secs` is
/// the clock the signatures' timestamps come from.
pub async fn deliver(
    client: &reqwest::Client,
    hook: &Webhook,
    body: &[u8],
    backoff: Backoff,
    now_secs: &(dyn Fn() -> i64 + Send + Sync),
) -> Delivery {
    let max = hook.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        let error = match once(client, hook, body, attempt, now_secs()).await {
            Attempt::Ok(status) => {
                return Delivery::Delivered {
                    attempts: attempt,
                    status,
                }
            }
            Attempt::Permanent(error) => {
                return Delivery::Failed {
                    attempts: attempt,
                    error,
                }
            }
            Attempt::Retry(error) => error,
        };
        if attempt >= max {
            return Delivery::Failed {
                attempts: attempt,
                error,
            };
        }
        tokio::time::sleep(backoff.delay(attempt)).await;
        attempt += 1;
    }
}

async fn once(
    client: &reqwest::Client,
    hook: &Webhook,
    body: &[u8],
    attempt: u32,
    timestamp: i64,
) -> Attempt {
    let response = client
        .post(&hook.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(sign::TIMESTAMP_HEADER, timestamp.to_string())
        .header(
            sign::SIGNATURE_HEADER,
            sign::signature(hook.secret.as_bytes(), timestamp, body),
        )
        .header("X-Gatehouse-Attempt", attempt.to_string())
        .body(body.to_vec())
        .send()
        .await;
    match response {
        Ok(r) if r.status().is_success() => Attempt::Ok(r.status().as_u16()),
        Ok(r) => {
            let status = r.status();
            let text = format!("HTTP {}", status.as_u16());
            if status.is_redirection() {
                Attempt::Permanent(format!("{text} (redirects are not followed)"))
            } else if status.is_client_error()
                && status != reqwest::StatusCode::REQUEST_TIMEOUT
                && status != reqwest::StatusCode::TOO_MANY_REQUESTS
            {
                Attempt::Permanent(text)
            } else {
                Attempt::Retry(text)
            }
        }
        // The error's text can carry the URL (a Slack secret): say only what kind it is.
        Err(e) if e.is_builder() => Attempt::Permanent("the request could not be built".into()),
        Err(e) if e.is_timeout() => Attempt::Retry("timed out".into()),
        Err(e) if e.is_connect() => Attempt::Retry("could not connect".into()),
        Err(_) => Attempt::Retry("the request failed".into()),
    }
}

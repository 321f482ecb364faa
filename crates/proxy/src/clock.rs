//! Time and randomness, injected so authentication, expiry and audit timestamps can be
//! tested deterministically.

use std::time::{SystemTime, UNIX_EPOCH};

pub trait Clock: Send + Sync {
    /// Microseconds since the Unix epoch.
    fn now_micros(&self) -> i64;

    fn now_secs(&self) -> i64 {
        self.now_micros() / 1_000_000
    }

    /// RFC 3339 UTC with microseconds, the audit trail's time format.
    fn rfc3339(&self) -> String {
        let micros = self.now_micros();
        chrono::DateTime::from_timestamp_micros(micros)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
            .unwrap_or_default()
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

pub trait Entropy: Send + Sync {
    fn fill(&self, buf: &mut [u8]);
}

#[derive(Debug, Default, Clone, Copy)]
pub struct OsEntropy;

impl Entropy for OsEntropy {
    fn fill(&self, buf: &mut [u8]) {
        use rand::RngCore;
        rand::rngs::OsRng.fill_bytes(buf);
    }
}

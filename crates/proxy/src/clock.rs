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
        // `to_rfc3339_opts` writes the fixed layout directly; `format` would parse a format
        // string for every statement's event.
        chrono::DateTime::from_timestamp_micros(micros)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
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

#[cfg(test)]
mod tests {
    use super::*;

    struct At(i64);
    impl Clock for At {
        fn now_micros(&self) -> i64 {
            self.0
        }
    }

    #[test]
    fn rfc3339_with_microseconds_in_utc() {
        assert_eq!(At(0).rfc3339(), "1970-01-01T00:00:00.000000Z");
        // The same text as the explicit layout the trail has always used.
        for micros in [
            1,
            999_999,
            1_796_000_000_123_456,
            1_796_000_000_000_001,
            4_102_444_800_000_000,
        ] {
            let layout = chrono::DateTime::from_timestamp_micros(micros)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%S%.6fZ")
                .to_string();
            assert_eq!(At(micros).rfc3339(), layout);
        }
    }
}

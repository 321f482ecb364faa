//! Golden tables for the masking crate: per-type cell masks, detectors, whole-row (json and
//! record) masking, and a no-panic sweep over random bytes. One test binary, one module per
//! area, so the suite links once.
// Helpers outside #[test] fns are test code too (clippy.toml only covers #[test] bodies).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod cells;
mod detectors;
mod json;
mod no_panic;
mod record;

/// The hash key every golden hash below was computed with (Python `hmac`, SHA-256).
pub const KEY: &[u8] = b"test-key";

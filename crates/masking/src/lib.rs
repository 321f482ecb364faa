//! Masking for Gatehouse: turns a sensitive cell into a value that is still valid for its
//! column's type and wire format, and finds sensitive values by their shape.
//!
//! What this crate owns:
//! - [`Strategy`] (the `mask = "…"` setting of a `[[sensitive]]` entry) and [`ColumnMask`], one
//!   output column's mask bound to its type OID and result [`Format`];
//! - [`mask_cell`], the per-cell entry point the proxy calls for each masked `DataRow` cell;
//! - whole-row values: [`mask_json`] (json/jsonb objects and arrays, nested) and
//!   [`mask_record_text`] (PostgreSQL composite text such as `u::text`);
//! - [`Detectors`], value detectors (emails, phones, SSNs, cards, IBANs, AWS keys, JWTs, PEM
//!   private keys, high-entropy secrets) with [`Detectors::redact`].
//!
//! What it does not own: the wire format (the caller hands over one cell's bytes, never a
//! message), deciding which columns are sensitive (lineage and policy live elsewhere), and the
//! hashing key (passed in by the caller). It is pure: no I/O, no clock, no randomness.
//!
//! Failure is explicit: every function returns [`MaskError`] rather than passing a value
//! through unmasked, so the caller can end the statement (fail closed).
//!
//! # What each type becomes
//!
//! `Null` always yields SQL NULL. For the other strategies:
//!
//! | column type (OID) | Full / Partial / Email / Last4 | Hash |
//! |---|---|---|
//! | text 25, varchar 1043, bpchar 1042, name 19, any OID with `treat_as_text` | text masks (below) | 16 hex chars of HMAC-SHA256 |
//! | int2 21, int4 23, int8 20 | `0` (text) / zero big-endian bytes (binary) | HMAC-derived integer of the same width |
//! | float4 700, float8 701, numeric 1700 | `0` / binary zero | NULL |
//! | uuid 2950 | `00000000-0000-0000-0000-000000000000` / 16 zero bytes | HMAC-derived uuid |
//! | bytea 17 | `\x` / zero-length | 8 HMAC bytes (`\x` + 16 hex in text) |
//! | json 114, jsonb 3802 | JSON string `"********"` (jsonb binary: version byte 1 first) | JSON string of 16 hex |
//! | bool 16, date/time types, arrays, any other OID | NULL | NULL |
//!
//! Text masks: Full is always `********` (8 stars, whatever the length); Partial keeps
//! `a***@domain` for emails, the last 4 digits of digit-shaped values with ≥ 8 digits
//! (`***-**-6789`, separators kept), else the first character plus 7 stars; Email masks
//! emails as Partial does and anything else as Full; Last4 is `****` plus the last 4
//! alphanumerics when the value has ≥ 8 of them, else Full. Hashes of the same value agree
//! across text and binary formats (binary ints/uuids/bytea are normalised first), so joins on
//! masked values still line up.
//!
//! # Example
//!
//! ```
//! use masking::{mask_cell, oid, ColumnMask, Detectors, Format, Strategy};
//!
//! let email = ColumnMask::new(Strategy::Partial, oid::TEXT, Format::Text).with_tags(["pii"]);
//! let masked = mask_cell(&email, b"alice@example.com", b"key").unwrap();
//! assert_eq!(masked.as_deref(), Some(&b"a***@example.com"[..]));
//!
//! // Binary int4: four big-endian bytes in, four out.
//! let salary = ColumnMask::new(Strategy::Full, oid::INT4, Format::Binary);
//! assert_eq!(mask_cell(&salary, &[0, 1, 226, 64], b"key").unwrap(), Some(vec![0; 4]));
//!
//! let detectors = Detectors::new().unwrap();
//! let redacted = detectors.redact(b"card 4111 1111 1111 1111").unwrap();
//! assert_eq!(redacted, b"card **** **** **** 1111");
//! ```
#![forbid(unsafe_code)]

mod cell;
mod detect;
mod error;
mod hash;
mod json;
mod record;
mod strategy;
mod text;
mod types;

pub use cell::mask_cell;
pub use detect::{
    Detection, DetectorKind, Detectors, SECRET_MAX_WORD_FRACTION, SECRET_MIN_BITS_PER_CHAR,
    SECRET_MIN_LEN,
};
pub use error::MaskError;
pub use json::{mask_json, MAX_DEPTH as JSON_MAX_DEPTH};
pub use record::mask_record_text;
pub use strategy::{ColumnMask, Format, Strategy};
pub use types::{oid, TypeClass};

//! Session settings that change how the server reads text, which statement analysis must
//! agree with byte for byte:
//!
//! - `client_encoding`: every text of the session is in it (see `wire_pg::encoding`). The
//!   current one is the server's word (ParameterStatus), kept in an [`EncodingCell`] both
//!   halves read. Encodings whose multi-byte characters can contain the bytes of `\` or `'`
//!   (SJIS, BIG5, GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004), and the few without an exact
//!   converter here, are refused: under them, text the analyser reads as one literal can be
//!   several statements to the server.
//! - `standard_conforming_strings = off` (backslashes escape quotes in ordinary literals), for
//!   the same reason.
//!
//! Gatehouse refuses unsafe values at startup, refuses to go on when the server reports them
//! (ParameterStatus, a probe), and, after anything that could have changed either setting,
//! waits for the server to answer everything sent (and report any change) before it reads
//! the next message's text.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use wire_pg::encoding::{Encoding, Unsupported};

/// The session's client encoding as the server last reported it, shared by both halves.
#[derive(Clone, Default)]
pub struct EncodingCell(Arc<AtomicU8>);

impl EncodingCell {
    pub fn get(&self) -> Encoding {
        Encoding::from_id(self.0.load(Ordering::Acquire))
    }

    pub fn set(&self, e: Encoding) {
        self.0.store(e.id(), Ordering::Release);
    }

    /// Follows a `client_encoding` the server reported; `false` if it is one Gatehouse cannot
    /// follow (the session must end).
    pub fn follow(&self, reported: &str) -> bool {
        match Encoding::from_name(reported) {
            Ok(e) => {
                self.set(e);
                true
            }
            Err(_) => false,
        }
    }
}

/// Whether the server reads `text` the same under every client encoding and string syntax it
/// could switch to: pure ASCII is the same characters in every client encoding PostgreSQL
/// has (a byte below 0x80 is one character in all of them; only a multi-byte character's
/// trail byte can fall in that range, in SJIS, BIG5 and the like, and pure ASCII has no lead
/// byte), and without a backslash `standard_conforming_strings` changes nothing. Such text needs no confirmation of either
/// setting before it is analysed.
pub fn reads_the_same(text: &[u8]) -> bool {
    text.iter().all(|&b| b.is_ascii() && b != b'\\')
}

fn normalise(value: &str) -> String {
    value
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether `value` for setting `name` (lower case) would make the server tokenize text
/// differently from Gatehouse's analysis.
pub fn unsafe_setting(name: &str, value: &str) -> bool {
    match name {
        // Unknown names are the server's to refuse; the ones it accepts but Gatehouse cannot
        // follow exactly are refused here.
        "client_encoding" => matches!(
            Encoding::from_name(value),
            Err(Unsupported::Unsafe | Unsupported::NoConverter)
        ),
        "standard_conforming_strings" => !matches!(
            normalise(value).as_str(),
            "on" | "true" | "yes" | "1" | "t" | "y"
        ),
        _ => false,
    }
}

/// The settings `unsafe_setting` judges, which the server reports in ParameterStatus.
pub fn watched(name: &str) -> bool {
    name.eq_ignore_ascii_case("client_encoding")
        || name.eq_ignore_ascii_case("standard_conforming_strings")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ascii_reads_the_same() {
        assert!(reads_the_same(b"SELECT f($1) FROM t WHERE a = 'x'"));
        assert!(!reads_the_same(b"SELECT 'a\\' OR 1=1"));
        assert!(!reads_the_same("SELECT 'é'".as_bytes()));
    }

    #[test]
    fn judges_encodings_and_string_syntax() {
        for bad in [
            "SJIS",
            "Shift_JIS",
            "BIG5",
            "GBK",
            "UHC",
            "GB18030",
            "JOHAB",
            "WIN932",
        ] {
            assert!(unsafe_setting("client_encoding", bad), "{bad}");
        }
        for bad in ["EUC_TW", "MULE_INTERNAL"] {
            assert!(unsafe_setting("client_encoding", bad), "{bad}");
        }
        for good in [
            "UTF8",
            "utf-8",
            "LATIN1",
            "EUC_JP",
            "SQL_ASCII",
            "WIN1252",
            "nonsense",
        ] {
            assert!(!unsafe_setting("client_encoding", good), "{good}");
        }
        assert!(unsafe_setting("standard_conforming_strings", "off"));
        assert!(!unsafe_setting("standard_conforming_strings", "on"));
        assert!(!unsafe_setting("statement_timeout", "0"));
    }
}

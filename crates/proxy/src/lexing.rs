//! Session settings that change how the server splits a query string into tokens, which
//! statement analysis must agree with byte for byte: a client encoding whose multi-byte
//! characters can contain the bytes of `\` or `'` (PostgreSQL's client-only encodings SJIS,
//! BIG5, GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004), and `standard_conforming_strings = off`
//! (backslashes escape quotes in ordinary literals). Under either, text the analyser reads as
//! one literal can be several statements to the server. Gatehouse refuses them at startup,
//! refuses to go on when the server reports them (ParameterStatus, a probe), and confirms
//! them with the server after anything that could have changed them.

/// Encoding names and aliases PostgreSQL accepts for the unsafe client encodings, normalised
/// as PostgreSQL does (lower case, only letters and digits).
const UNSAFE_ENCODINGS: &[&str] = &[
    "big5",
    "cp932",
    "cp936",
    "cp949",
    "cp950",
    "gb18030",
    "gbk",
    "johab",
    "mskanji",
    "shiftjis",
    "shiftjis2004",
    "sjis",
    "uhc",
    "win1361",
    "win932",
    "win936",
    "win949",
    "win950",
    "windows932",
    "windows936",
    "windows949",
    "windows950",
];

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
        "client_encoding" => UNSAFE_ENCODINGS.contains(&normalise(value).as_str()),
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
        for good in ["UTF8", "utf-8", "LATIN1", "EUC_JP", "SQL_ASCII", "WIN1252"] {
            assert!(!unsafe_setting("client_encoding", good), "{good}");
        }
        assert!(unsafe_setting("standard_conforming_strings", "off"));
        assert!(!unsafe_setting("standard_conforming_strings", "on"));
        assert!(!unsafe_setting("statement_timeout", "0"));
    }
}

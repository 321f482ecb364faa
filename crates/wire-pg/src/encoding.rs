//! Client encodings: turning the text of a session's messages into Unicode for analysis, and
//! Unicode (a masked value, a redacted error text) back into the client's bytes.
//!
//! The server converts every text it receives from `client_encoding` and sends every text in
//! it (PostgreSQL docs, "Character Set Support"), so the bytes on the wire are in that
//! encoding: query strings, names in Parse/Bind/Describe/Close/Execute, error and notice
//! fields, result values in text format and text-like values in binary format.
//!
//! What this module guarantees, and what the analysis relies on: text decoded for analysis
//! has the same *ASCII skeleton* as the bytes the server reads. PostgreSQL's scanner gives
//! meaning only to ASCII characters (quotes, backslashes, semicolons, operators); every byte
//! of a multi-byte character in the encodings accepted here is ≥ 0x80. A decoder that would
//! swallow an ASCII byte into a character (GB18030's four-byte forms, UHC's extended forms)
//! fails the check, and the text is refused. Encodings whose multi-byte characters can hold
//! an ASCII byte (SJIS, BIG5, GBK, UHC, GB18030, JOHAB, SHIFT_JIS_2004) are refused outright,
//! as are those no converter here handles exactly (EUC_TW, EUC_JIS_2004, MULE_INTERNAL).

use std::borrow::Cow;

/// A client encoding Gatehouse can follow exactly. `Copy` and one byte wide, so a session can
/// keep the current one in an atomic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoding(u8);

/// Why an encoding name is not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unsupported {
    /// Multi-byte characters can contain the bytes of `\`, `'` or `"`: the server could read
    /// a different statement than the one analysed.
    Unsafe,
    /// A valid PostgreSQL client encoding without an exact converter here.
    NoConverter,
    /// Not an encoding name PostgreSQL knows (the server refuses it too).
    Unknown,
}

/// The text is not valid in the encoding, or decoding it would change its ASCII skeleton.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError;

/// A character has no representation in the encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EncodeError;

#[derive(Clone, Copy)]
enum Codec {
    Utf8,
    /// ISO 8859-1: every byte is the code point of the same value.
    Latin1,
    /// ISO 8859-9: Latin-1 with six Turkish letters in place of Icelandic ones.
    Latin5,
    /// A WHATWG encoding from `encoding_rs`, checked for an unchanged ASCII skeleton.
    Whatwg(&'static encoding_rs::Encoding),
    /// A WHATWG encoding whose mapping differs from PostgreSQL's for a few characters.
    Patched(&'static encoding_rs::Encoding, &'static [Patch]),
}

/// Where PostgreSQL's conversion maps differ from the WHATWG decoders (found by comparing
/// every one- and two-byte sequence, and EUC_JP's three-byte ones, with `convert_from` on
/// PostgreSQL 15). PostgreSQL's KOI8U is KOI8-U proper (RFC 2319); `encoding_rs`'s is
/// KOI8-RU, with two box-drawing characters replaced by Belarusian letters.
const KOI8U_PATCHES: &[Patch] = &[
    ('\u{045E}', '\u{255D}', b"\xae"),
    ('\u{040E}', '\u{256C}', b"\xbe"),
];
const EUC_CN_PATCHES: &[Patch] = &[
    ('\u{00B7}', '\u{30FB}', b"\xa1\xa4"),
    ('\u{2014}', '\u{2015}', b"\xa1\xaa"),
];
const EUC_JP_PATCHES: &[Patch] = &[('\u{00A6}', '\u{FFE4}', b"\x8f\xa2\xc3")];

/// What the WHATWG decoder gives, what PostgreSQL gives, for these bytes.
type Patch = (char, char, &'static [u8]);

/// PostgreSQL's canonical names (as ParameterStatus reports them) and their codecs.
const TABLE: &[(&str, Codec)] = &[
    ("UTF8", Codec::Utf8),
    // No conversion at all: the client's bytes must be valid in the database encoding,
    // which Gatehouse's catalog connection reads as UTF-8.
    ("SQL_ASCII", Codec::Utf8),
    ("LATIN1", Codec::Latin1),
    ("LATIN2", Codec::Whatwg(encoding_rs::ISO_8859_2)),
    ("LATIN3", Codec::Whatwg(encoding_rs::ISO_8859_3)),
    ("LATIN4", Codec::Whatwg(encoding_rs::ISO_8859_4)),
    ("LATIN5", Codec::Latin5),
    ("LATIN6", Codec::Whatwg(encoding_rs::ISO_8859_10)),
    ("LATIN7", Codec::Whatwg(encoding_rs::ISO_8859_13)),
    ("LATIN8", Codec::Whatwg(encoding_rs::ISO_8859_14)),
    ("LATIN9", Codec::Whatwg(encoding_rs::ISO_8859_15)),
    ("LATIN10", Codec::Whatwg(encoding_rs::ISO_8859_16)),
    ("ISO_8859_5", Codec::Whatwg(encoding_rs::ISO_8859_5)),
    ("ISO_8859_6", Codec::Whatwg(encoding_rs::ISO_8859_6)),
    ("ISO_8859_7", Codec::Whatwg(encoding_rs::ISO_8859_7)),
    ("ISO_8859_8", Codec::Whatwg(encoding_rs::ISO_8859_8)),
    ("WIN1250", Codec::Whatwg(encoding_rs::WINDOWS_1250)),
    ("WIN1251", Codec::Whatwg(encoding_rs::WINDOWS_1251)),
    ("WIN1252", Codec::Whatwg(encoding_rs::WINDOWS_1252)),
    ("WIN1253", Codec::Whatwg(encoding_rs::WINDOWS_1253)),
    ("WIN1254", Codec::Whatwg(encoding_rs::WINDOWS_1254)),
    ("WIN1255", Codec::Whatwg(encoding_rs::WINDOWS_1255)),
    ("WIN1256", Codec::Whatwg(encoding_rs::WINDOWS_1256)),
    ("WIN1257", Codec::Whatwg(encoding_rs::WINDOWS_1257)),
    ("WIN1258", Codec::Whatwg(encoding_rs::WINDOWS_1258)),
    ("WIN866", Codec::Whatwg(encoding_rs::IBM866)),
    ("WIN874", Codec::Whatwg(encoding_rs::WINDOWS_874)),
    ("KOI8R", Codec::Whatwg(encoding_rs::KOI8_R)),
    ("KOI8U", Codec::Patched(encoding_rs::KOI8_U, KOI8U_PATCHES)),
    (
        "EUC_JP",
        Codec::Patched(encoding_rs::EUC_JP, EUC_JP_PATCHES),
    ),
    ("EUC_KR", Codec::Whatwg(encoding_rs::EUC_KR)),
    // EUC-CN is GB 2312 in EUC form, a subset of what the GBK decoder reads; the skeleton
    // check refuses GBK's forms with ASCII trail bytes.
    ("EUC_CN", Codec::Patched(encoding_rs::GBK, EUC_CN_PATCHES)),
];

/// Aliases PostgreSQL accepts (its `pg_encname_tbl`), normalised as it does: lower case,
/// letters and digits only.
const ALIASES: &[(&str, &str)] = &[
    ("unicode", "UTF8"),
    ("iso88591", "LATIN1"),
    ("iso88592", "LATIN2"),
    ("iso88593", "LATIN3"),
    ("iso88594", "LATIN4"),
    ("iso88599", "LATIN5"),
    ("iso885910", "LATIN6"),
    ("iso885913", "LATIN7"),
    ("iso885914", "LATIN8"),
    ("iso885915", "LATIN9"),
    ("iso885916", "LATIN10"),
    ("win", "WIN1251"),
    ("alt", "WIN866"),
    ("koi8", "KOI8R"),
    ("abc", "WIN1258"),
    ("tcvn", "WIN1258"),
    ("tcvn5712", "WIN1258"),
    ("vscii", "WIN1258"),
];

const UNSAFE: &[&str] = &[
    "big5",
    "gb18030",
    "gbk",
    "johab",
    "mskanji",
    "shiftjis",
    "shiftjis2004",
    "sjis",
    "uhc",
];

const NO_CONVERTER: &[&str] = &["euctw", "eucjis2004", "muleinternal"];

fn normalise(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// `win1250` and `windows1250` name the same encoding; so do the code-page aliases of the
/// unsafe Asian encodings (`win932`, `cp936`, …).
fn code_page(n: &str) -> Option<&str> {
    n.strip_prefix("windows")
        .or_else(|| n.strip_prefix("win"))
        .or_else(|| n.strip_prefix("cp"))
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

impl Encoding {
    pub const UTF8: Encoding = Encoding(0);

    /// The encoding PostgreSQL means by `name` (any spelling it accepts).
    pub fn from_name(name: &str) -> Result<Encoding, Unsupported> {
        let n = normalise(name);
        if UNSAFE.contains(&n.as_str()) {
            return Err(Unsupported::Unsafe);
        }
        if NO_CONVERTER.contains(&n.as_str()) {
            return Err(Unsupported::NoConverter);
        }
        let canonical = match code_page(&n) {
            Some("932" | "936" | "949" | "950" | "1361") => return Err(Unsupported::Unsafe),
            Some(_) if n.starts_with("cp") => return Err(Unsupported::Unknown),
            Some(cp) => format!("WIN{cp}"),
            None => ALIASES
                .iter()
                .find(|(a, _)| *a == n)
                .map_or(n.clone(), |(_, c)| (*c).to_owned()),
        };
        TABLE
            .iter()
            .position(|(c, _)| normalise(c) == normalise(&canonical))
            .and_then(|i| u8::try_from(i).ok())
            .map(Encoding)
            .ok_or(Unsupported::Unknown)
    }

    /// The one-byte form (for an atomic); `from_id` undoes it.
    pub fn id(self) -> u8 {
        self.0
    }

    pub fn from_id(id: u8) -> Encoding {
        if usize::from(id) < TABLE.len() {
            Encoding(id)
        } else {
            Encoding::UTF8
        }
    }

    /// PostgreSQL's canonical name.
    pub fn name(self) -> &'static str {
        TABLE.get(usize::from(self.0)).map_or("UTF8", |(n, _)| n)
    }

    fn codec(self) -> Codec {
        TABLE
            .get(usize::from(self.0))
            .map_or(Codec::Utf8, |(_, c)| *c)
    }

    /// Text in this encoding is UTF-8 bytes as they are.
    pub fn is_utf8(self) -> bool {
        matches!(self.codec(), Codec::Utf8)
    }

    /// Decodes text exactly, or fails: invalid bytes, a character with no Unicode
    /// equivalent, or a decoding that would change the ASCII skeleton.
    pub fn decode(self, bytes: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
        if bytes.is_ascii() {
            return std::str::from_utf8(bytes)
                .map(Cow::Borrowed)
                .map_err(|_| DecodeError);
        }
        let text: Cow<'_, str> = match self.codec() {
            Codec::Utf8 => Cow::Borrowed(std::str::from_utf8(bytes).map_err(|_| DecodeError)?),
            Codec::Latin1 => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
            Codec::Latin5 => Cow::Owned(bytes.iter().map(|&b| latin5_char(b)).collect()),
            Codec::Whatwg(e) => e
                .decode_without_bom_handling_and_without_replacement(bytes)
                .ok_or(DecodeError)?,
            Codec::Patched(e, patches) => {
                let t = e
                    .decode_without_bom_handling_and_without_replacement(bytes)
                    .ok_or(DecodeError)?;
                patch(t, patches)
            }
        };
        if same_skeleton(bytes, &text) {
            Ok(text)
        } else {
            Err(DecodeError)
        }
    }

    /// Decodes for display and audit: what cannot be decoded becomes U+FFFD.
    pub fn decode_lossy(self, bytes: &[u8]) -> Cow<'_, str> {
        if let Ok(t) = self.decode(bytes) {
            return t;
        }
        match self.codec() {
            Codec::Whatwg(e) => e.decode_without_bom_handling(bytes).0,
            Codec::Patched(e, patches) => patch(e.decode_without_bom_handling(bytes).0, patches),
            _ => String::from_utf8_lossy(bytes),
        }
    }

    /// Encodes text (a masked or redacted value) into the client's bytes.
    pub fn encode(self, text: &str) -> Result<Cow<'_, [u8]>, EncodeError> {
        if text.is_ascii() {
            return Ok(Cow::Borrowed(text.as_bytes()));
        }
        match self.codec() {
            Codec::Utf8 => Ok(Cow::Borrowed(text.as_bytes())),
            Codec::Latin1 => text
                .chars()
                .map(|c| u8::try_from(u32::from(c)).map_err(|_| EncodeError))
                .collect::<Result<Vec<u8>, _>>()
                .map(Cow::Owned),
            Codec::Latin5 => text
                .chars()
                .map(latin5_byte)
                .collect::<Result<Vec<u8>, _>>()
                .map(Cow::Owned),
            Codec::Whatwg(e) => whatwg_encode(e, text),
            Codec::Patched(e, patches) => {
                let mut out = Vec::with_capacity(text.len());
                let mut buf = [0u8; 4];
                for c in text.chars() {
                    if let Some((_, _, bytes)) = patches.iter().find(|(_, p, _)| *p == c) {
                        out.extend_from_slice(bytes);
                    } else if patches.iter().any(|(w, _, _)| *w == c) {
                        // A character PostgreSQL never decodes to here has no bytes.
                        return Err(EncodeError);
                    } else {
                        out.extend_from_slice(&whatwg_encode(e, c.encode_utf8(&mut buf))?);
                    }
                }
                Ok(Cow::Owned(out))
            }
        }
    }

    /// Encodes text, replacing what the encoding cannot hold with `?` (for texts Gatehouse
    /// writes itself, such as a redacted message).
    pub fn encode_lossy(self, text: &str) -> Vec<u8> {
        if let Ok(b) = self.encode(text) {
            return b.into_owned();
        }
        let mut out = Vec::with_capacity(text.len());
        let mut buf = [0u8; 4];
        for c in text.chars() {
            match self.encode(c.encode_utf8(&mut buf)) {
                Ok(b) => out.extend_from_slice(&b),
                Err(_) => out.push(b'?'),
            }
        }
        out
    }
}

fn whatwg_encode<'a>(
    e: &'static encoding_rs::Encoding,
    text: &'a str,
) -> Result<Cow<'a, [u8]>, EncodeError> {
    let (out, _, had_errors) = e.encode(text);
    if had_errors {
        Err(EncodeError)
    } else {
        Ok(out)
    }
}

/// Decoded text with the WHATWG decoder's characters replaced by PostgreSQL's.
fn patch<'a>(text: Cow<'a, str>, patches: &[Patch]) -> Cow<'a, str> {
    let find = |c: char| patches.iter().find(|(w, _, _)| *w == c).map(|(_, p, _)| *p);
    if !text.chars().any(|c| find(c).is_some()) {
        return text;
    }
    Cow::Owned(text.chars().map(|c| find(c).unwrap_or(c)).collect())
}

/// The six letters where ISO 8859-9 differs from ISO 8859-1.
const LATIN5_DIFF: [(u8, char); 6] = [
    (0xD0, '\u{011E}'),
    (0xDD, '\u{0130}'),
    (0xDE, '\u{015E}'),
    (0xF0, '\u{011F}'),
    (0xFD, '\u{0131}'),
    (0xFE, '\u{015F}'),
];

fn latin5_char(b: u8) -> char {
    LATIN5_DIFF
        .iter()
        .find(|(x, _)| *x == b)
        .map_or(char::from(b), |(_, c)| *c)
}

fn latin5_byte(c: char) -> Result<u8, EncodeError> {
    if let Some((b, _)) = LATIN5_DIFF.iter().find(|(_, x)| *x == c) {
        return Ok(*b);
    }
    match u8::try_from(u32::from(c)) {
        Ok(b) if !LATIN5_DIFF.iter().any(|(x, _)| *x == b) => Ok(b),
        _ => Err(EncodeError),
    }
}

/// Whether `bytes` and `text` have the same ASCII characters in the same order, with a
/// non-ASCII run in one exactly where the other has one.
fn same_skeleton(bytes: &[u8], text: &str) -> bool {
    let mut left = skeleton(bytes.iter().map(|&b| (b < 0x80).then_some(b)));
    let mut right = skeleton(text.chars().map(|c| {
        if c.is_ascii() {
            u8::try_from(u32::from(c)).ok()
        } else {
            None
        }
    }));
    loop {
        match (left.next(), right.next()) {
            (None, None) => return true,
            (a, b) if a == b => {}
            _ => return false,
        }
    }
}

/// ASCII bytes as they are, each run of non-ASCII as one `None`.
fn skeleton(items: impl Iterator<Item = Option<u8>>) -> impl Iterator<Item = Option<u8>> {
    let mut last_was_run = false;
    items.filter(move |i| {
        let run = i.is_none();
        let keep = !(run && last_was_run);
        last_was_run = run;
        keep
    })
}

#[cfg(test)]
mod tests;

//! Mask strategies as configured (`mask = "partial"`), the result format of a column, and
//! [`ColumnMask`], one output column's mask as bound by the proxy from RowDescription.

use crate::error::MaskError;
use crate::types::TypeClass;
use std::fmt;
use std::str::FromStr;

/// How a sensitive value is hidden. What each strategy does per column type is in the crate
/// documentation's table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// Replace the whole value (fixed-width stars for text, so length is not leaked).
    Full,
    /// Keep a small, shape-aware part (email domain, last 4 digits, first character).
    Partial,
    /// Keyed HMAC-SHA256: deterministic, so equal values still join and group together.
    Hash,
    /// SQL NULL.
    Null,
    /// `a***@example.com` for emails, full mask otherwise.
    Email,
    /// `****1111`: the last four alphanumerics.
    Last4,
}

impl Strategy {
    /// The configuration name of the strategy.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Full => "full",
            Strategy::Partial => "partial",
            Strategy::Hash => "hash",
            Strategy::Null => "null",
            Strategy::Email => "email",
            Strategy::Last4 => "last4",
        }
    }
}

impl FromStr for Strategy {
    type Err = MaskError;

    /// Accepts the configuration names, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const ALL: [Strategy; 6] = [
            Strategy::Full,
            Strategy::Partial,
            Strategy::Hash,
            Strategy::Null,
            Strategy::Email,
            Strategy::Last4,
        ];
        ALL.into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| MaskError::UnknownStrategy(s.to_owned()))
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result format of a column, as the client asked for it in Bind (PostgreSQL format codes:
/// 0 = text, 1 = binary; simple-query results are always text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Text,
    Binary,
}

impl Format {
    /// Maps a PostgreSQL format code; any other code is `None` (the caller fails closed).
    pub fn from_code(code: i16) -> Option<Format> {
        match code {
            0 => Some(Format::Text),
            1 => Some(Format::Binary),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Binary => "binary",
        }
    }
}

/// One output column's mask: the strategy from configuration plus what RowDescription says
/// about the column (type OID, format). `tags` travel along for auditing only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMask {
    pub strategy: Strategy,
    pub type_oid: u32,
    pub format: Format,
    pub tags: Vec<String>,
    /// Treat an OID this crate does not know as text (citext, domains over text, `unknown`).
    /// Extension type OIDs differ per database, so only the caller, with the catalog, can
    /// say so; unknown OIDs are otherwise masked to NULL.
    pub treat_as_text: bool,
}

impl ColumnMask {
    /// A mask with no tags, not forcing text treatment.
    pub fn new(strategy: Strategy, type_oid: u32, format: Format) -> Self {
        ColumnMask {
            strategy,
            type_oid,
            format,
            tags: Vec::new(),
            treat_as_text: false,
        }
    }

    /// Adds audit tags.
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags.extend(tags.into_iter().map(Into::into));
        self
    }

    /// Marks the column's type as text-like (see [`ColumnMask::treat_as_text`]).
    pub fn as_text(mut self) -> Self {
        self.treat_as_text = true;
        self
    }

    /// How this column's type is masked.
    pub fn type_class(&self) -> TypeClass {
        TypeClass::of(self.type_oid, self.treat_as_text)
    }
}

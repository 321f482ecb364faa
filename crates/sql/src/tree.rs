//! The one place a query string becomes a parse tree: pg_query behind the crate's size and
//! nesting bounds, with a parser panic contained. Facts (`walk`), lineage and the COPY class
//! all take their statement nodes from here, so one parse can serve all three (see `full`).
//!
//! Not owned here: what a refusal means to each consumer. Facts turn it into one opaque
//! statement (`lib.rs`), lineage into [`LineageError::Unparsed`].

use crate::lineage::LineageError;
use crate::{shape, MAX_SQL_BYTES};
use pg_query::protobuf::RawStmt;

/// Whether the caller already bounded the nesting depth with a `shape::scan` of this text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Depth {
    Checked,
    Unchecked,
}

/// Why a string yielded no tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unparsed {
    /// Over [`MAX_SQL_BYTES`]: not handed to the parser.
    TooLarge,
    /// Over the lexer's depth estimate: not handed to the parser (its C code recurses
    /// without a check).
    TooDeep,
    /// The parser's message.
    Syntax(String),
    /// The parser panicked (caught).
    Panicked,
}

/// The statements of `sql`, in order, as the PostgreSQL grammar splits them.
pub(crate) fn parse(sql: &str, depth: Depth) -> Result<Vec<RawStmt>, Unparsed> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(Unparsed::TooLarge);
    }
    // Each unit of the depth estimate needs a token of at least one byte, so text shorter
    // than the bound cannot exceed it: skip the lexer pass (a tenth of a point query's cost).
    // A lexer error is left to the parser to report.
    if depth == Depth::Unchecked && sql.len() >= shape::MAX_NESTING_UNITS {
        if let Some(s) = shape::scan(sql, false) {
            if s.depth > shape::MAX_NESTING_UNITS {
                return Err(Unparsed::TooDeep);
            }
        }
    }
    match std::panic::catch_unwind(|| pg_query::parse(sql)) {
        Ok(Ok(p)) => Ok(p.protobuf.stmts),
        Ok(Err(e)) => Err(Unparsed::Syntax(e.to_string())),
        Err(_) => Err(Unparsed::Panicked),
    }
}

impl Unparsed {
    /// Whether the parser ran (for the cache's parse counter).
    pub(crate) fn parser_ran(&self) -> bool {
        matches!(self, Unparsed::Syntax(_) | Unparsed::Panicked)
    }

    /// What lineage reports for text that yielded no tree.
    pub(crate) fn lineage_error(&self) -> LineageError {
        LineageError::Unparsed(match self {
            Unparsed::TooLarge => "statement too large".into(),
            Unparsed::TooDeep => "statement nested too deeply".into(),
            Unparsed::Syntax(m) => brief(m),
            Unparsed::Panicked => "parser failed".into(),
        })
    }
}

/// A parser message short enough for a client error (protobuf decoding errors list every
/// level of the tree).
fn brief(msg: &str) -> String {
    if msg.contains("recursion limit reached") {
        return "statement nested too deeply".into();
    }
    let mut end = msg.len().min(200);
    while !msg.is_char_boundary(end) {
        end -= 1;
    }
    msg.get(..end).unwrap_or_default().to_owned()
}

//! The shape of a `COPY … TO STDOUT` statement, for masking its rows: which format, and
//! whether the text format uses the defaults (tab delimiter, `\N` for NULL) that the proxy
//! knows how to rewrite.
//!
//! `copy_out` classifies a statement node of a tree parsed once for facts and lineage
//! (`crate::analyze_full` reports it per statement); [`copy_to_stdout`] parses text itself.

use crate::tree::{self, Depth};
use pg_query::protobuf::node::Node as N;
use pg_query::protobuf::Node;

/// How a COPY TO STDOUT writes its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyOut {
    /// Default text format: tab-separated, `\N` for NULL, backslash escapes.
    DefaultText,
    /// CSV, binary, or text with a custom delimiter or NULL string.
    Other,
}

/// `Some` when `sql` is a single `COPY … TO STDOUT`. Parses the text: where the statement's
/// facts are needed too, [`crate::analyze_full`] gives both from one parse.
pub fn copy_to_stdout(sql: &str) -> Option<CopyOut> {
    let stmts = tree::parse(sql, Depth::Unchecked).ok()?;
    let [one] = stmts.as_slice() else {
        return None;
    };
    copy_out(one.stmt.as_deref()?)
}

/// `Some` when the statement node `stmt` is a `COPY … TO STDOUT`.
pub(crate) fn copy_out(stmt: &Node) -> Option<CopyOut> {
    let N::CopyStmt(c) = stmt.node.as_ref()? else {
        return None;
    };
    if c.is_from || c.is_program || !c.filename.is_empty() {
        return None;
    }
    let mut default_text = true;
    for opt in &c.options {
        let Some(N::DefElem(d)) = opt.node.as_ref() else {
            default_text = false;
            continue;
        };
        let value = match d.arg.as_ref().and_then(|a| a.node.as_ref()) {
            Some(N::String(s)) => s.sval.to_ascii_lowercase(),
            _ => String::new(),
        };
        match d.defname.as_str() {
            "format" if value == "text" => {}
            // Anything else changes the layout or (ENCODING) the bytes of the rows away
            // from what the proxy rewrites: the session's client encoding.
            _ => default_text = false,
        }
    }
    Some(if default_text {
        CopyOut::DefaultText
    } else {
        CopyOut::Other
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_shapes() {
        assert_eq!(
            copy_to_stdout("COPY users TO STDOUT"),
            Some(CopyOut::DefaultText)
        );
        assert_eq!(
            copy_to_stdout("copy (select 1) to stdout with (format text)"),
            Some(CopyOut::DefaultText)
        );
        assert_eq!(
            copy_to_stdout("COPY users TO STDOUT CSV"),
            Some(CopyOut::Other)
        );
        assert_eq!(
            copy_to_stdout("COPY users TO STDOUT WITH (FORMAT binary)"),
            Some(CopyOut::Other)
        );
        assert_eq!(
            copy_to_stdout("COPY users TO STDOUT (DELIMITER '|')"),
            Some(CopyOut::Other)
        );
        assert_eq!(
            copy_to_stdout("COPY users TO STDOUT (ENCODING 'LATIN1')"),
            Some(CopyOut::Other)
        );
        assert_eq!(copy_to_stdout("COPY users FROM STDIN"), None);
        assert_eq!(copy_to_stdout("SELECT 1"), None);
    }
}

//! SQL text → [`StatementFacts`], using the real PostgreSQL grammar (pg_query, PostgreSQL 17).
//!
//! [`analyze`] splits a query string into its statements and describes each one: command
//! class, tables read and written (schema-qualified against the session's `search_path`),
//! columns, WHERE-ness of UPDATE/DELETE, functions and dangerous families, drops, privileges,
//! session changes, dynamic code. It never fails: text that does not parse, or a statement the
//! analyser does not fully understand, yields facts with [`StatementFacts::opaque`] set, which
//! policy refuses. [`FactsCache`] avoids re-analysing statements already seen.
//!
//! One statement, one analysis: [`analyze_full`] (and [`FactsCache::analyze_full`]) also
//! gives, from the same parse tree node, the lineage of the statements a caller asks for and
//! each statement's COPY TO STDOUT class; every parse goes through `tree` (size and nesting
//! bounds, parser panics contained).
//!
//! This crate decides nothing and does no I/O; it knows no catalog, so names are resolved
//! syntactically (see `names`).
//!
//! How completeness is kept: a typed walk (`walk`) understands structure (scopes, CTEs,
//! write targets, WHERE clauses, session and DDL facts), and a structure-blind sweep
//! (`sweep`) over the serialised tree finds every relation and function call anywhere and
//! counts statement nodes; a statement node the walk did not visit makes the facts opaque.
//! Before anything builds a tree, a lexer pass (`shape`) bounds nesting depth (pg_query's C
//! output recurses without a check) and yields the literal-free cache key.
//!
//! Known limits: no catalog, so a function's own body is unknown when it is only *called*
//! (`SELECT my_cleanup()` is a read); `WHERE id > 0`, `WHERE col IS NOT NULL` or an
//! uncorrelated `EXISTS`/`IN (SELECT …)` count as filters; unqualified names resolve to the
//! first schema of the search path (temporary tables shadowing them are the caller's to
//! track); `EXECUTE name` is opaque until the caller substitutes the facts of its PREPARE.
#![forbid(unsafe_code)]

mod cache;
pub mod copy;
mod danger;
mod full;
pub mod lineage;
mod names;
mod plpgsql;
mod quick_key;
mod shape;
mod sweep;
mod tautology;
mod tree;
mod walk;

pub use cache::{CacheStats, FactsCache};
pub use full::{analyze_full, LineageRequest, StatementAnalysis};
pub use model::facts::{CommandClass, DangerFamily, StatementFacts};

use pg_query::protobuf::RawStmt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use tree::{Depth, Unparsed};

/// Larger strings are not analysed (opaque): parse time and tree size grow with the text.
pub const MAX_SQL_BYTES: usize = 8 * 1024 * 1024;

/// How deep code inside code (a DO block creating a function whose body …) is followed before
/// giving up as opaque.
const MAX_NESTING: usize = 4;

/// What the analysis needs to know about the session.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AnalyzeContext {
    /// The session's `search_path`, as the server would list it (`"$user"` entries allowed).
    pub search_path: Vec<String>,
}

impl Default for AnalyzeContext {
    /// PostgreSQL's default: `"$user", public`.
    fn default() -> Self {
        AnalyzeContext {
            search_path: vec!["$user".into(), "public".into()],
        }
    }
}

/// The facts of every statement in a query string, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Analysis {
    /// One entry per statement; a string that does not parse is one opaque entry. Empty for a
    /// string with no statement (only whitespace, comments or semicolons).
    pub statements: Vec<StatementFacts>,
    /// The parser's message when the string did not parse.
    pub error: Option<String>,
}

/// Analyse a query string (one or many statements). Pure and panic-free.
pub fn analyze(sql: &str, ctx: &AnalyzeContext) -> Analysis {
    let no_vars = BTreeSet::new();
    let inner = Ctx {
        search_path: &ctx.search_path,
        vars: &no_vars,
        depth: 0,
    };
    analyze_with(sql, &inner).0
}

/// The session-independent part of the context plus what nested code adds.
pub(crate) struct Ctx<'a> {
    pub search_path: &'a [String],
    /// PL/pgSQL variables and routine parameters visible to the SQL being analysed.
    pub vars: &'a BTreeSet<String>,
    pub depth: usize,
}

/// [`analyze`], also saying per statement whether its facts depend on literal values.
pub(crate) fn analyze_with(sql: &str, ctx: &Ctx<'_>) -> (Analysis, Vec<bool>) {
    let w = walk_tree(sql, &tree::parse(sql, Depth::Unchecked), ctx);
    (w.analysis, w.literal_sensitive)
}

/// What one walk over a parsed string yields, per statement in order.
pub(crate) struct Walked {
    pub analysis: Analysis,
    /// Whether the statement's facts depend on literal values (see `cache`).
    pub literal_sensitive: Vec<bool>,
    /// The statement's COPY TO STDOUT class, from the same node.
    pub copy_out: Vec<Option<copy::CopyOut>>,
}

/// Walk every statement of a string parsed (or refused) by [`tree::parse`].
pub(crate) fn walk_tree(sql: &str, tree: &Result<Vec<RawStmt>, Unparsed>, ctx: &Ctx<'_>) -> Walked {
    let stmts = match tree {
        Ok(stmts) => stmts,
        Err(u) => return opaque_string(sql, u),
    };
    let mut w = Walked {
        analysis: Analysis {
            statements: Vec::with_capacity(stmts.len()),
            error: None,
        },
        literal_sensitive: Vec::with_capacity(stmts.len()),
        copy_out: Vec::with_capacity(stmts.len()),
    };
    for raw in stmts {
        let text = if stmts.len() == 1 {
            clean(sql)
        } else {
            statement_text(sql, raw.stmt_location, raw.stmt_len)
        };
        let (facts, lit) = match raw.stmt.as_deref() {
            Some(node) => walk::statement(node, text, ctx),
            None => (StatementFacts::opaque(text, "empty statement"), true),
        };
        w.analysis.statements.push(facts);
        w.literal_sensitive.push(lit);
        w.copy_out
            .push(raw.stmt.as_deref().and_then(copy::copy_out));
    }
    w
}

/// Facts of code nested in a statement (a routine or DO body), one level deeper.
pub(crate) fn nested(sql: &str, parent: &Ctx<'_>, vars: &BTreeSet<String>) -> Vec<StatementFacts> {
    if parent.depth >= MAX_NESTING {
        return vec![StatementFacts::opaque(sql, "code nested too deeply")];
    }
    let ctx = Ctx {
        search_path: parent.search_path,
        vars,
        depth: parent.depth + 1,
    };
    analyze_with(sql, &ctx).0.statements
}

/// One opaque statement for a string that yielded no tree.
fn opaque_string(sql: &str, why: &Unparsed) -> Walked {
    let (reason, error) = match why {
        Unparsed::TooLarge => ("statement too large to analyse".to_owned(), None),
        Unparsed::TooDeep => ("statement nested too deeply to analyse".to_owned(), None),
        Unparsed::Syntax(msg) => (format!("does not parse: {msg}"), Some(msg.clone())),
        Unparsed::Panicked => ("parser failed".to_owned(), None),
    };
    // Keep huge texts out of the facts (and the audit trail): the first 4 KiB say enough.
    let mut end = sql.len().min(if sql.len() > MAX_SQL_BYTES {
        4096
    } else {
        sql.len()
    });
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    let text = clean(sql.get(..end).unwrap_or_default());
    Walked {
        analysis: Analysis {
            statements: vec![StatementFacts::opaque(text, &reason)],
            error,
        },
        literal_sensitive: vec![true],
        copy_out: vec![None],
    }
}

/// One statement's text out of a multi-statement string (pg_query gives byte offsets; a
/// length of 0 means "to the end").
fn statement_text(sql: &str, location: i32, len: i32) -> &str {
    let start = usize::try_from(location).unwrap_or(0);
    let end = match usize::try_from(len) {
        Ok(0) | Err(_) => sql.len(),
        Ok(l) => start.saturating_add(l).min(sql.len()),
    };
    clean(sql.get(start..end).unwrap_or(sql))
}

/// Statement text as recorded: surrounding whitespace and trailing semicolons removed.
pub(crate) fn clean(text: &str) -> &str {
    text.trim()
        .trim_end_matches(|c: char| c == ';' || c.is_whitespace())
}

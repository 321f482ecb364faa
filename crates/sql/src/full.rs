//! One statement, one analysis: facts, lineage and the COPY TO STDOUT class of every
//! statement of a query string, all taken from the same parse tree node, so the three always
//! describe the same statement and the string is parsed once.
//!
//! Lineage needs a catalog and costs a walk, so it is computed only for the statements a
//! caller's predicate asks for ([`LineageRequest::wanted`]), with the search path that
//! predicate returns for that statement: a `SET search_path` earlier in a string applies to
//! the statements after it, so the path is per statement.
//!
//! [`analyze_full`] parses every time; [`crate::FactsCache::analyze_full`] serves the facts
//! from the cache and parses only to trace lineage (or on a miss, once for both).
//!
//! Not owned here: which statements need lineage (the caller's predicate decides), and what
//! to do with a lineage error (the caller refuses, see [`LineageError`]).

use crate::copy::CopyOut;
use crate::lineage::{self, Catalog, Lineage, LineageError};
use crate::tree::{self, Depth, Unparsed};
use crate::{walk_tree, AnalyzeContext, Ctx, StatementFacts};
use pg_query::protobuf::RawStmt;
use std::collections::BTreeSet;

/// One statement of a query string: its facts, and from the same parse tree node, its
/// lineage (when asked for) and its COPY TO STDOUT class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatementAnalysis {
    /// As [`crate::analyze`] gives them.
    pub facts: StatementFacts,
    /// `None` when not asked for (no [`LineageRequest`], or its `wanted` returned `None` for
    /// this statement). `Some(Err(_))` fails closed: the text did not parse (or was refused
    /// before parsing), the walker could not prove the lineage, or a cached analysis and
    /// the parse disagree on how the string splits into statements.
    pub lineage: Option<Result<Lineage, LineageError>>,
    /// `Some` when the statement is a `COPY … TO STDOUT` (see [`crate::copy`]). Known for
    /// every statement, whether or not its lineage was asked for.
    pub copy_out: Option<CopyOut>,
}

/// What lineage needs, and which statements need it.
pub struct LineageRequest<'a> {
    /// The upstream schema (with the session's temporary relations, if any).
    pub catalog: &'a dyn Catalog,
    /// Called exactly once per statement, in statement order, with its index and facts:
    /// the search path to trace its lineage with (`"$user"` already substituted, see
    /// [`lineage::lineage`]), or `None` for no lineage. Being `FnMut`, it may carry state
    /// from one statement to the next (a `SET search_path` earlier in the string).
    pub wanted: &'a mut dyn FnMut(usize, &StatementFacts) -> Option<Vec<String>>,
}

/// Facts of every statement of `sql` (as [`crate::analyze`]), and for those `lineage`
/// asks for, their lineage (as [`lineage::lineage`] on the statement's text), with the COPY
/// class: all from one parse. Pure and panic-free.
pub fn analyze_full(
    sql: &str,
    ctx: &AnalyzeContext,
    lineage: Option<LineageRequest<'_>>,
) -> Vec<StatementAnalysis> {
    let no_vars = BTreeSet::new();
    let inner = Ctx {
        search_path: &ctx.search_path,
        vars: &no_vars,
        depth: 0,
    };
    let tree = tree::parse(sql, Depth::Unchecked);
    let walked = walk_tree(sql, &tree, &inner);
    let statements = walked.analysis.statements;
    let traced = match lineage {
        Some(mut request) => {
            let paths = wanted_paths(&statements, &mut request);
            trace_all(&tree, paths, request.catalog)
        }
        None => none_traced(statements.len()),
    };
    zip(statements, walked.copy_out, traced)
}

/// Ask `wanted` about every statement, in order.
pub(crate) fn wanted_paths(
    statements: &[StatementFacts],
    request: &mut LineageRequest<'_>,
) -> Vec<Option<Vec<String>>> {
    statements
        .iter()
        .enumerate()
        .map(|(i, f)| (request.wanted)(i, f))
        .collect()
}

/// The lineage of each statement that has a path, from its node of `tree`.
///
/// `paths` has one entry per statement of the facts the caller holds. When those facts came
/// from a cache, `tree` is a fresh parse of the same text: if it splits into another number
/// of statements, no node can be matched to its facts with certainty, and every statement
/// asked for fails closed.
pub(crate) fn trace_all(
    tree: &Result<Vec<RawStmt>, Unparsed>,
    paths: Vec<Option<Vec<String>>>,
    catalog: &dyn Catalog,
) -> Vec<Option<Result<Lineage, LineageError>>> {
    trace_all_noting(tree, paths, catalog).0
}

/// [`trace_all`], and whether no statement's lineage depended on a constant's value.
pub(crate) fn trace_all_noting(
    tree: &Result<Vec<RawStmt>, Unparsed>,
    paths: Vec<Option<Vec<String>>>,
    catalog: &dyn Catalog,
) -> (Vec<Option<Result<Lineage, LineageError>>>, bool) {
    let stmts = match tree {
        Ok(stmts) if stmts.len() == paths.len() => stmts,
        Ok(_) => {
            let disagree = || LineageError::Unsupported("statement split disagrees".into());
            let traced = paths
                .iter()
                .map(|p| p.as_ref().map(|_| Err(disagree())))
                .collect();
            return (traced, false);
        }
        Err(u) => {
            let traced = paths
                .iter()
                .map(|p| p.as_ref().map(|_| Err(u.lineage_error())))
                .collect();
            return (traced, false);
        }
    };
    let mut literal_free = true;
    let traced = stmts
        .iter()
        .zip(paths)
        .map(|(raw, path)| {
            let path = path?;
            Some(match raw.stmt.as_deref() {
                Some(node) => {
                    let (r, literal) = lineage::trace_noting(node, &path, catalog);
                    literal_free &= !literal;
                    r
                }
                None => Err(LineageError::Unparsed("empty statement".into())),
            })
        })
        .collect();
    (traced, literal_free)
}

pub(crate) fn none_traced(n: usize) -> Vec<Option<Result<Lineage, LineageError>>> {
    std::iter::repeat_with(|| None).take(n).collect()
}

/// One [`StatementAnalysis`] per statement. The lists have one entry per statement by
/// construction; the facts drive the zip all the same, so none could ever be dropped.
pub(crate) fn zip(
    statements: Vec<StatementFacts>,
    copy_out: Vec<Option<CopyOut>>,
    traced: Vec<Option<Result<Lineage, LineageError>>>,
) -> Vec<StatementAnalysis> {
    let mut copy_out = copy_out.into_iter();
    let mut traced = traced.into_iter();
    statements
        .into_iter()
        .map(|facts| StatementAnalysis {
            facts,
            lineage: traced.next().flatten(),
            copy_out: copy_out.next().flatten(),
        })
        .collect()
}

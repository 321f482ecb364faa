//! Column lineage: for every output column of a statement, the source columns whose values flow
//! into it, so the proxy can mask results by where values *come from* rather than by output
//! column names (which `lower(email)`, `email || ''` or `row_to_json(u)` would slip past).
//!
//! [`lineage`] parses one statement with the real PostgreSQL grammar and walks it with a
//! [`Catalog`] the caller supplies (loaded from the upstream server): `SELECT *` and `t.*`
//! expand through it, views expand through their definitions, unqualified names resolve
//! against the `search_path` as the server would. Relations of `pg_catalog` and
//! `information_schema` hold metadata, not user values: they are leaves without sources
//! (see `system`), so catalog introspection (psql's `\d`, ORM inspectors) traces cleanly.
//! Besides the outputs it reports the side channels: columns used to filter, join, group or
//! order ([`Lineage::predicate_columns`]), columns whose values a write copies elsewhere
//! ([`Lineage::written_from`]), and functions whose bodies are unknown
//! ([`Lineage::unknown_functions`]).
//!
//! It fails closed: anything it does not understand in a position that could carry values is
//! [`LineageError::Unsupported`], a relation the catalog does not know is
//! [`LineageError::UnknownRelation`], a system relation holding sample values of user
//! columns (`pg_stats` and kin) is [`LineageError::SystemSamples`], and text that does not
//! parse is [`LineageError::Unparsed`]. The caller refuses those (unless the principal may
//! unmask everything). This module decides nothing and does no I/O.
//!
//! Not owned here: which columns are sensitive, masking, and tracking state across
//! statements (cursors, prepared statements, temporary tables) — see the `statement` child
//! for what DECLARE, PREPARE, FETCH and EXECUTE return.

mod builtins;
mod call;
mod colname;
mod cte;
mod dml;
mod expr;
mod flow;
mod from;
mod json;
mod memory;
mod relation;
mod resolve;
mod select;
mod srf;
mod statement;
mod system;
mod tablefunc;
#[cfg(test)]
mod tests;
mod walker;

pub use memory::MemoryCatalog;

/// Whether `name`, dotted as in `StatementFacts::functions`, is a built-in whose result
/// depends only on its arguments and which has no effect on the session (unqualified or in
/// `pg_catalog`).
pub fn is_builtin(name: &str) -> bool {
    let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
    builtins::is_builtin(&parts)
}

/// Whether `name`, dotted as in `StatementFacts::functions`, is a built-in that runs no SQL of
/// its own, so it cannot change the session's settings (search path, client encoding), its
/// temporary objects or the schema: the pure built-ins of [`is_builtin`] and effectful ones
/// such as `pg_sleep`, `pg_notify`, advisory locks and the large-object API.
pub fn is_inert_builtin(name: &str) -> bool {
    let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
    builtins::is_inert_builtin(&parts)
}

use pg_query::protobuf::Node;
use serde::Serialize;
use std::collections::BTreeSet;
use std::fmt;

/// What the walker needs to know about the upstream schema. Implementations are snapshots the
/// proxy loads from the server; lookups must be cheap (they are made per statement).
pub trait Catalog {
    /// Columns of a relation (table, view, materialized view, foreign table) in order, or
    /// `None` if unknown. `schema` is already resolved.
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>>;
    /// View definition SQL (`pg_get_viewdef`) if the relation is a view or materialized
    /// view. Load it with a `search_path` of only `pg_catalog` so that every name in it
    /// comes back schema-qualified; unqualified names are resolved with the session's path.
    fn view_definition(&self, schema: &str, table: &str) -> Option<String>;
    /// Functions outside the built-in list that the deployment vouches for (dotted name as
    /// written, lower case): the result depends only on the arguments and the function has
    /// no effects. Calls to them are not listed in [`Lineage::unknown_functions`].
    fn is_pure_function(&self, _name: &str) -> bool {
        false
    }
    /// An identifier of this snapshot's contents: two catalogs with the same generation
    /// answer every lookup alike, so lineage traced against one holds for the other. `None`
    /// (the default) means lineage traced against it is never reused.
    fn generation(&self) -> Option<u64> {
        None
    }
}

/// One column of one relation, schema-qualified.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ColumnRef {
    pub schema: String,
    pub table: String,
    pub column: String,
}

impl ColumnRef {
    pub fn new(schema: &str, table: &str, column: &str) -> Self {
        ColumnRef {
            schema: schema.to_owned(),
            table: table.to_owned(),
            column: column.to_owned(),
        }
    }
}

impl fmt::Display for ColumnRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.schema, self.table, self.column)
    }
}

/// Where one output column's values come from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OutputColumn {
    /// The column name the server will report (PostgreSQL's own naming rules).
    pub name: String,
    /// Every source column whose value flows into this output.
    pub sources: BTreeSet<ColumnRef>,
    /// The output *is* a source column's value unchanged (plain reference, alias, cast, or
    /// the same position of every arm of a set operation), so a mask applies exactly. False
    /// when derived through an expression, function or aggregate: mask whole and run value
    /// detectors. Several sources with `direct` mean "one of these, unchanged" (UNION arms).
    pub direct: bool,
    /// A whole row became one value (`row_to_json(u)`, `u::text`, `ROW(u.*)`,
    /// `json_agg(u)`, `query_to_xml(…)`); `sources` then holds every column of the row.
    pub whole_row: bool,
}

/// The lineage of one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Lineage {
    /// In result order, matching RowDescription positions. Empty for statements that return
    /// no rows. The caller must check the count against the RowDescription it receives.
    pub outputs: Vec<OutputColumn>,
    /// Columns used in WHERE, JOIN ON/USING, GROUP BY, HAVING, ORDER BY, DISTINCT ON,
    /// window PARTITION/ORDER, aggregate FILTER/ORDER and LIMIT: side channels. Predicates
    /// inside view definitions are not listed (the user cannot vary them).
    pub predicate_columns: BTreeSet<ColumnRef>,
    /// (target column, sources) for writes that copy values: INSERT … SELECT, UPDATE … SET,
    /// ON CONFLICT DO UPDATE, MERGE, CREATE TABLE AS / SELECT INTO / materialized views,
    /// ALTER COLUMN … USING and generated columns. Only targets with at least one source.
    pub written_from: Vec<(ColumnRef, BTreeSet<ColumnRef>)>,
    /// Functions and operators called whose bodies are unknown (not a built-in that only
    /// transforms its arguments), as written, lower case. Recorded whether or not columns
    /// are passed: a body may also read tables itself.
    pub unknown_functions: BTreeSet<String>,
}

/// Why no lineage could be computed. Every variant means "refuse unless the principal may
/// unmask everything the statement touches".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineageError {
    /// The text does not parse (or is too large or too deeply nested to parse safely).
    Unparsed(String),
    /// A construct the walker does not understand in a position that could carry values.
    Unsupported(String),
    /// A relation the catalog does not know (qualified name as resolved, or as written).
    UnknownRelation(String),
    /// A system relation whose columns hold copies of user values was read (qualified name
    /// as resolved): the statistics relations `pg_catalog.pg_stats`, `pg_stats_ext`,
    /// `pg_stats_ext_exprs`, `pg_statistic`, `pg_statistic_ext_data` (most common values,
    /// histogram bounds) and `pg_catalog.pg_largeobject`. No column mask can name those
    /// values, so the whole statement is refused unless the principal may unmask every
    /// sensitive column. Every other `pg_catalog` and `information_schema` relation is
    /// metadata whose columns have no sources.
    SystemSamples(String),
}

impl fmt::Display for LineageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineageError::Unparsed(m) => write!(f, "statement does not parse: {m}"),
            LineageError::Unsupported(m) => write!(f, "lineage not provable: {m}"),
            LineageError::UnknownRelation(r) => write!(f, "unknown relation {r}"),
            LineageError::SystemSamples(r) => {
                write!(f, "{r} holds sample values of user columns")
            }
        }
    }
}

impl std::error::Error for LineageError {}

pub(crate) type Result<T> = std::result::Result<T, LineageError>;

pub(crate) fn unsupported<T>(what: impl Into<String>) -> Result<T> {
    Err(LineageError::Unsupported(what.into()))
}

/// The lineage of one statement. A string with no statement yields an empty [`Lineage`]; a
/// string with several is `Unsupported` (use [`lineage_each`]). To get the facts of the same
/// statement from the same parse, use [`crate::analyze_full`] or
/// [`crate::FactsCache::analyze_full`].
///
/// `search_path` as the session has it. `"$user"` entries are skipped, since the user is not
/// known here: substitute the session user's name first to resolve names in a schema of
/// that name exactly as the server does.
pub fn lineage(
    sql: &str,
    search_path: &[String],
    catalog: &dyn Catalog,
) -> std::result::Result<Lineage, LineageError> {
    let stmts = parse(sql)?;
    match stmts.as_slice() {
        [] => Ok(Lineage::default()),
        [one] => trace(one, search_path, catalog),
        many => unsupported(format!(
            "{} statements in one string; analyse them one by one",
            many.len()
        )),
    }
}

/// The lineage of every statement in a string, in order (each statement's RowDescription
/// matches its entry). Statements are analysed against the same catalog: a table created
/// by an earlier statement in the string is unknown to later ones.
pub fn lineage_each(
    sql: &str,
    search_path: &[String],
    catalog: &dyn Catalog,
) -> std::result::Result<Vec<Lineage>, LineageError> {
    parse(sql)?
        .iter()
        .map(|s| trace(s, search_path, catalog))
        .collect()
}

/// The lineage of one statement node of a tree parsed elsewhere (by `crate::tree::parse`).
pub(crate) fn trace(stmt: &Node, search_path: &[String], catalog: &dyn Catalog) -> Result<Lineage> {
    trace_noting(stmt, search_path, catalog).0
}

/// [`trace`], and whether the result depends on a constant's value (then it holds for this
/// text only, not for every text of its literal-free shape).
pub(crate) fn trace_noting(
    stmt: &Node,
    search_path: &[String],
    catalog: &dyn Catalog,
) -> (Result<Lineage>, bool) {
    let mut w = walker::Walker::new(catalog, search_path);
    let r = w.run(stmt);
    (r, w.literal_dependent)
}

/// Parse into statement nodes, with the crate's size and nesting bounds (see `crate::tree`).
pub(crate) fn parse(sql: &str) -> Result<Vec<Node>> {
    crate::tree::parse(sql, crate::tree::Depth::Unchecked)
        .map_err(|u| u.lineage_error())?
        .into_iter()
        .map(|raw| {
            raw.stmt
                .map(|b| *b)
                .ok_or_else(|| LineageError::Unparsed("empty statement".into()))
        })
        .collect()
}

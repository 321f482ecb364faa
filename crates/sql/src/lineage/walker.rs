//! The walker's state for one statement: the catalog and path it resolves against, the CTEs
//! in scope, the side-channel facts it accumulates, and the bounds that keep a hostile
//! statement or catalog from making it recurse or iterate without end.
//!
//! Scopes are not stored here: they are passed down as `&[&[Ns]]` (query levels, outermost
//! first), so a subquery sees exactly the levels that enclose it and a view body sees none.

use super::flow::{Flow, Rel};
use super::{unsupported, Catalog, ColumnRef, Lineage, Result};
use pg_query::protobuf::Node;
use std::collections::{BTreeSet, HashMap};

/// How deep views within views and queries within `query_to_xml` strings are followed
/// (PostgreSQL has no such limit). Also ends a cycle a broken catalog could present.
const MAX_DEPTH: usize = 8;

/// Bound on the walker's recursion, in units of stack: an expression level costs
/// [`EXPR_COST`], a query body [`QUERY_COST`] (it spans several frames). One statement's tree
/// is already bounded (pg_query's protobuf decoding stops at 100 levels), but views and
/// query strings stack their trees on top of each other.
///
/// Measured: a query level takes 2.4 KiB of stack in a release build, and parsing a
/// statement near the parser's depth limit up to 256 KiB (prost's decoder recurses). 600 units
/// is at most 100 query levels, and a nested text is parsed only below 400 units, so a
/// release build stays under ~600 KiB of a tokio worker's 2 MiB. Debug builds use about four
/// times the stack per level and ~2 MiB for such a parse alone: adversarial nesting there
/// needs a larger `RUST_MIN_STACK`.
const MAX_NESTING: usize = 600;
const MAX_NESTING_TO_PARSE: usize = 400;
const EXPR_COST: usize = 1;
const QUERY_COST: usize = 6;

/// Upper bound on query bodies evaluated per statement (recursive CTEs are evaluated until
/// they settle, and nested ones multiply).
const MAX_WORK: usize = 5_000;

/// Query levels visible at a point, outermost first.
pub(crate) type Levels<'a> = [&'a [super::flow::Ns]];

/// A CTE in scope: None while a `WITH RECURSIVE` member is not yet evaluated.
pub(crate) struct Cte {
    pub name: String,
    pub rel: Option<Rel>,
}

pub(crate) struct Walker<'a> {
    pub catalog: &'a dyn Catalog,
    pub search_path: &'a [String],
    pub ctes: Vec<Cte>,
    pub predicates: BTreeSet<ColumnRef>,
    /// Above zero while walking a view body: its own filters are not the user's.
    pub hide_predicates: usize,
    pub written: Vec<(ColumnRef, BTreeSet<ColumnRef>)>,
    pub unknown: BTreeSet<String>,
    /// Views and `query_to_xml` strings entered.
    pub depth: usize,
    /// View bodies already expanded in this statement (a view used twice is walked once).
    pub views: HashMap<(String, String), Rel>,
    work: usize,
    nesting: usize,
    /// A constant's value decided something (a `query_to_xml` string, an `ORDER BY 2`
    /// position): the result holds for this text only, not for its literal-free shape.
    pub literal_dependent: bool,
}

impl<'a> Walker<'a> {
    pub fn new(catalog: &'a dyn Catalog, search_path: &'a [String]) -> Self {
        Walker {
            catalog,
            search_path,
            ctes: Vec::new(),
            predicates: BTreeSet::new(),
            hide_predicates: 0,
            written: Vec::new(),
            unknown: BTreeSet::new(),
            depth: 0,
            views: HashMap::new(),
            work: 0,
            nesting: 0,
            literal_dependent: false,
        }
    }

    /// The lineage of one top-level statement.
    pub fn run(&mut self, stmt: &Node) -> Result<Lineage> {
        let rel = self.statement(stmt)?;
        let outputs = rel
            .into_iter()
            .map(|c| super::OutputColumn {
                name: c.name,
                sources: c.flow.sources,
                direct: c.flow.direct,
                whole_row: c.flow.whole_row,
            })
            .collect();
        // A recursive CTE's body is walked once per iteration: keep each write once.
        let mut written = Vec::with_capacity(self.written.len());
        for w in std::mem::take(&mut self.written) {
            if !written.contains(&w) {
                written.push(w);
            }
        }
        Ok(Lineage {
            outputs,
            predicate_columns: std::mem::take(&mut self.predicates),
            written_from: written,
            unknown_functions: std::mem::take(&mut self.unknown),
        })
    }

    /// Count one query body against the work bound.
    pub fn tick(&mut self) -> Result<()> {
        self.work += 1;
        if self.work > MAX_WORK {
            return unsupported("statement too complex to trace");
        }
        Ok(())
    }

    /// Open one query body; pair with [`Self::close`].
    pub fn open(&mut self) -> Result<()> {
        self.tick()?;
        self.descend(QUERY_COST)
    }

    pub fn close(&mut self) {
        self.ascend(QUERY_COST);
    }

    /// Enter one expression level; pair with [`Self::leave_expr`].
    pub fn enter_expr(&mut self) -> Result<()> {
        self.descend(EXPR_COST)
    }

    pub fn leave_expr(&mut self) {
        self.ascend(EXPR_COST);
    }

    fn descend(&mut self, cost: usize) -> Result<()> {
        if self.nesting + cost > MAX_NESTING {
            return unsupported("statement nested too deeply to trace");
        }
        self.nesting += cost;
        Ok(())
    }

    fn ascend(&mut self, cost: usize) {
        self.nesting = self.nesting.saturating_sub(cost);
    }

    /// Evaluate an expression used as a filter, join condition, grouping or ordering key.
    pub fn predicate(&mut self, node: &Node, lv: &Levels<'_>) -> Result<()> {
        let f = self.expr(node, lv)?;
        self.note_predicate(f);
        Ok(())
    }

    pub fn opt_predicate(&mut self, node: Option<&Node>, lv: &Levels<'_>) -> Result<()> {
        match node {
            Some(n) => self.predicate(n, lv),
            None => Ok(()),
        }
    }

    pub fn note_predicate(&mut self, f: Flow) {
        if self.hide_predicates == 0 {
            self.predicates.extend(f.sources);
        }
    }

    /// Record a write of `value` into `target` (None: a view column that is not a plain
    /// column of one table, so where the value lands is unknown).
    pub fn wrote(&mut self, target: Option<&ColumnRef>, value: &Flow) -> Result<()> {
        match target {
            Some(t) if !value.sources.is_empty() => {
                self.written.push((t.clone(), value.sources.clone()));
                Ok(())
            }
            Some(_) => Ok(()),
            None => unsupported("write through a view column that is not a plain column"),
        }
    }

    /// Enter a nested query text (view body, `query_to_xml` argument): no outer scopes or
    /// CTEs are visible in it.
    fn enter(&mut self) -> Result<Vec<Cte>> {
        if self.depth >= MAX_DEPTH || self.nesting > MAX_NESTING_TO_PARSE {
            return unsupported("views or query strings nested too deeply");
        }
        self.depth += 1;
        Ok(std::mem::take(&mut self.ctes))
    }

    /// Walk a SELECT given as text (a view body, a `query_to_xml` argument), which the
    /// server runs on its own: no outer scope, no CTEs of the caller. Depth is checked before
    /// parsing, as the parser needs stack too.
    pub fn select_text(&mut self, sql: &str, what: &str) -> Result<Rel> {
        let saved = self.enter()?;
        let out = self.select_text_body(sql, what);
        self.leave(saved);
        out
    }

    fn select_text_body(&mut self, sql: &str, what: &str) -> Result<Rel> {
        let stmts = super::parse(sql)?;
        let [stmt] = stmts.as_slice() else {
            return unsupported(format!("{what} must hold one statement"));
        };
        if !matches!(stmt.node, Some(pg_query::NodeEnum::SelectStmt(_))) {
            return unsupported(format!("{what} must be a SELECT"));
        }
        self.query(stmt, &[])
    }

    fn leave(&mut self, saved: Vec<Cte>) {
        self.depth = self.depth.saturating_sub(1);
        self.ctes = saved;
    }
}

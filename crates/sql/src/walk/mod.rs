//! The typed walk over one statement's parse tree: what kind of statement it is, which
//! relations it writes, which columns it touches, whether its UPDATE/DELETE/MERGEs are
//! filtered, and the session, DDL and dynamic-code facts (settings that weaken enforcement,
//! safeguards turned off, catalog writes).
//!
//! The walk understands structure (scopes, CTE names, write targets); the [`crate::sweep`]
//! guarantees completeness. [`statement`] combines them: every relation the sweep found that
//! the walk did not classify as a write target or a CTE reference is a read, every function
//! call anywhere is recorded, and if the sweep saw more statement nodes than the walk handled,
//! some statement sat where the walk does not look, so the facts become opaque.

mod catalog;
mod ddl;
mod dispatch;
mod expr;
mod json;
mod merge;
mod merge_stmt;
mod query;
mod safeguard;
mod session;
mod tags;
mod weaken;

use crate::names;
use crate::sweep::{self, Sweep};
use crate::tautology::Fold;
use crate::Ctx;
use model::facts::{CommandClass, DangerFamily, StatementFacts};
use pg_query::protobuf::{Node, RangeVar};
use std::collections::HashSet;

pub(crate) use merge::merge;

/// Facts for one statement node plus whether they depend on literal values (in which case a
/// cache keyed by literal-free text must not reuse them).
pub(crate) fn statement(node: &Node, text: &str, ctx: &Ctx<'_>) -> (StatementFacts, bool) {
    let mut w = Walker::new(ctx, text);
    let (class, command) = w.dispatch(node);
    w.facts.class = class;
    w.facts.command = command;
    match sweep::sweep(node) {
        Ok(s) => w.finish(s),
        Err(e) => w.opaque(format!("parse tree could not be inspected: {e}")),
    }
    if w.facts.class == CommandClass::Read && w.wrote {
        // `WITH d AS (DELETE …) SELECT …` writes, whatever its top-level keyword.
        w.facts.class = CommandClass::Write;
    }
    let sensitive = w.literal_sensitive || w.fold.literal_sensitive;
    (w.facts, sensitive)
}

/// A name visible in a query scope and the table it stands for (None for subqueries, CTEs
/// and functions in FROM).
#[derive(Debug, Clone)]
struct ScopeRel {
    name: String,
    table: Option<String>,
}

pub(crate) struct Walker<'a> {
    ctx: &'a Ctx<'a>,
    text: &'a str,
    facts: StatementFacts,
    /// Query scopes, innermost last.
    scopes: Vec<Vec<ScopeRel>>,
    /// CTE names visible at this point, innermost last.
    ctes: Vec<String>,
    /// Locations of RangeVars that name CTEs rather than tables.
    cte_refs: HashSet<i64>,
    /// Locations of RangeVars that are write targets.
    written: HashSet<i64>,
    /// Statement nodes handled (compared with the sweep's count).
    stmts_seen: usize,
    /// (has a WHERE, WHERE is a tautology) per UPDATE / DELETE / MERGE.
    filters: Vec<(bool, bool)>,
    fold: Fold<'a>,
    wrote: bool,
    literal_sensitive: bool,
}

impl<'a> Walker<'a> {
    fn new(ctx: &'a Ctx<'a>, text: &'a str) -> Self {
        Walker {
            ctx,
            text,
            facts: StatementFacts {
                text: text.to_owned(),
                ..StatementFacts::default()
            },
            scopes: Vec::new(),
            ctes: Vec::new(),
            cte_refs: HashSet::new(),
            written: HashSet::new(),
            stmts_seen: 0,
            filters: Vec::new(),
            fold: Fold::with_vars(ctx.vars),
            wrote: false,
            literal_sensitive: false,
        }
    }

    fn search_path(&self) -> &[String] {
        self.ctx.search_path
    }

    /// Record the first reason the statement is not understood.
    fn opaque(&mut self, reason: impl Into<String>) {
        if self.facts.opaque.is_none() {
            self.facts.opaque = Some(reason.into());
        }
    }

    fn danger(&mut self, family: DangerFamily) {
        self.facts.dangerous.insert(family);
    }

    /// Mark a relation as a write target and return its qualified name.
    fn write_target(&mut self, rv: &RangeVar) -> String {
        let name = names::range_var(rv, self.search_path());
        self.written.insert(i64::from(rv.location));
        self.facts.tables_written.insert(name.clone());
        name
    }

    /// Fold the sweep's complete lists into the facts.
    fn finish(&mut self, s: Sweep) {
        if s.stmt_nodes != self.stmts_seen {
            self.opaque(format!(
                "{} statement(s) nested where the analyser does not look",
                s.stmt_nodes.saturating_sub(self.stmts_seen)
            ));
        }
        for r in &s.relations {
            if self.cte_refs.contains(&r.location) || self.written.contains(&r.location) {
                continue;
            }
            let name = names::qualify(Some(&r.schema), &r.name, self.ctx.search_path);
            self.facts.tables_read.insert(name);
        }
        for call in &s.calls {
            self.call(call);
        }
        self.settle_filters();
    }

    fn call(&mut self, call: &sweep::CallSite) {
        let name = names::function_name(&call.name);
        if let Some(family) = crate::danger::function_family(&name) {
            self.danger(family);
        }
        if name.rsplit('.').next() == Some("set_config") {
            // Its arguments decide what it changes, so these facts depend on literals.
            self.literal_sensitive = true;
            self.set_config(call);
        }
        self.facts.functions.insert(name);
    }

    fn settle_filters(&mut self) {
        if self.filters.is_empty() {
            return;
        }
        self.facts.has_where = Some(self.filters.iter().all(|(w, _)| *w));
        self.facts.where_tautology = self.filters.iter().any(|(_, t)| *t);
    }

    /// Record an UPDATE/DELETE/MERGE condition.
    fn filter(&mut self, cond: Option<&Node>) {
        let entry = match cond {
            None => (false, false),
            Some(c) => (true, self.fold.is_tautology(c)),
        };
        self.filters.push(entry);
    }
}

//! Attacks on the lexer-free quick key (`quick_key`) and on the entries it serves: pairs of
//! texts A and B where analysing A first and then B through one [`FactsCache`] must give B the
//! facts (and lineage) a fresh analysis of B gives. A test that fails here is a text the quick
//! key (or the shape entry it is filed beside) treats as "the same modulo constants" while
//! PostgreSQL, or the analysis, reads it differently.

use super::*;
use crate::lineage::{Catalog, MemoryCatalog};
use crate::StatementFacts;

fn ctx() -> AnalyzeContext {
    AnalyzeContext {
        search_path: vec!["public".into()],
    }
}

/// Whether the two texts share a quick key (so B is answered from A's entry without the lexer).
fn share_quick_key(a: &str, b: &str) -> bool {
    match (quick_key::key(clean(a)), quick_key::key(clean(b))) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The facts the cache gives `b` after it has seen `a`, and a fresh analysis of `b`.
fn facts_after(a: &str, b: &str) -> (Analysis, Analysis) {
    let c = FactsCache::new(64);
    c.analyze(a, &ctx());
    (c.analyze(b, &ctx()), crate::analyze(b, &ctx()))
}

/// `facts_after`, asserting that B got its fresh answer (the pairs were found sharing a quick
/// key; the fixes made some of them no longer share one).
fn assert_facts_hold(a: &str, b: &str) {
    let (cached, fresh) = facts_after(a, b);
    assert_eq!(cached, fresh, "\nA: {a:?}\nB: {b:?}");
}

/// A catalog snapshot with a generation, so lineage is remembered under the cache's keys.
struct Snapshot(MemoryCatalog);

impl Catalog for Snapshot {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        self.0.columns(schema, table)
    }
    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        self.0.view_definition(schema, table)
    }
    fn is_pure_function(&self, name: &str) -> bool {
        self.0.is_pure_function(name)
    }
    fn generation(&self) -> Option<u64> {
        Some(1)
    }
}

fn catalog() -> Snapshot {
    Snapshot(
        MemoryCatalog::new()
            .table("public", "users", &["id", "email", "name", "!0065mail"])
            .table("public", "secret", &["id", "ssn"])
            .table("public", "!0073ecret", &["id", "ssn"])
            .table("public", "t", &["id", "a", "b"])
            .view(
                "public",
                "v",
                &["id", "email"],
                "SELECT id, email FROM public.users",
            ),
    )
}

fn full(c: Option<&FactsCache>, sql: &str, cat: &Snapshot) -> Vec<StatementAnalysis> {
    let mut wanted = |_: usize, _: &StatementFacts| Some(vec!["public".to_string()]);
    let request = LineageRequest {
        catalog: cat,
        wanted: &mut wanted,
    };
    match c {
        Some(c) => c.analyze_full(sql, &ctx(), Some(request)),
        None => crate::analyze_full(sql, &ctx(), Some(request)),
    }
}

/// `analyze_full` of `b` (facts and lineage) through a cache that has traced `a`, against a
/// fresh `analyze_full` of `b`.
fn assert_full_holds(a: &str, b: &str) {
    let cat = catalog();
    let c = FactsCache::new(64);
    full(Some(&c), a, &cat);
    let cached = full(Some(&c), b, &cat);
    let fresh = full(None, b, &cat);
    assert_eq!(cached, fresh, "\nA: {a:?}\nB: {b:?}");
}

/// Every pair, collecting the ones whose cached answer is not the fresh one.
fn check_all(pairs: &[(&str, &str)], lineage: bool) {
    let mut bad = Vec::new();
    for (a, b) in pairs {
        let shared = share_quick_key(a, b);
        let ok = if lineage {
            let cat = catalog();
            let c = FactsCache::new(64);
            full(Some(&c), a, &cat);
            full(Some(&c), b, &cat) == full(None, b, &cat)
        } else {
            let (cached, fresh) = facts_after(a, b);
            cached == fresh
        };
        if !ok {
            bad.push(format!(
                "quick key shared: {shared}\n  A: {a:?}\n  B: {b:?}"
            ));
        }
    }
    assert!(bad.is_empty(), "cached ≠ fresh for:\n{}", bad.join("\n"));
}

mod findings;
mod held;

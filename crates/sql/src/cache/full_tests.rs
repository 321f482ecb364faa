//! `FactsCache::analyze_full` against an entry that no longer matches its text's split (a
//! state only a bug or a hash collision could produce): lineage fails closed. The
//! one-parse equivalence tables live in `crates/sql/tests/one_parse.rs`.

use super::*;
use crate::lineage::{Lineage, LineageError, MemoryCatalog};
use crate::StatementFacts;

fn ctx() -> AnalyzeContext {
    AnalyzeContext {
        search_path: vec!["public".into()],
    }
}

/// Poison the exact-text entry of `sql` with the analysis of `other`.
fn poisoned(sql: &str, other: &str) -> FactsCache {
    let c = FactsCache::new(64);
    c.analyze(other, &ctx());
    let Some(entry) = c.get(KeyKind::Exact, other, &ctx().search_path) else {
        panic!("{other} not cached");
    };
    c.put(KeyKind::Exact, sql.to_owned(), &ctx().search_path, entry);
    c
}

fn traced(c: &FactsCache, sql: &str) -> Vec<Option<Result<Lineage, LineageError>>> {
    let cat = MemoryCatalog::new().table("public", "users", &["id", "email"]);
    let mut wanted = |_: usize, _: &StatementFacts| Some(vec!["public".to_string()]);
    let request = LineageRequest {
        catalog: &cat,
        wanted: &mut wanted,
    };
    c.analyze_full(sql, &ctx(), Some(request))
        .into_iter()
        .map(|s| s.lineage)
        .collect()
}

#[test]
fn a_split_that_disagrees_with_the_cached_facts_fails_closed() {
    let disagree = Some(Err(LineageError::Unsupported(
        "statement split disagrees".into(),
    )));
    // Cached: one statement; parsed: two.
    let sql = "SELECT email FROM users; SELECT id FROM users";
    let c = poisoned(sql, "SELECT email FROM users");
    assert_eq!(traced(&c, sql), vec![disagree.clone()]);
    assert_eq!(
        c.stats().parses,
        2,
        "the poisoning miss, then the lineage parse"
    );
    // Cached: two statements; parsed: one.
    let sql = "SELECT id FROM users";
    let c = poisoned(sql, "SELECT email FROM users; SELECT id FROM users");
    assert_eq!(traced(&c, sql), vec![disagree.clone(), disagree]);
}

#[test]
fn a_cached_unparsable_string_reports_the_parse_error() {
    let c = FactsCache::new(64);
    let sql = "SELECT FROM WHERE (";
    assert!(c.analyze(sql, &ctx()).statements[0].opaque.is_some());
    let got = traced(&c, sql);
    assert!(
        matches!(got.as_slice(), [Some(Err(LineageError::Unparsed(_)))]),
        "{got:?}"
    );
}

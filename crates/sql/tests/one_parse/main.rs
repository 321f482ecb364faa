//! One statement, one analysis: `analyze_full` (free and through `FactsCache`) gives the
//! facts `analyze` gives, the lineage `lineage::lineage` gives on each statement's own text,
//! and the COPY class the former text-based check gave, from one parse per string (none for
//! a cache hit that asks for no lineage).

#[path = "../lineage_common.rs"]
mod common;
mod corpus;

use pg_query::protobuf::node::Node as N;
use sql::copy::{copy_to_stdout, CopyOut};
use sql::lineage::{lineage, Catalog, ColumnRef, Lineage, LineageError};
use sql::{analyze, analyze_full, AnalyzeContext, FactsCache, LineageRequest, StatementAnalysis};
use sql::{CacheStats, StatementFacts};

fn ctx() -> AnalyzeContext {
    AnalyzeContext {
        search_path: common::path(),
    }
}

/// `FactsCache::analyze_full` asking for every statement's lineage with `path`.
fn full_cached(c: &FactsCache, sql: &str, cat: &dyn Catalog) -> Vec<StatementAnalysis> {
    let mut all = |_: usize, _: &StatementFacts| Some(common::path());
    let request = LineageRequest {
        catalog: cat,
        wanted: &mut all,
    };
    c.analyze_full(sql, &ctx(), Some(request))
}

/// The former text-based classification, verbatim: the oracle for `copy_out`.
fn old_copy_to_stdout(sql: &str) -> Option<CopyOut> {
    let parsed = pg_query::parse(sql).ok()?;
    let [stmt] = parsed.protobuf.stmts.as_slice() else {
        return None;
    };
    let N::CopyStmt(c) = stmt.stmt.as_ref()?.node.as_ref()? else {
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
            // ENCODING changes the bytes of the rows: not rewritten (see sql::copy).
            _ => default_text = false,
        }
    }
    Some(if default_text {
        CopyOut::DefaultText
    } else {
        CopyOut::Other
    })
}

/// Lineage results compare exactly, except parser messages: the old path parsed each
/// statement's cleaned text, whose error position may read differently.
fn same_lineage(a: &Result<Lineage, LineageError>, b: &Result<Lineage, LineageError>) -> bool {
    match (a, b) {
        (Err(LineageError::Unparsed(_)), Err(LineageError::Unparsed(_))) => true,
        _ => a == b,
    }
}

/// Every mismatch between the one-parse analysis of `sql` and the old three-parse path.
fn mismatches(sql: &str, got: &[StatementAnalysis], cat: &dyn Catalog) -> Vec<String> {
    let old = analyze(sql, &ctx()).statements;
    let mut out = Vec::new();
    if got.len() != old.len() {
        return vec![format!(
            "{} statements, analyze gives {}",
            got.len(),
            old.len()
        )];
    }
    for (i, (new, facts)) in got.iter().zip(&old).enumerate() {
        if new.facts != *facts {
            out.push(format!(
                "#{i} facts differ:\n  {:?}\n  {facts:?}",
                new.facts
            ));
        }
        let traced = lineage(&facts.text, &common::path(), cat);
        match &new.lineage {
            Some(l) if same_lineage(l, &traced) => {}
            other => out.push(format!("#{i} lineage {other:?}, old {traced:?}")),
        }
        let copy = old_copy_to_stdout(&facts.text);
        if new.copy_out != copy || copy_to_stdout(&facts.text) != copy {
            out.push(format!("#{i} copy {:?}, old {copy:?}", new.copy_out));
        }
    }
    out
}

#[test]
fn one_parse_gives_what_three_parses_gave_over_the_golden_corpus() {
    let cat = common::catalog();
    let corpus = corpus::corpus();
    assert!(corpus.len() > 600, "corpus shrank to {}", corpus.len());
    let cache = FactsCache::new(4096);
    let mut failures = Vec::new();
    let mut traced = 0;
    for sql in &corpus {
        let mut all = |_: usize, _: &StatementFacts| Some(common::path());
        let request = LineageRequest {
            catalog: &cat,
            wanted: &mut all,
        };
        let free = analyze_full(sql, &ctx(), Some(request));
        let miss = full_cached(&cache, sql, &cat);
        let hit = full_cached(&cache, sql, &cat);
        traced += free
            .iter()
            .filter(|s| matches!(s.lineage, Some(Ok(_))))
            .count();
        for (label, got) in [("free", &free), ("miss", &miss), ("hit", &hit)] {
            for m in mismatches(sql, got, &cat) {
                failures.push(format!("{label} {sql:?}\n  {m}"));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
    // Not vacuous: many statements trace (the rest are errors both paths agree on).
    assert!(traced > 300, "only {traced} statements traced");
}

#[test]
fn copy_classes_match_the_text_based_check() {
    let list = [
        "COPY users TO STDOUT",
        "copy (select 1) to stdout with (format text)",
        "COPY users TO STDOUT CSV",
        "COPY users TO STDOUT WITH (FORMAT binary)",
        "COPY users TO STDOUT (DELIMITER '|')",
        "COPY users TO STDOUT (NULL 'x')",
        "COPY users TO STDOUT (ENCODING 'UTF8', FORMAT TEXT)",
        "COPY users TO STDOUT WITH (HEADER)",
        "COPY users FROM STDIN",
        "COPY users TO '/tmp/x'",
        "COPY (SELECT 1) TO PROGRAM 'cat'",
        "COPY (SELECT email FROM users) TO STDOUT WITH (FORMAT 'TEXT')",
        "SELECT 1",
    ];
    let cat = common::catalog();
    let mut failures = Vec::new();
    for sql in list {
        let got = analyze_full(sql, &ctx(), None);
        let want = old_copy_to_stdout(sql);
        if got.len() != 1 || got[0].copy_out != want || copy_to_stdout(sql) != want {
            failures.push(format!("{sql}: {got:?}, want {want:?}"));
        }
        failures.extend(mismatches(
            sql,
            &full_cached(&FactsCache::new(8), sql, &cat),
            &cat,
        ));
    }
    // Per statement in a string (the text check saw only single statements).
    let both = analyze_full(
        "COPY users TO STDOUT; COPY users TO STDOUT CSV",
        &ctx(),
        None,
    );
    let classes: Vec<_> = both.iter().map(|s| s.copy_out).collect();
    assert_eq!(classes, [Some(CopyOut::DefaultText), Some(CopyOut::Other)]);
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

fn stats(c: &FactsCache) -> (u64, u64, u64, u64) {
    let CacheStats {
        exact_hits,
        shape_hits,
        misses,
        parses,
        ..
    } = c.stats();
    (exact_hits, shape_hits, misses, parses)
}

#[test]
fn one_parse_per_miss_none_per_hit_without_lineage() {
    let cat = common::catalog();
    let c = FactsCache::new(64);
    let q = |aid: u32| format!("SELECT email FROM users WHERE id = {aid}");
    // Miss, lineage asked for: one parse serves facts and lineage.
    let first = full_cached(&c, &q(1), &cat);
    assert!(matches!(first[0].lineage, Some(Ok(_))));
    assert_eq!(stats(&c), (0, 0, 1, 1));
    // Hits by shape and by text, no lineage asked for: no parse.
    for aid in 2..10 {
        let got = c.analyze_full(&q(aid), &ctx(), None);
        assert_eq!(got[0].facts.text, q(aid));
        assert_eq!(got[0].lineage, None);
    }
    c.analyze_full(&q(1), &ctx(), None);
    assert_eq!(stats(&c), (1, 8, 1, 1));
    // A request whose predicate wants nothing: still no parse.
    let mut nothing = |_: usize, _: &StatementFacts| None;
    let request = LineageRequest {
        catalog: &cat,
        wanted: &mut nothing,
    };
    c.analyze_full(&q(11), &ctx(), Some(request));
    assert_eq!(stats(&c), (1, 9, 1, 1));
    // A hit with lineage asked for: one parse, of this text.
    let hit = full_cached(&c, &q(12), &cat);
    assert_eq!(stats(&c), (1, 10, 1, 2));
    assert_eq!(hit[0].lineage, Some(lineage(&q(12), &common::path(), &cat)));
    // A multi-statement miss: one parse for the string.
    full_cached(&c, "SELECT id FROM orders; SELECT email FROM users", &cat);
    assert_eq!(stats(&c), (1, 10, 2, 3));
    // Plain `analyze` counts the same way.
    c.analyze("SELECT name FROM users", &ctx());
    c.analyze("SELECT name FROM users", &ctx());
    assert_eq!(stats(&c), (2, 10, 3, 4));
}

#[test]
fn each_statement_gets_its_own_lineage_and_path() {
    let cat = common::catalog();
    let sql = "SELECT * FROM notes; SET search_path = app; SELECT * FROM notes; SELECT 1";
    // The caller's path tracking: a SET applies to the statements after it.
    let mut path = vec!["public".to_string()];
    let mut asked = Vec::new();
    let mut wanted = |i: usize, f: &StatementFacts| {
        asked.push(i);
        if let Some(p) = &f.session.search_path {
            path = p.clone();
            return None;
        }
        (i != 3).then(|| path.clone())
    };
    let request = LineageRequest {
        catalog: &cat,
        wanted: &mut wanted,
    };
    let got = FactsCache::new(8).analyze_full(sql, &ctx(), Some(request));
    assert_eq!(asked, [0, 1, 2, 3], "asked once per statement, in order");
    let sources = |i: usize| -> Vec<String> {
        match &got[i].lineage {
            Some(Ok(l)) => l
                .outputs
                .iter()
                .flat_map(|o| o.sources.iter().map(ColumnRef::to_string))
                .collect(),
            other => panic!("#{i}: {other:?}"),
        }
    };
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].facts.text, "SELECT * FROM notes");
    assert_eq!(sources(0), ["public.notes.id", "public.notes.body"]);
    assert_eq!(got[1].lineage, None);
    assert_eq!(sources(2), ["app.notes.id", "app.notes.secret_note"]);
    assert_eq!(got[3].lineage, None);
}

#[test]
fn refused_text_fails_closed_in_both_halves() {
    let cat = common::catalog();
    let deep = format!("SELECT 1{}", "+1".repeat(500));
    let large = format!("SELECT '{}'", "x".repeat(sql::MAX_SQL_BYTES));
    for sql in [deep.as_str(), large.as_str(), "SELECT FROM WHERE ("] {
        let c = FactsCache::new(8);
        for _ in 0..2 {
            let got = full_cached(&c, sql, &cat);
            assert!(got[0].facts.opaque.is_some());
            assert!(
                matches!(got[0].lineage, Some(Err(LineageError::Unparsed(_)))),
                "{:?}",
                got[0].lineage
            );
            assert_eq!(got[0].copy_out, None);
        }
        // Text refused before parsing is not counted as parsed.
        let parsed = u64::from(sql.starts_with("SELECT FROM"));
        assert_eq!(c.stats().parses, 2 * parsed, "{}", &sql[..20]);
    }
}

/// The test catalog with a generation: lineage traced against it may be remembered.
struct Generational<'a>(&'a dyn Catalog, u64);

impl Catalog for Generational<'_> {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        self.0.columns(schema, table)
    }
    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        self.0.view_definition(schema, table)
    }
    fn generation(&self) -> Option<u64> {
        Some(self.1)
    }
}

#[test]
fn lineage_is_remembered_by_shape_and_catalog_generation() {
    let base = common::catalog();
    let cat = Generational(&base, 1);
    let c = FactsCache::new(64);
    let q = |aid: u32| format!("SELECT email FROM users WHERE id = {aid}");
    full_cached(&c, &q(1), &cat);
    // Other literals, same shape: remembered, no parse, the same lineage a parse gives.
    for aid in 2..6 {
        let got = full_cached(&c, &q(aid), &cat);
        assert_eq!(
            got[0].lineage,
            Some(lineage(&q(aid), &common::path(), &base))
        );
    }
    assert_eq!(stats(&c).3, 1);
    assert_eq!(c.stats().lineage_hits, 4);
    // Another catalog generation: traced again.
    full_cached(&c, &q(7), &Generational(&base, 2));
    assert_eq!(stats(&c).3, 2);
    // A catalog without a generation is never reused against.
    full_cached(&c, &q(8), &base);
    full_cached(&c, &q(8), &base);
    assert_eq!(stats(&c).3, 4);
}

#[test]
fn lineage_a_constant_decided_is_not_remembered_by_shape() {
    let base = common::catalog();
    let cat = Generational(&base, 1);
    let c = FactsCache::new(64);
    // The query string of query_to_xml, and an ORDER BY position, are constants that decide
    // lineage: each text is traced itself.
    for sql in [
        "SELECT query_to_xml('select name from users', true, true, '')",
        "SELECT query_to_xml('select email from users', true, true, '')",
        "SELECT id, email FROM users ORDER BY 1",
        "SELECT id, email FROM users ORDER BY 2",
    ] {
        let got = full_cached(&c, sql, &cat);
        assert_eq!(
            got[0].lineage,
            Some(lineage(sql, &common::path(), &base)),
            "{sql}"
        );
    }
    // The same text again is remembered.
    full_cached(&c, "SELECT id, email FROM users ORDER BY 2", &cat);
    assert_eq!(c.stats().lineage_hits, 1);
}

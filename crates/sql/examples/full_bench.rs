//! Median cost per statement of the old path (`FactsCache::analyze`, then
//! `lineage::lineage` and `copy::copy_to_stdout` on the statement's text, as the proxy's mask
//! planning did; also without the COPY check) against the one-parse
//! `FactsCache::analyze_full`, for pgbench's
//! `SELECT abalance FROM pgbench_accounts WHERE aid = N` with `abalance` sensitive (so its
//! lineage is wanted) and a new literal each time (a cache hit by shape after the first).
//! Also: every text new to the cache (misses), and a hit whose lineage is not wanted.
//!
//! `cargo run --release -p sql --example full_bench`

use sql::lineage::{lineage, MemoryCatalog};
use sql::{AnalyzeContext, FactsCache, LineageRequest, StatementFacts};
use std::time::Instant;

/// Warm-up calls take indices `0..iterations / 10`, samples the ones after: a text seen in
/// warm-up is not measured again.
fn median_ns(iterations: usize, mut f: impl FnMut(usize)) -> f64 {
    let warm = iterations / 10;
    for i in 0..warm {
        f(i);
    }
    let mut samples: Vec<u128> = (warm..warm + iterations)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default() as f64
}

fn catalog() -> MemoryCatalog {
    let mut cat = MemoryCatalog::new()
        .table(
            "public",
            "pgbench_accounts",
            &["aid", "bid", "abalance", "filler"],
        )
        .table("public", "pgbench_branches", &["bid", "bbalance", "filler"]);
    // Realistic catalog size: lookups should not depend on it.
    for i in 0..500 {
        cat.insert("public", &format!("t{i}"), &["a", "b", "c"], None);
    }
    cat
}

/// The proxy's predicate, reduced: lineage for statements reading the table that holds the
/// sensitive column (`public.pgbench_accounts.abalance`).
fn needs_lineage(f: &StatementFacts) -> bool {
    f.tables_read.contains("public.pgbench_accounts")
}

/// The old path: facts from the cache, then lineage and the COPY class each parse the text.
fn old_path(cache: &FactsCache, sql: &str, ctx: &AnalyzeContext, cat: &MemoryCatalog) {
    for f in cache.analyze(sql, ctx).statements {
        if needs_lineage(&f) {
            std::hint::black_box(lineage(&f.text, &ctx.search_path, cat).ok());
            std::hint::black_box(sql::copy::copy_to_stdout(&f.text));
        }
    }
}

/// The old path without the COPY check: facts from the cache, lineage parses the text.
fn old_no_copy(cache: &FactsCache, sql: &str, ctx: &AnalyzeContext, cat: &MemoryCatalog) {
    for f in cache.analyze(sql, ctx).statements {
        if needs_lineage(&f) {
            std::hint::black_box(lineage(&f.text, &ctx.search_path, cat).ok());
        }
    }
}

/// The new path: one call, at most one parse.
fn new_path(cache: &FactsCache, sql: &str, ctx: &AnalyzeContext, cat: &MemoryCatalog) {
    let mut wanted =
        |_: usize, f: &StatementFacts| needs_lineage(f).then(|| ctx.search_path.clone());
    let request = LineageRequest {
        catalog: cat,
        wanted: &mut wanted,
    };
    std::hint::black_box(cache.analyze_full(sql, ctx, Some(request)));
}

type Path = fn(&FactsCache, &str, &AnalyzeContext, &MemoryCatalog);

fn main() {
    let cat = catalog();
    let ctx = AnalyzeContext {
        search_path: vec!["public".into()],
    };
    let n = 20_000;
    let len = n + n / 10;
    let select: Vec<String> = (0..len)
        .map(|i| format!("SELECT abalance FROM pgbench_accounts WHERE aid = {i}"))
        .collect();
    let branches: Vec<String> = (0..len)
        .map(|i| format!("SELECT bbalance FROM pgbench_branches WHERE bid = {i}"))
        .collect();
    // A distinct shape per text: every one misses.
    let misses: Vec<String> = (0..len)
        .map(|i| format!("SELECT abalance AS a{i} FROM pgbench_accounts WHERE aid = 1"))
        .collect();
    let cases: [(&str, &[String]); 3] = [
        ("shape hit, lineage wanted", &select),
        ("miss, lineage wanted", &misses),
        ("shape hit, no lineage wanted", &branches),
    ];
    let paths: [(&str, Path); 3] = [
        ("old", old_path),
        ("old w/o COPY", old_no_copy),
        ("new", new_path),
    ];
    println!("µs per statement (median of {n}), release build");
    for (label, texts) in cases {
        let mut line = format!("{label:<30}");
        for (name, path) in paths {
            let cache = FactsCache::new(1024);
            let t = median_ns(n, |i| path(&cache, &texts[i % len], &ctx, &cat));
            let s = cache.stats();
            let parses = s.parses as f64 / (s.exact_hits + s.shape_hits + s.misses) as f64;
            line += &format!("  {name} {:>6.2} µs", t / 1000.0);
            if name == "new" {
                line += &format!(" ({parses:.2} parses/statement)");
            }
        }
        println!("{line}");
    }
}

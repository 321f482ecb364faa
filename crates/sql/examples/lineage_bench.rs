//! Median cost of `sql::lineage::lineage()` for a point SELECT and for a 3-way join with a
//! CTE, next to the cost of the parse alone (pg_query) and of `sql::analyze` on the same text.
//!
//! `cargo run --release -p sql --example lineage_bench`

use sql::lineage::{lineage, MemoryCatalog};
use std::time::Instant;

fn median_ns(iterations: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..iterations / 10 {
        f(); // warm up
    }
    let mut samples: Vec<u128> = (0..iterations)
        .map(|_| {
            let t = Instant::now();
            f();
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
            "users",
            &["id", "email", "phone", "name", "ssn", "org_id"],
        )
        .table(
            "public",
            "orders",
            &["id", "user_id", "total", "card", "created_at"],
        )
        .table("public", "orgs", &["org_id", "title", "country"]);
    // Realistic catalog size: lookups should not depend on it.
    for i in 0..500 {
        cat.insert("public", &format!("t{i}"), &["a", "b", "c"], None);
    }
    cat
}

fn main() {
    let cat = catalog();
    let path = vec!["$user".to_string(), "public".to_string()];
    let point = "SELECT id, email FROM users WHERE id = 1";
    let join = "WITH recent AS (SELECT user_id, sum(total) AS spent, max(card) AS card \
                FROM orders WHERE created_at > now() - interval '30 days' GROUP BY user_id) \
                SELECT u.id, lower(u.email) AS email, g.title, r.spent, r.card \
                FROM users u JOIN recent r ON r.user_id = u.id \
                LEFT JOIN orgs g USING (org_id) WHERE g.country = 'NZ' ORDER BY r.spent DESC LIMIT 10";
    let n = 20_000;
    let ctx = sql::AnalyzeContext::default();
    for (label, text) in [("point SELECT", point), ("3-way join + CTE", join)] {
        assert!(lineage(text, &path, &cat).is_ok(), "{label} must trace");
        let full = median_ns(n, || {
            std::hint::black_box(lineage(text, &path, &cat).ok());
        });
        let parse = median_ns(n, || {
            std::hint::black_box(pg_query::parse(text).ok());
        });
        let facts = median_ns(n, || {
            std::hint::black_box(sql::analyze(text, &ctx));
        });
        println!(
            "{label:<18} lineage {:>7.2} µs   (parse alone {:>6.2} µs, analyze {:>6.2} µs)",
            full / 1000.0,
            parse / 1000.0,
            facts / 1000.0
        );
    }
}

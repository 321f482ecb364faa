//! Median cost of analysing a pgbench-style statement: uncached, cached by literal-free
//! shape (a new literal each time, as `pgbench -S` sends), and cached by exact text.
//!
//! `cargo run --release -p sql --example bench`

use std::time::Instant;

fn median_ns(iterations: usize, mut f: impl FnMut(usize)) -> u128 {
    for i in 0..iterations / 10 {
        f(i); // warm up
    }
    let mut samples: Vec<u128> = (0..iterations)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn main() {
    let ctx = sql::AnalyzeContext::default();
    let select = |i: usize| format!("SELECT abalance FROM pgbench_accounts WHERE aid = {i};");
    let update = |i: usize| {
        format!(
            "UPDATE pgbench_accounts SET abalance = abalance + {i} WHERE aid = {};",
            i * 7
        )
    };
    let n = 20_000;
    let texts: Vec<String> = (0..n).map(select).collect();
    let updates: Vec<String> = (0..n).map(update).collect();

    let uncached = median_ns(n, |i| {
        std::hint::black_box(sql::analyze(&texts[i % n], &ctx));
    });
    let cache = sql::FactsCache::new(1024);
    let shape = median_ns(n, |i| {
        std::hint::black_box(cache.analyze(&texts[i % n], &ctx));
    });
    let exact = median_ns(n, |_| {
        std::hint::black_box(cache.analyze(&texts[0], &ctx));
    });
    let update_uncached = median_ns(n, |i| {
        std::hint::black_box(sql::analyze(&updates[i % n], &ctx));
    });
    let update_shape = median_ns(n, |i| {
        std::hint::black_box(cache.analyze(&updates[i % n], &ctx));
    });
    println!(
        "pgbench SELECT  uncached        {:>7.2} µs",
        uncached as f64 / 1000.0
    );
    println!(
        "pgbench SELECT  cached (shape)  {:>7.2} µs",
        shape as f64 / 1000.0
    );
    println!(
        "pgbench SELECT  cached (exact)  {:>7.2} µs",
        exact as f64 / 1000.0
    );
    println!(
        "pgbench UPDATE  uncached        {:>7.2} µs",
        update_uncached as f64 / 1000.0
    );
    println!(
        "pgbench UPDATE  cached (shape)  {:>7.2} µs",
        update_shape as f64 / 1000.0
    );
    println!("cache stats: {:?}", cache.stats());
}

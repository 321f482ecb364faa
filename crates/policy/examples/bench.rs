//! Median cost of a decision with the built-in pack, and of analysis + decision per
//! statement, uncached and cached, for a pgbench-style SELECT.
//!
//! `cargo run --release -p policy --example bench`

use model::{Identity, IdentityKind};
use policy::{decide, Policies, Principal, RequestContext};
use std::time::Instant;

fn median_ns(iterations: usize, mut f: impl FnMut(usize)) -> f64 {
    for i in 0..iterations / 10 {
        f(i);
    }
    let mut samples: Vec<u128> = (0..iterations)
        .map(|i| {
            let t = Instant::now();
            f(i);
            t.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default() as f64 / 1000.0
}

fn main() {
    let policies = match Policies::load(true, &[]) {
        Ok(p) => p,
        Err(e) => return eprintln!("builtin pack does not load: {e:?}"),
    };
    let principal = Principal {
        identity: Identity {
            name: "bench".into(),
            kind: IdentityKind::Human,
            groups: vec!["devs".into(), "readers".into()],
        },
    };
    let ctx = RequestContext {
        target: "main".into(),
        environment: "bench".into(),
        application_name: "pgbench".into(),
        source_ip: "127.0.0.1".parse().ok(),
        hour: 12,
        ..RequestContext::default()
    };
    let actx = sql::AnalyzeContext::default();
    let n = 20_000;
    let texts: Vec<String> = (0..n)
        .map(|i| format!("SELECT abalance FROM pgbench_accounts WHERE aid = {i};"))
        .collect();
    let facts = sql::analyze(&texts[0], &actx).statements;
    let Some(one) = facts.first() else {
        return eprintln!("no facts");
    };
    println!("decision: {:?}", decide(&policies, &principal, one, &ctx));

    let decision = median_ns(n, |_| {
        std::hint::black_box(decide(&policies, &principal, one, &ctx));
    });
    let uncached = median_ns(n, |i| {
        let a = sql::analyze(&texts[i % n], &actx);
        for f in &a.statements {
            std::hint::black_box(decide(&policies, &principal, f, &ctx));
        }
    });
    let cache = sql::FactsCache::new(1024);
    let cached = median_ns(n, |i| {
        let a = cache.analyze(&texts[i % n], &actx);
        for f in &a.statements {
            std::hint::black_box(decide(&policies, &principal, f, &ctx));
        }
    });
    let mut decisions = policy::DecisionCache::new(1024);
    let both_cached = median_ns(n, |i| {
        let a = cache.analyze(&texts[i % n], &actx);
        for f in &a.statements {
            std::hint::black_box(decisions.decide(&policies, &principal, f, &ctx));
        }
    });
    println!("policies loaded                      {}", policies.len());
    println!("decision (builtin pack)              {decision:>7.2} µs");
    println!("analysis + decision, uncached        {uncached:>7.2} µs");
    println!("analysis cached (shape), decision uncached {cached:>7.2} µs");
    println!("analysis + decision, both cached     {both_cached:>7.2} µs");
}

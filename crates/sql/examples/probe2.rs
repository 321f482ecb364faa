#![allow(clippy::unwrap_used)]
use std::time::Instant;
fn time<F: FnMut()>(name: &str, mut f: F) {
    for _ in 0..200 {
        f();
    }
    let mut v = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        f();
        v.push(t.elapsed().as_nanos());
    }
    v.sort();
    println!("{name}: median {} ns", v[v.len() / 2]);
}
fn main() {
    let q = "SELECT abalance FROM pgbench_accounts WHERE aid = 48213;";
    time("parse", || {
        let _ = pg_query::parse(q).unwrap();
    });
    time("fingerprint", || {
        let _ = pg_query::fingerprint(q).unwrap();
    });
    time("normalize", || {
        let _ = pg_query::normalize(q).unwrap();
    });
    time("scan", || {
        let _ = pg_query::scan(q).unwrap();
    });
    time("split_scanner", || {
        let _ = pg_query::split_with_scanner(q).unwrap();
    });
    let p = pg_query::parse(q).unwrap();
    time("to_value", || {
        let _ = serde_json::to_value(&p.protobuf).unwrap();
    });
    println!(
        "{}",
        pg_query::normalize(
            "SELECT a.x, 'lit', -3, 1.5 FROM t a /* c */ WHERE b = $1 AND c IN (1,2)"
        )
        .unwrap()
    );
}

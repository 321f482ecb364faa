//! Micro-benchmark of the hot paths: `mask_cell` on one text email (what the proxy does per
//! masked DataRow cell) and `Detectors::scan` over a 100-byte string (the safety net per
//! text cell). Prints the median of 21 batches in ns per call.
//!
//! Run: `cargo run --release -p masking --example bench`. A script to read, not a timed
//! assertion: numbers depend on the machine and its load.

use masking::{mask_cell, mask_json, oid, ColumnMask, Detectors, Format, Strategy};
use std::hint::black_box;
use std::time::Instant;

const BATCHES: usize = 21;

/// Median ns per call of `f` over `BATCHES` batches of `iters` calls.
fn median_ns(iters: u32, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_nanos() as f64 / f64::from(iters)
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[BATCHES / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = b"bench-key";
    let email = b"alice.smith@example.com";
    for strategy in [Strategy::Partial, Strategy::Full, Strategy::Hash] {
        let mask = ColumnMask::new(strategy, oid::TEXT, Format::Text);
        let ns = median_ns(200_000, || {
            let _ = black_box(mask_cell(&mask, black_box(email), key));
        });
        println!("mask_cell text email {strategy:<8} {ns:>8.1} ns/cell");
    }
    let int4 = ColumnMask::new(Strategy::Full, oid::INT4, Format::Binary);
    let ns = median_ns(200_000, || {
        let _ = black_box(mask_cell(&int4, black_box(&[0, 0, 0, 42]), key));
    });
    println!("mask_cell int4 binary full  {ns:>8.1} ns/cell");

    let fields = vec![(
        "email".to_string(),
        ColumnMask::new(Strategy::Partial, oid::TEXT, Format::Text),
    )];
    let row = br#"{"id":42,"name":"Alice Smith","email":"alice.smith@example.com","plan":"pro"}"#;
    let ns = median_ns(100_000, || {
        let _ = black_box(mask_json(black_box(row), Format::Text, &fields, key));
    });
    println!("mask_json {}-byte row       {ns:>8.1} ns/value", row.len());

    let detectors = Detectors::new()?;
    let clean = b"Order 7731 shipped to the customer on Tuesday; tracking number pending, notes: leave at the door ok.";
    let dirty = b"Contact alice.smith@example.com or +1 415-555-0123, card 4111 1111 1111 1111, ssn 123-45-6789, thx!.";
    for (name, text) in [("clean", &clean[..]), ("with PII", &dirty[..])] {
        let found = detectors.scan(text).len();
        let ns = median_ns(20_000, || {
            let _ = black_box(detectors.scan(black_box(text)));
        });
        println!(
            "scan {}-byte {name:<8} ({found} found) {ns:>8.1} ns/scan",
            text.len()
        );
    }
    Ok(())
}

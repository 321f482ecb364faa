//! Every public function on random and mutated bytes: it may return an error, never panic,
//! and detections always lie inside the input. Deterministic (fixed-seed xorshift), so a
//! failure reproduces.

use crate::KEY;
use masking::{
    mask_cell, mask_json, mask_record_text, oid, ColumnMask, Detectors, Format, Strategy,
};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Random bytes, biased towards the characters the parsers care about.
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        const INTERESTING: &[u8] = b"{}[]\",:\\()-. @+0123456789eEtrufalsnAKIyJ=/_\x01\n";
        let len = self.below(max + 1);
        (0..len)
            .map(|_| {
                if self.below(2) == 0 {
                    INTERESTING[self.below(INTERESTING.len())]
                } else {
                    self.next() as u8
                }
            })
            .collect()
    }
}

const STRATEGIES: [Strategy; 6] = [
    Strategy::Full,
    Strategy::Partial,
    Strategy::Hash,
    Strategy::Null,
    Strategy::Email,
    Strategy::Last4,
];

const OIDS: [u32; 17] = [
    oid::TEXT,
    oid::VARCHAR,
    oid::BPCHAR,
    oid::NAME,
    oid::INT2,
    oid::INT4,
    oid::INT8,
    oid::NUMERIC,
    oid::FLOAT4,
    oid::FLOAT8,
    oid::UUID,
    oid::BYTEA,
    oid::JSON,
    oid::JSONB,
    oid::BOOL,
    oid::DATE,
    77_777,
];

#[test]
fn mask_cell_never_panics() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..20_000 {
        let value = rng.bytes(40);
        let mask = ColumnMask {
            strategy: STRATEGIES[rng.below(6)],
            type_oid: OIDS[rng.below(OIDS.len())],
            format: if rng.below(2) == 0 {
                Format::Text
            } else {
                Format::Binary
            },
            tags: vec![],
            treat_as_text: rng.below(2) == 0,
        };
        let key: &[u8] = if rng.below(10) == 0 { b"" } else { KEY };
        let _ = mask_cell(&mask, &value, key);
    }
}

#[test]
fn whole_row_maskers_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let fields: Vec<(String, ColumnMask)> = ["a", "email", "n"]
        .iter()
        .zip(STRATEGIES)
        .map(|(k, s)| (k.to_string(), ColumnMask::new(s, oid::TEXT, Format::Text)))
        .collect();
    let positions: Vec<(usize, ColumnMask)> = (0..3)
        .map(|i| (i, ColumnMask::new(STRATEGIES[i], OIDS[i * 5], Format::Text)))
        .collect();
    let seeds: [&[u8]; 4] = [
        br#"{"a":"x@y.io","b":[{"email":"q@r.st","n":1}]}"#,
        br#"[{"n":-1.5e3},{"a":null,"email":"\u00e9\"x"}]"#,
        br#"(1,"a ""b"" \\c",,x@y.io)"#,
        b"(a,b,c)",
    ];
    for _ in 0..20_000 {
        let value = if rng.below(2) == 0 {
            rng.bytes(60)
        } else {
            // Mutate a valid value: flip, delete or duplicate a few bytes.
            let mut v = seeds[rng.below(seeds.len())].to_vec();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(v.len());
                match rng.below(3) {
                    0 => v[i] = rng.next() as u8,
                    1 => {
                        v.remove(i);
                    }
                    _ => v.insert(i, v[i]),
                }
                if v.is_empty() {
                    break;
                }
            }
            v
        };
        let format = if rng.below(2) == 0 {
            Format::Text
        } else {
            Format::Binary
        };
        let _ = mask_json(&value, format, &fields, KEY);
        let _ = mask_record_text(&value, &positions, KEY);
    }
}

#[test]
fn detectors_never_panic_and_stay_in_bounds() {
    let d = Detectors::new().unwrap();
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for _ in 0..5_000 {
        let text = rng.bytes(200);
        for x in d.scan(&text) {
            assert!(x.start < x.end && x.end <= text.len(), "{x:?} in {text:?}");
        }
        let _ = d.redact(&text);
    }
    // Adversarial repetitions stay fast (linear scans).
    for unit in [
        &b"eyJ"[..],
        b"-----BEGIN ",
        b"AKIA",
        b"1-",
        b"a@",
        b"Ab1+",
        b"GB82 ",
    ] {
        let text = unit.repeat(20_000);
        let _ = d.scan(&text);
    }
}

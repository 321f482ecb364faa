//! The decoders never panic: random bytes, and valid messages with corrupted bytes, run
//! through `wire_pg::exercise` (the same entry point as the cargo-fuzz target in `fuzz/`).

use bytes::BytesMut;
use wire_pg::encode;

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn valid_stream() -> Vec<u8> {
    let mut b = BytesMut::new();
    encode::startup(&mut b, &[("user", "alice"), ("database", "app")]);
    encode::query(&mut b, "select 1; select 2");
    encode::parse(&mut b, "s", "select $1", &[23]);
    encode::bind(&mut b, "", "s", &[Some(b"1"), None], &[1]);
    encode::execute(&mut b, "", 0);
    encode::sync(&mut b);
    encode::error(&mut b, "ERROR", "42501", "no", Some("d"), Some("h"));
    encode::auth_sasl(&mut b, &["SCRAM-SHA-256"]);
    encode::sasl_initial_response(&mut b, "SCRAM-SHA-256", b"n,,n=,r=abc");
    b.to_vec()
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let len = (rng.next() % 256) as usize;
        let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        wire_pg::exercise(&data);
    }
}

#[test]
fn corrupted_messages_never_panic() {
    let base = valid_stream();
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut data = base.clone();
        for _ in 0..(1 + rng.next() % 4) {
            let i = (rng.next() as usize) % data.len();
            data[i] = rng.next() as u8;
        }
        let cut = (rng.next() as usize) % (data.len() + 1);
        wire_pg::exercise(&data[..cut]);
        wire_pg::exercise(&data[cut..]);
    }
}

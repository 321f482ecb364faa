//! Fuzzes every PostgreSQL protocol decoder (startup, frames, typed messages, SCRAM).
//! Run: `cargo install cargo-fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run pg_codec` from fuzz/.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    wire_pg::exercise(data);
});

//! scratch
use crate::harness::{Gatehouse, Options};
use crate::session_integrity::rawpg::{self, RawPg};
use crate::session_integrity::{start, SETUP, leaked};

#[tokio::test]
async fn scratch_bind() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for sql in [
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('standard_conforming_strings','off',false) IS NOT NULL)",
        "SELECT 'x'",
    ] {
        let r = c.simple(sql).await;
        println!("{sql:?} => {}", r.describe());
    }
    c.send(&[
        rawpg::parse("sé", "SELECT $1::pg_temp.d AS v"),
        rawpg::bind("", "sé", &[Some("x")], &[]),
        rawpg::query("SELECT 'a\\' || ', ssn || '''' AS v FROM users -- '"),
        rawpg::sync(),
    ]).await;
    let r = c.read_ready(2).await;
    println!("attack => {} leaked={:?}", r.describe(), leaked(&r.bytes));
    for m in &r.msgs { println!("  {} {:?}", m.tag as char, String::from_utf8_lossy(&m.body)); }
    let _ = (Gatehouse::start, Options::default, SETUP);
}

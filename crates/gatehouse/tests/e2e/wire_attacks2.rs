//! scratch
use crate::harness::{Gatehouse, Options};
use crate::session_integrity::rawpg::{self, RawPg};
use crate::session_integrity::{start, SETUP, direct};
use crate::raw;
use bytes::BytesMut;
use std::time::Duration;

#[tokio::test]
async fn scratch_app() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for sql in [
        "SET application_name = U&'gatehouse\\003abob'",
        "SET application_name = E'gatehouse\\x3abob'",
        "SET application_name = 'gatehouse'\n':bob'",
        "SET application_name = \"gatehouse:bob\"",
        "SET application_name = $$gatehouse:bob$$",
        "SET LOCAL application_name = 'gatehouse:bob'",
        "SET SESSION application_name TO 'gatehouse:bob'",
        "UPDATE pg_settings SET setting = 'gatehouse:bob' WHERE name = 'application_name'",
        "SELECT set_config(n, 'gatehouse:bob', false) FROM (VALUES ('application_name')) v(n)",
        "SELECT set_config('application' || '_name', 'gatehouse:bob', false)",
        "SELECT set_config('APPLICATION_NAME', 'gatehouse:bob', false)",
        "SELECT set_config(' application_name', 'gatehouse:bob', false)",
        "SELECT set_config('application_name', 'gatehouse' || ':bob', false)",
        "SELECT set_config('application_name', upper('gatehouse:bob'), false)",
        "ALTER ROLE CURRENT_USER SET application_name = 'gatehouse:bob'",
        "CREATE FUNCTION pg_temp.h() RETURNS text LANGUAGE sql SET application_name = 'gatehouse:bob' AS $$ SELECT 1::text $$",
        "CREATE FUNCTION pg_temp.h2() RETURNS text LANGUAGE sql AS $$ SELECT set_config('application_name', 'gatehouse:bob', false) $$",
        "CREATE DOMAIN pg_temp.dd AS text CHECK (set_config('application_name', 'gatehouse:bob', false) IS NOT NULL)",
        "CREATE TEMP TABLE tdef (x text DEFAULT set_config('application_name', 'gatehouse:bob', false))",
        "DO $$ BEGIN PERFORM set_config('application_name', 'gatehouse:bob', false); END $$",
        "PREPARE p(text) AS SELECT set_config('application_name', $1, false)",
        "SET gatehouse.identity = 'bob'",
        "SELECT set_config('gatehouse.identity', 'bob', false)",
        "SHOW application_name",
    ] {
        let r = c.simple(sql).await;
        println!("{sql:?} => {:?}", r.error().map(|e| (e.field(b'C'), e.field(b'M'))).unwrap_or((None, Some(format!("OK {:?}", r.cells())))));
    }
    for opts in ["-c application_name=gatehouse:bob", "--application_name=gatehouse:bob", "--application-name=gatehouse:bob"] {
        let r = raw::login_with(gh.port, raw::startup(&[("user", "alice"), ("database", "app"), ("options", opts)]), &token).await;
        let mut c = RawPg::from_login(r.0, r.1);
        let r = c.simple("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()").await;
        println!("options {opts} => {}", r.describe());
    }
    // COPY hang
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[rawpg::query("COPY pets (id, name) FROM STDIN")]).await;
    let r = c.read_until_tag(b'G').await;
    println!("copy => {}", r.describe());
    c.send(&[rawpg::query("SELECT 'é'"), rawpg::copy_done()]).await;
    let r = c.read_ready(2).await;
    println!("copy+nonascii => {}", r.describe());
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[rawpg::parse("", "COPY pets (id, name) FROM STDIN"), rawpg::bind("", "", &[], &[]), rawpg::execute("", 0), rawpg::sync()]).await;
    let r = c.read_until_tag(b'G').await;
    println!("ext copy => {}", r.describe());
    c.send(&[rawpg::parse("é", "SELECT 1"), rawpg::copy_data(b"5\tZed\n"), rawpg::copy_done(), rawpg::sync()]).await;
    let r = c.read_ready(2).await;
    println!("ext copy+nonascii => {}", r.describe());
    let _ = (Gatehouse::start, Options::default, SETUP, direct, BytesMut::new(), Duration::from_secs(1));
}

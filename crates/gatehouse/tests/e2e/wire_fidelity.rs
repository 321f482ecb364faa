//! Wire fidelity: a client sees through Gatehouse what it sees directly. The backend PID it
//! is told is the server's (cancellation, pg_terminate_backend and NOTIFY agree with it),
//! application_name reads as it set it, any client encoding PostgreSQL can convert safely
//! works (text in and out, errors, masking), text that is not valid in the session's encoding
//! is refused without ending the session, and a client asking for protocol 3.2 is answered
//! with NegotiateProtocolVersion.

use crate::harness::{upstream, Gatehouse, Options};
use crate::raw;
use crate::session_integrity::rawpg::{self, RawPg};
use bytes::BytesMut;
use serde_json::{json, Value};
use std::time::Duration;

const SETUP: &str = "
CREATE TABLE people (id int PRIMARY KEY, name text, secret text);
INSERT INTO people VALUES (1, 'Öztürk Çelik', 'hunter2-secret'), (2, '山田太郎', 'x');
CREATE TABLE notes (v text);
";

const SENSITIVE: &str = r#"
[[sensitive]]
target = "app"
columns = ["public.people.name"]
tags = ["pii"]
mask = "partial"
[[sensitive]]
target = "app"
columns = ["public.people.secret"]
tags = ["secret"]
mask = "hash"
"#;

async fn start() -> Gatehouse {
    Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn psycopg_sees_the_server_as_it_is() {
    let gh = start().await;
    let token = gh.issue("fid", "human", &[]).await;
    let up = upstream();
    let mut dsn = format!(
        "host={} port={} user={} dbname={}",
        up.host, up.port, up.user, gh.db.name
    );
    if let Some(p) = &up.password {
        dsn.push_str(&format!(" password={p}"));
    }
    let out = tokio::process::Command::new(crate::python::python())
        .arg(crate::python::repo_root().join("tests/python/wire_fidelity.py"))
        .args(["127.0.0.1", &gh.port.to_string(), "fid", "app"])
        .env("PGPASSWORD", &token)
        .env("FID_UPSTREAM_DSN", dsn)
        .env_remove("PGHOST")
        .env_remove("PGSERVICE")
        .stdin(std::process::Stdio::null())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("the Python client timed out")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed:\n{stdout}\n{stderr}");
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON result ({e}):\n{stdout}\n{stderr}"));

    // The backend PID is the server's; NOTIFY, cancel and terminate agree with it.
    assert_eq!(r["pid_matches"], true, "{r}");
    assert_eq!(r["notify_payload"], "hello");
    assert_eq!(r["notify_pid_matches"], true, "{r}");
    assert_eq!(r["cancel_sqlstate"], "57014", "{r}");
    assert_eq!(r["after_cancel"], 1);
    assert_eq!(r["terminated"], true);
    assert_eq!(r["victim_alive"], false);

    // application_name: the client is told what it set; the server knows who it is.
    assert_eq!(r["app_reported"], "fid-app");
    assert_eq!(r["app_server"], "gatehouse:fid/fid-app");
    assert_eq!(r["app_after_set"], "renamed");

    // LATIN9 end to end.
    assert_eq!(r["latin9_encoding"], "iso8859-15");
    assert_eq!(r["latin9_select"], "café € ñ");
    assert_eq!(r["latin9_roundtrip"], "Grüße €");
    assert_eq!(r["latin9_error"][0], "22P02");
    assert!(
        r["latin9_error"][1].as_str().unwrap_or("").contains("é€"),
        "{r}"
    );
    assert_eq!(r["latin9_after_error"], "ok é");
    assert_eq!(r["latin9_prepared"], "äü");
    // Masked the same way as in UTF-8, written in LATIN9.
    let name = r["utf8_name"].as_str().unwrap();
    assert_ne!(name, "Öztürk Çelik");
    assert!(name.starts_with('Ö'), "{name}");
    assert_eq!(r["latin9_name"], r["utf8_name"]);
    assert_eq!(r["latin9_hash"], r["utf8_hash"]);
    assert_ne!(r["utf8_hash"], "hunter2-secret");

    // A multi-byte encoding.
    assert_eq!(r["eucjp_select"], "日本語");
    assert_eq!(r["eucjp_error"][0], "22P02");
    assert!(r["eucjp_error"][1].as_str().unwrap_or("").contains("日本"));
    let jp = r["eucjp_name"].as_str().unwrap();
    assert!(jp.starts_with('山') && jp != "山田太郎", "{jp}");

    // Changed mid-session and back.
    assert_eq!(r["set_encoding"], "iso8859-1");
    assert_eq!(r["set_select"], "señor");
    assert_eq!(r["reset_select"], "señor ☃");

    let sjis = r["sjis"].as_str().unwrap();
    assert!(sjis.contains("client_encoding"), "{sjis}");

    let log = gh.log();
    for drift in [
        "does not match",
        "more statement results",
        "closing the session",
    ] {
        assert!(!log.contains(drift), "drift in the log ({drift}):\n{log}");
    }
}

/// Text that is not valid in the session's encoding is refused like the server refuses it:
/// an error, an audit event, a log line; the session goes on.
#[tokio::test]
async fn undecodable_text_is_refused_and_the_session_goes_on() {
    let gh = start().await;
    let token = gh.issue("raw", "human", &[]).await;
    let mut s = RawPg::login(gh.port, "raw", &token).await;
    // Invalid UTF-8 in a simple query.
    let mut q = BytesMut::new();
    q.extend_from_slice(&raw::message(b'Q', b"SELECT 'caf\xe9'\0"));
    s.send(&[q]).await;
    let r = s.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("22021"), "{}", r.describe());
    assert_eq!(s.simple("SELECT 1").await.cells(), vec!["1"]);

    // Under EUC_JP, a lead byte followed by a quote is not a character.
    let r = s.simple("SET client_encoding TO 'EUC_JP'").await;
    assert!(r.error().is_none(), "{}", r.describe());
    let parse = raw::message(b'P', b"\0SELECT '\xc6' OR 1=1 --'\0\0\0");
    s.send(&[
        parse,
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = s.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("22021"), "{}", r.describe());
    assert!(!r.tags().contains('D'), "{}", r.describe());
    // Valid EUC_JP still works.
    let mut q = BytesMut::new();
    q.extend_from_slice(&raw::message(b'Q', b"SELECT '\xc6\xfc\xcb\xdc'\0"));
    s.send(&[q]).await;
    let r = s.read_ready(1).await;
    assert!(r.error().is_none(), "{}", r.describe());

    let events = gh
        .wait_events("refused text", |ev| {
            ev.iter()
                .any(|e| e["decision"] == "deny" && e["statement"] == "SELECT 'caf\u{fffd}'")
        })
        .await;
    let refused: Vec<&Value> = events
        .iter()
        .filter(|e| e["policies"] == json!(["gatehouse.encoding"]) || e["decision"] == "deny")
        .collect();
    assert!(refused.len() >= 2, "{events:?}");
    assert!(gh.log().contains("message refused"));
}

/// libpq 18 asks for protocol 3.2 and may send `_pq_.*` options: Gatehouse answers with
/// NegotiateProtocolVersion (3.0, the options it does not know), as PostgreSQL does, and the
/// session proceeds; protocol 2 gets a clear FATAL error.
#[tokio::test]
async fn protocol_versions_are_negotiated() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("neg", "human", &[]).await;
    let mut startup = BytesMut::new();
    let body = b"user\0neg\0database\0app\0_pq_.future_option\0on\0\0";
    startup.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
    startup.extend_from_slice(&(3i32 << 16 | 2).to_be_bytes());
    startup.extend_from_slice(body);
    let (s, buf, seen) = raw::login_with(gh.port, startup, &token).await;
    let v = seen
        .iter()
        .find(|m| m.tag == b'v')
        .expect("NegotiateProtocolVersion");
    assert_eq!(&v.body[..8], &[0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(&v.body[8..], b"_pq_.future_option\0");
    let key = seen.iter().find(|m| m.tag == b'K').expect("BackendKeyData");
    assert_eq!(key.body.len(), 8, "a 3.0 key: 4-byte PID and 4-byte secret");
    let mut s = RawPg::from_login(s, buf);
    let pid = s.simple("SELECT pg_backend_pid()").await.cells();
    let told = i32::from_be_bytes([key.body[0], key.body[1], key.body[2], key.body[3]]);
    assert_eq!(pid, vec![told.to_string()]);

    let mut c = raw::connect(gh.port).await;
    let mut old = BytesMut::new();
    old.extend_from_slice(&[0, 0, 0, 17, 0, 2, 0, 0]);
    old.extend_from_slice(b"user\0neg\0\0");
    tokio::io::AsyncWriteExt::write_all(&mut c, &old)
        .await
        .unwrap();
    let mut b = BytesMut::new();
    let msgs = raw::read_until_closed(&mut c, &mut b, Duration::from_secs(5)).await;
    let e = msgs.iter().find(|m| m.tag == b'E').expect("an error");
    assert_eq!(e.field(b'C').as_deref(), Some("0A000"));
    assert!(e.field(b'M').unwrap_or_default().contains("2.0"));
}

/// psql's `\lo_import`/`\lo_export` use libpq's large-object API, which calls functions by OID
/// (FunctionCall): decided and audited as the same calls in SQL. A call of any other OID is
/// refused and the session goes on; the server-file forms stay refused by the built-in pack.
#[tokio::test]
async fn large_objects_through_fastpath_calls() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("lo", "human", &[]).await;
    let file = gh.dir.path().join("in.bin");
    let content: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let out_file = gh.dir.path().join("out.bin");
    let script = format!(
        "\\lo_import {}\n\\lo_export :LASTOID {}\nSELECT lo_unlink(:LASTOID);\n",
        file.display(),
        out_file.display()
    );
    let script_file = gh.dir.path().join("lo.sql");
    std::fs::write(&script_file, script).unwrap();
    let out = tokio::process::Command::new(crate::harness::pg_tool("psql"))
        .arg(gh.conninfo("lo"))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-f"])
        .arg(&script_file)
        .env("PGPASSWORD", &token)
        .env_remove("PGHOST")
        .env_remove("PGSERVICE")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "psql: {stderr}");
    assert_eq!(std::fs::read(&out_file).unwrap(), content);
    let events = gh
        .wait_events("fastpath calls", |ev| {
            ev.iter()
                .any(|e| e["statement"] == "SELECT pg_catalog.lowrite($1, $2)")
        })
        .await;
    for f in ["lo_creat", "lo_open", "lowrite", "loread", "lo_close"] {
        let sql_prefix = format!("SELECT pg_catalog.{f}(");
        assert!(
            events.iter().any(|e| e["statement"]
                .as_str()
                .is_some_and(|s| s.starts_with(&sql_prefix))
                && e["outcome"]["status"] == "ok"),
            "{f} not audited: {events:?}"
        );
    }

    // Raw: an OID that is not a large-object function (1242 is boolin) is refused; the
    // server-side lo_import (764) is refused by the built-in pack; the session goes on.
    let mut s = RawPg::login(gh.port, "lo", &token).await;
    for (oid, arg) in [(1242u32, &b"t"[..]), (764, &b"/etc/passwd"[..])] {
        let mut body = Vec::new();
        body.extend_from_slice(&oid.to_be_bytes());
        body.extend_from_slice(&[0, 0, 0, 1]);
        body.extend_from_slice(&(arg.len() as i32).to_be_bytes());
        body.extend_from_slice(arg);
        body.extend_from_slice(&[0, 0]);
        s.send(&[raw::message(b'F', &body)]).await;
        let r = s.read_ready(1).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{oid}: {}",
            r.describe()
        );
        assert!(!r.tags().contains('V'), "{}", r.describe());
    }
    assert_eq!(s.simple("SELECT 1").await.cells(), vec!["1"]);
}

/// A TCP relay in front of the upstream whose connections can all be cut at once, as a
/// crashed server or a broken network would.
struct Cuttable {
    port: u16,
    cut: std::sync::Arc<tokio::sync::Notify>,
}

impl Cuttable {
    async fn start(host: &str, port: u16) -> Cuttable {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(tokio::sync::Notify::new());
        let target = format!("{host}:{port}");
        let c = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = c.notified() => {}
                    }
                });
            }
        });
        Cuttable { port: local, cut }
    }
}

/// The upstream connection dying without a word: the client gets a FATAL error (not a
/// silently closed socket) and the proxy logs it.
#[tokio::test]
async fn a_silently_lost_upstream_is_reported() {
    let up = upstream();
    let relay = Cuttable::start(&up.host, up.port).await;
    let db = crate::harness::TestDb::create().await;
    let password_env = if up.password.is_some() {
        format!("password_env = \"{}\"\n", crate::harness::PASSWORD_ENV)
    } else {
        String::new()
    };
    let gh = Gatehouse::start_with(Options {
        extra_toml: format!(
            "[[targets]]\nname = \"relayed\"\nupstream = \"postgresql://{}@127.0.0.1:{}/{}\"\n{password_env}",
            up.user, relay.port, db.name
        ),
        ..Options::default()
    })
    .await;
    let token = gh.issue("lost", "human", &[]).await;
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(gh.port)
        .user("lost")
        .password(token.as_str())
        .dbname("relayed");
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await.unwrap();
    let conn = tokio::spawn(conn);
    client.simple_query("SELECT 1").await.unwrap();
    relay.cut.notify_waiters();
    // The connection ends with the proxy's FATAL error, which tokio-postgres reports as the
    // connection's own error (nothing was in flight).
    let err = tokio::time::timeout(Duration::from_secs(10), conn)
        .await
        .expect("the proxy closed the client connection")
        .unwrap()
        .expect_err("the connection ended with an error");
    assert!(client.simple_query("SELECT 1").await.is_err());
    let db_err = err
        .as_db_error()
        .map(|e| (e.code().code().to_owned(), e.message().to_owned()));
    let (code, message) = db_err.unwrap_or_else(|| panic!("no error from the proxy: {err:?}"));
    assert_eq!(code, "08006", "{message}");
    assert!(message.contains("closed the connection"), "{message}");
    assert!(gh
        .log()
        .contains("upstream closed the connection unexpectedly"));
    drop(db);
}

/// After a statement that could change client_encoding, inside one unsynced pipeline: text
/// that reads the same in every encoding (plain ASCII, no backslash) goes on; text that does
/// not waits for Gatehouse's in-batch check of the settings (a statement of its own and Flush,
/// the batch left open), then is read in the encoding the server now uses.
#[tokio::test]
async fn pipelined_text_after_an_encoding_change() {
    let gh = start().await;
    let token = gh.issue("pipe", "human", &[]).await;
    let mut s = RawPg::login(gh.port, "pipe", &token).await;
    let set = "SET client_encoding TO 'LATIN1'";
    s.send(&[
        rawpg::parse("", set),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("", "SELECT 'plain ascii'"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        // UTF-8 bytes for é: in LATIN1 they are two characters, Ã and ©.
        raw::message(b'P', "\0SELECT 'é'\0\0\0".as_bytes()),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = s.read_ready(1).await;
    assert!(r.error().is_none(), "{}", r.describe());
    assert!(
        r.cells().contains(&"plain ascii".to_owned()),
        "{}",
        r.describe()
    );
    let rows: Vec<&crate::raw::Msg> = r.msgs.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows.len(), 2, "{}", r.describe());
    assert!(rows[1].body.ends_with(b"\xc3\xa9"), "{:?}", rows[1].body);
    // The audit trail has the statement as the server read it.
    gh.wait_events("the LATIN1 statement", |ev| {
        ev.iter().any(|e| e["statement"] == "SELECT '\u{c3}\u{a9}'")
    })
    .await;
    // Gatehouse's own check never reaches the client, and its name is reserved.
    assert!(
        !r.bytes.windows(9).any(|w| w == b"gatehouse"),
        "{}",
        r.describe()
    );
    s.send(&[
        rawpg::parse("gatehouse.text_settings", "SELECT 1"),
        rawpg::sync(),
    ])
    .await;
    assert_eq!(s.read_ready(1).await.sqlstate().as_deref(), Some("42501"));
    let r = s
        .simple("PREPARE \"gatehouse.text_settings\" AS SELECT 1")
        .await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"));
    // Set and answered: text is read in LATIN1 (é is one byte there).
    let mut q = BytesMut::new();
    q.extend_from_slice(&raw::message(b'Q', b"SELECT 'caf\xe9'\0"));
    s.send(&[q]).await;
    let r = s.read_ready(1).await;
    assert!(r.error().is_none(), "{}", r.describe());
    let row = r.msgs.iter().find(|m| m.tag == b'D').expect("a row");
    assert!(row.body.ends_with(b"caf\xe9"), "{:?}", row.body);
}

/// The in-batch settings check in a failed transaction: its error (25P02) reaches the client
/// in place of the error its own statement would have got, the rest is skipped to Sync, and
/// the session goes on as it does directly.
#[tokio::test]
async fn in_batch_check_in_a_failed_transaction() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("failed", "human", &[]).await;
    let mut s = RawPg::login(gh.port, "failed", &token).await;
    assert!(s.simple("BEGIN").await.error().is_none());
    assert!(s.simple("SELECT 1/0").await.error().is_some());
    s.send(&[
        rawpg::parse("c", "COMMIT"),
        rawpg::bind("", "c", &[], &[]),
        raw::message(b'P', "\0SELECT 'é'\0\0\0".as_bytes()),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = s.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("25P02"), "{}", r.describe());
    assert_eq!(
        r.msgs.iter().filter(|m| m.tag == b'E').count(),
        1,
        "{}",
        r.describe()
    );
    assert!(!r.tags().contains('D'), "{}", r.describe());
    assert!(s.simple("ROLLBACK").await.error().is_none());
    assert_eq!(s.simple("SELECT 'après'").await.cells(), vec!["après"]);
    let log = gh.log();
    assert!(!log.contains("closing the session"), "{log}");
}

/// The detector safety net when the server switches encodings in the middle of a query
/// string (it reports the change only at its end): a value that is not UTF-8 where Gatehouse
/// still expects UTF-8 could not be read by the detectors, so the row is withheld, never
/// passed on unread.
#[tokio::test]
async fn detectors_never_pass_unreadable_values() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: "[masking]\ndetect_all_text = true\n".into(),
        setup_sql: "CREATE TABLE memo (id int, body text);
            INSERT INTO memo VALUES (1, 'zoë.secret@example.com');"
            .into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("memo", "human", &[]).await;
    let mut s = RawPg::login(gh.port, "memo", &token).await;
    let r = s
        .simple("SET client_encoding TO 'LATIN1'; SELECT body FROM memo")
        .await;
    assert!(
        !r.bytes.windows(6).any(|w| w == b"secret"),
        "{}",
        r.describe()
    );
    assert!(r.error().is_some(), "{}", r.describe());
    // Once reported, LATIN1 is followed and the value is read and redacted.
    let r = s.simple("SELECT body FROM memo").await;
    assert!(r.error().is_none(), "{}", r.describe());
    assert!(
        !r.bytes.windows(6).any(|w| w == b"secret"),
        "{}",
        r.describe()
    );
    assert_eq!(r.rows().len(), 1, "{}", r.describe());
}

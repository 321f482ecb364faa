//! Hostile bytes from the network: every malformed connection is closed (with a FATAL error
//! where the protocol allows one), nothing panics, and a healthy session running alongside
//! never notices.

use crate::harness::Gatehouse;
use crate::raw::{self, read_until_closed, Msg, Prng};
use bytes::{BufMut, BytesMut};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLOSE: Duration = Duration::from_secs(5);

/// A session that runs a query every few milliseconds until told to stop; returns how many
/// succeeded, or the first error.
fn healthy_session(
    client: tokio_postgres::Client,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Result<u64, String>> {
    tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            let v = i64::try_from(n).unwrap_or(0);
            let row = client
                .query_one("SELECT $1::int8 + 1", &[&v])
                .await
                .map_err(|e| format!("healthy session failed after {n} queries: {e}"))?;
            if row.get::<_, i64>(0) != v + 1 {
                return Err(format!("wrong answer at {n}"));
            }
            n += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(n)
    })
}

/// Sends `bytes` on a fresh connection, optionally half-closes, and waits for the proxy to
/// close it.
async fn pre_login(port: u16, what: &str, bytes: &[u8], half_close: bool) -> Vec<Msg> {
    let mut s = raw::connect(port).await;
    // The proxy may close before reading everything; a failed write is fine.
    let _ = s.write_all(bytes).await;
    if half_close {
        let _ = s.shutdown().await;
    }
    let mut buf = BytesMut::new();
    let msgs = read_until_closed(&mut s, &mut buf, CLOSE).await;
    for m in &msgs {
        assert!(
            m.tag == b'E' || m.tag == b'N',
            "{what}: unexpected reply {m:?}"
        );
    }
    msgs
}

fn startup_packet(code: u32, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u32(body.len() as u32 + 8);
    b.put_u32(code);
    b.put_slice(body);
    b.to_vec()
}

/// Asserts the connection ended with a FATAL protocol-violation error.
fn assert_fatal(what: &str, msgs: &[Msg], sqlstates: &[&str]) {
    let err = msgs
        .iter()
        .find(|m| m.tag == b'E')
        .unwrap_or_else(|| panic!("{what}: no error before close: {msgs:?}"));
    assert_eq!(err.field(b'S').as_deref(), Some("FATAL"), "{what}: {err:?}");
    let code = err.field(b'C').unwrap_or_default();
    assert!(
        sqlstates.contains(&code.as_str()),
        "{what}: SQLSTATE {code} {:?}",
        err.field(b'M')
    );
}

#[tokio::test]
async fn malformed_packets_close_only_their_connection() {
    let mut gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let port = gh.port;
    let stop = Arc::new(AtomicBool::new(false));
    let healthy = healthy_session(gh.connect("alice", &token).await, stop.clone());

    // --- Before login -------------------------------------------------------------------
    // (a) A startup packet claiming 2 GiB: refused on the length alone (no waiting for, or
    // allocating, the body), without any half-close from us.
    pre_login(
        port,
        "2 GiB startup",
        &[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0],
        false,
    )
    .await;
    // Negative and too-small lengths.
    pre_login(port, "negative length", &[0x80, 0, 0, 0, 0, 3, 0, 0], false).await;
    pre_login(port, "length 4", &[0, 0, 0, 4, 0, 3, 0, 0], false).await;
    // Garbage as the first packet (an HTTP request).
    pre_login(port, "HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", false).await;
    // A startup packet whose parameters are not terminated.
    pre_login(
        port,
        "unterminated params",
        &startup_packet(196_608, b"user\0alice"),
        false,
    )
    .await;
    pre_login(
        port,
        "unterminated value",
        &startup_packet(196_608, b"user\0alice\0database\0ap"),
        false,
    )
    .await;
    // Protocol 2.0 and a made-up version.
    pre_login(
        port,
        "protocol 2",
        &startup_packet(0x0002_0000, b"user\0alice\0\0"),
        false,
    )
    .await;
    pre_login(
        port,
        "protocol 9.9",
        &startup_packet(0x0009_0009, b"user\0alice\0\0"),
        false,
    )
    .await;
    // An SSLRequest with plaintext pipelined behind it (CVE-2021-23214 shape).
    let mut ssl_then_plain = startup_packet(80_877_103, b"");
    ssl_then_plain.extend(raw::startup(&[("user", "alice"), ("database", "app")]));
    pre_login(port, "SSLRequest + plaintext", &ssl_then_plain, false).await;
    // An SSLRequest answered N, then a startup packet with a huge length.
    {
        let mut s = raw::connect(port).await;
        s.write_all(&startup_packet(80_877_103, b"")).await.unwrap();
        let mut one = [0u8; 1];
        tokio::time::timeout(CLOSE, s.read_exact(&mut one))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(&one, b"N", "no TLS configured: SSLRequest is answered N");
        s.write_all(&[0x7f, 0xff, 0xff, 0xff]).await.unwrap();
        read_until_closed(&mut s, &mut BytesMut::new(), CLOSE).await;
    }
    // Endless negotiation: GSSENCRequests until the proxy gives up.
    let mut gss = Vec::new();
    for _ in 0..5 {
        gss.extend(startup_packet(80_877_104, b""));
    }
    pre_login(port, "negotiation loop", &gss, false).await;
    // A CancelRequest for a key nobody has, and a truncated one.
    pre_login(
        port,
        "bogus cancel",
        &startup_packet(80_877_102, &[0, 0, 0, 1, 0, 0, 0, 2]),
        false,
    )
    .await;
    pre_login(
        port,
        "short cancel",
        &startup_packet(80_877_102, &[0, 0, 0, 1]),
        false,
    )
    .await;
    // During authentication: a SASL message that is not SCRAM, and a huge password message.
    for (what, bytes, states) in [
        (
            "garbage SASL",
            raw::message(b'p', b"\xff\xfe\xfd").to_vec(),
            &["08P01", "28P01"][..],
        ),
        (
            "2 GiB password message",
            vec![b'p', 0x7f, 0xff, 0xff, 0xff],
            &["08P01"][..],
        ),
        (
            "wrong mechanism",
            raw::message(b'p', b"PLAIN\0\0\0\0\x04abcd").to_vec(),
            &["08P01", "28P01"][..],
        ),
    ] {
        let mut s = raw::connect(port).await;
        let mut buf = BytesMut::new();
        s.write_all(&raw::startup(&[("user", "alice"), ("database", "app")]))
            .await
            .unwrap();
        let sasl = raw::read_msg(&mut s, &mut buf).await.expect("SASL request");
        assert_eq!(sasl.tag, b'R');
        s.write_all(&bytes).await.unwrap();
        let msgs = read_until_closed(&mut s, &mut buf, CLOSE).await;
        assert_fatal(what, &msgs, states);
    }
    // Random bytes (deterministic seeds), then a half-close.
    let mut rng = Prng::new(0x5eed_0001);
    for i in 0..40 {
        let n = 1 + (rng.next_u64() % 300) as usize;
        let bytes = rng.bytes(n);
        pre_login(port, &format!("random #{i}"), &bytes, true).await;
    }

    // --- After login --------------------------------------------------------------------
    let post: Vec<(&str, Vec<u8>, bool)> = vec![
        // (b) A Query claiming 2 GiB.
        ("2 GiB Query", vec![b'Q', 0x7f, 0xff, 0xff, 0xff], false),
        ("length below 4", vec![b'Q', 0, 0, 0, 2], false),
        (
            "Query without NUL",
            raw::message(b'Q', b"SELECT 1").to_vec(),
            false,
        ),
        (
            "truncated Bind",
            raw::message(b'B', b"\0\0\0\x05").to_vec(),
            false,
        ),
        (
            "Parse with absurd param count",
            raw::message(b'P', b"\0SELECT 1\0\x7f\xff").to_vec(),
            false,
        ),
    ];
    for (what, bytes, half_close) in post {
        let (mut s, mut buf) = raw::login(port, "alice", &token).await;
        let _ = s.write_all(&bytes).await;
        if half_close {
            let _ = s.shutdown().await;
        }
        let msgs = read_until_closed(&mut s, &mut buf, CLOSE).await;
        assert_fatal(what, &msgs, &["08P01"]);
    }
    // An unknown message type goes to the server, which ends the session itself.
    {
        let (mut s, mut buf) = raw::login(port, "alice", &token).await;
        s.write_all(&raw::message(b'z', b"hello\0")).await.unwrap();
        let msgs = read_until_closed(&mut s, &mut buf, CLOSE).await;
        assert_fatal("unknown message type", &msgs, &["08P01"]);
    }
    // Random bytes after a good login, then a half-close.
    let mut rng = Prng::new(0x5eed_0002);
    for i in 0..20 {
        let (mut s, mut buf) = raw::login(port, "alice", &token).await;
        let n = 1 + (rng.next_u64() % 300) as usize;
        let _ = s.write_all(&rng.bytes(n)).await;
        let _ = s.shutdown().await;
        let r = tokio::time::timeout(CLOSE, async {
            while raw::read_msg(&mut s, &mut buf).await.is_some() {}
        })
        .await;
        assert!(r.is_ok(), "random #{i} after login: connection not closed");
    }

    // --- Everyone else is fine ----------------------------------------------------------
    stop.store(true, Ordering::Relaxed);
    let served = healthy.await.unwrap().unwrap();
    assert!(served > 10, "the healthy session ran only {served} queries");
    let c = gh.connect("alice", &token).await;
    let v: i32 = c.query_one("SELECT 41 + 1", &[]).await.unwrap().get(0);
    assert_eq!(v, 42);
    assert!(gh.is_running(), "the proxy exited:\n{}", gh.log());
    let log = gh.log();
    assert!(!log.contains("panicked"), "the proxy panicked:\n{log}");
    // The audit chain stayed intact through all of it.
    let (code, out) = gh.verify().await;
    assert_eq!(code, 0, "{out}");
}

/// FunctionCall (fastpath) runs a function by OID outside any SQL text: refused with 42501,
/// in order, and the session goes on.
#[tokio::test]
async fn fastpath_function_call_is_refused() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let (mut s, mut buf) = raw::login(gh.port, "alice", &token).await;
    // pg_backend_pid() is OID 2026: no arguments, text result.
    let mut call = BytesMut::new();
    call.put_u32(2026);
    call.put_i16(0);
    call.put_i16(0);
    call.put_i16(0);
    let mut bytes = raw::message(b'F', &call);
    bytes.extend_from_slice(&raw::message(b'Q', b"SELECT 'after'\0"));
    s.write_all(&bytes).await.unwrap();
    let mut tags = Vec::new();
    let mut error = None;
    while tags.iter().filter(|t| **t == b'Z').count() < 2 {
        let m = tokio::time::timeout(CLOSE, raw::read_msg(&mut s, &mut buf))
            .await
            .expect("no answer")
            .expect("connection closed");
        if m.tag == b'E' {
            error = Some(m.clone());
        }
        tags.push(m.tag);
    }
    assert_eq!(
        tags,
        b"EZTDCZ".to_vec(),
        "{:?}",
        String::from_utf8_lossy(&tags)
    );
    let error = error.unwrap();
    assert_eq!(error.field(b'C').as_deref(), Some("42501"));
    assert!(
        error.field(b'M').unwrap_or_default().contains("fastpath"),
        "{error:?}"
    );
}

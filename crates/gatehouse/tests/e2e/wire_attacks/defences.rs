//! The first round's defences: attacks stopped from the start.

use super::*;

/// Expressions over both sensitive columns: no RowDescription origin, only the plan masks them.
const EXPR_READ: &str = "SELECT email || '' AS e, ssn || '' AS s FROM users";

/// Text pipelined right after a SET client_encoding is read in the new encoding (the proxy
/// waits for the server's report; in an unsynced batch it asks the server in the batch).
#[tokio::test]
async fn defence_text_after_an_encoding_change_is_read_in_the_new_encoding() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[
        rawpg::query("SET client_encoding TO 'LATIN1'"),
        query_b(b"SELECT 'caf\xe9' AS v"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert_ok("pipelined LATIN1 text", &r);
    let row = r.msgs.iter().find(|m| m.tag == b'D').expect("a row");
    assert!(row.body.ends_with(b"caf\xe9"), "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'UTF8'").await;

    // In an unsynced batch: the Parse after the SET waits for Gatehouse's in-batch check of
    // the settings, then is read in LATIN1, as the server reads it.
    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SET client_encoding TO 'LATIN1'"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            parse_b(b"", b"SELECT 'caf\xe9' AS v"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert!(r.error().is_none() && r.complete(), "{}", r.describe());
    let row = r.msgs.iter().find(|m| m.tag == b'D').expect("a row");
    assert!(row.body.ends_with(b"caf\xe9"), "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'UTF8'").await;
    let r = c.simple(EXPR_READ).await;
    assert_no_secrets("after the batch", &r.bytes);
    assert_eq!(r.rows().len(), 3, "{}", r.describe());

    // A prepared SET run later (Bind/Execute) is followed the same way.
    ok(&mut c, "SET client_encoding TO 'UTF8'").await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse("setenc", "SET client_encoding TO 'LATIN1'"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse setenc", &r);
    c.send(&[
        rawpg::bind("", "setenc", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
        query_b(b"SELECT 'se\xf1or' AS v"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert_ok("prepared SET then LATIN1 text", &r);
    assert!(
        r.msgs
            .iter()
            .any(|m| m.tag == b'D' && m.body.ends_with(b"se\xf1or")),
        "{}",
        r.describe()
    );
}

/// Encoding changes undone by the server (ROLLBACK TO SAVEPOINT, ROLLBACK of SET LOCAL, a
/// rolled-back failed transaction) are followed before the next text is read. (RESET ALL and
/// DISCARD ALL are refused by the built-in pack as role switches.)
#[tokio::test]
async fn defence_encoding_changes_undone_by_the_server_are_followed() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let utf8_text = "SELECT 'café ☃' AS v";
    for (what, setup, undo) in [
        (
            "ROLLBACK TO SAVEPOINT",
            &["BEGIN", "SAVEPOINT s", "SET client_encoding TO 'LATIN1'"][..],
            "ROLLBACK TO SAVEPOINT s",
        ),
        (
            "ROLLBACK",
            &["BEGIN", "SET LOCAL client_encoding TO 'WIN1252'"][..],
            "ROLLBACK",
        ),
        (
            "an aborted transaction",
            &["BEGIN", "SET client_encoding TO 'KOI8R'"][..],
            "SELECT 1/0",
        ),
    ] {
        for s in setup {
            ok(&mut c, s).await;
        }
        c.send(&[rawpg::query(undo), rawpg::query(utf8_text)]).await;
        let r = c.read_ready(2).await;
        if undo == "SELECT 1/0" {
            // The failed transaction refuses the text; ROLLBACK undoes the change.
            assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
            c.send(&[rawpg::query("ROLLBACK"), rawpg::query(utf8_text)])
                .await;
            let r = c.read_ready(2).await;
            assert_ok(what, &r);
            assert!(
                r.cells().iter().any(|v| v == "café ☃"),
                "{what}: {}",
                r.describe()
            );
            continue;
        }
        assert_ok(what, &r);
        assert!(
            r.cells().iter().any(|v| v == "café ☃"),
            "{what}: {}",
            r.describe()
        );
        if c.simple("COMMIT").await.error().is_some() {
            panic!("{what}: session broken");
        }
    }
}

/// Masked columns, errors quoting sensitive values and COPY, read in single-byte and
/// multi-byte client encodings: nothing in clear (masked in the client's encoding, or
/// refused, or withheld).
#[tokio::test]
async fn defence_masking_holds_in_every_client_encoding() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for enc in [
        "LATIN1",
        "WIN1252",
        "EUC_JP",
        "KOI8U",
        "EUC_CN",
        "SQL_ASCII",
    ] {
        ok(&mut c, &format!("SET client_encoding TO '{enc}'")).await;
        for sql in [
            EXPR_READ,
            "SELECT email, ssn FROM users ORDER BY id",
            "SELECT ssn::int FROM users",
            "SELECT (ssn || 'é')::int FROM users",
            "COPY users TO STDOUT",
            "COPY users TO STDOUT (ENCODING 'LATIN1')",
            "COPY users TO STDOUT WITH ENCODING 'UTF8'",
            "COPY (SELECT ssn, email FROM users) TO STDOUT",
        ] {
            let r = c.simple(sql).await;
            assert!(r.complete(), "{enc}: {sql}: {}", r.describe());
            assert_no_secrets(&format!("{enc}: {sql}"), &r.bytes);
        }
        // Extended protocol with binary results.
        let r = ext(
            &mut c,
            &[
                rawpg::parse("", "SELECT email, ssn || '' FROM users"),
                rawpg::bind("", "", &[], &[1]),
                rawpg::execute("", 0),
                rawpg::sync(),
            ],
            1,
        )
        .await;
        assert_no_secrets(&format!("{enc}: binary"), &r.bytes);
    }
}

/// Under LATIN1 two temporary views whose names the probe reads alike ("xÀ" and "xÿ" both
/// become "x\u{FFFD}") collapse into one, but their column lists then disagree with the
/// surviving definition and lineage refuses: the collision is not a leak.
#[tokio::test]
async fn defence_colliding_temporary_view_names_are_refused_not_misread() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE TEMP VIEW \"x\u{C0}\" AS SELECT ssn || '' AS s FROM users",
    )
    .await;
    ok(
        &mut c,
        "CREATE TEMP VIEW \"x\u{FF}\" AS SELECT 'nothing to see'::text AS s",
    )
    .await;
    ok(&mut c, "CREATE TEMP VIEW v1 AS SELECT s FROM \"x\u{C0}\"").await;
    let r = ok(&mut c, "SELECT s FROM v1").await;
    assert_eq!(r.rows().len(), 3, "control: {}", r.describe());
    ok(&mut c, "SET client_encoding TO 'LATIN1'").await;
    // Temporary DDL has the proxy probe the session's temporary relations again, under LATIN1.
    ok(&mut c, "CREATE TEMP VIEW w AS SELECT 1 AS one").await;
    let r = c.simple("SELECT s FROM v1").await;
    assert!(r.complete(), "{}", r.describe());
    assert_no_secrets("v1 under LATIN1", &r.bytes);
}

/// Encodings whose multi-byte characters can hold ASCII bytes are never followed: however the
/// change is asked for, the session ends with an error before more text is analysed, and what
/// was pipelined behind it does not run.
#[tokio::test]
async fn defence_unsafe_encodings_end_the_session_before_more_text_runs() {
    let (gh, token) = start().await;
    for change in [
        "SET client_encoding TO 'SJIS'",
        "SET NAMES 'BIG5'",
        "SET client_encoding TO 'win936'",
        "SELECT set_config('client_encoding', 'GBK', false)",
        "UPDATE pg_settings SET setting = 'UHC' WHERE name = 'client_encoding'",
        "SET client_encoding TO 'EUC_TW'",
    ] {
        let mut c = RawPg::login(gh.port, "alice", &token).await;
        // 0x95 0x5C is one SJIS character: the backslash is no escape to the server.
        c.send(&[
            rawpg::query(change),
            query_b(b"SELECT E'\x95\\' ; DROP TABLE orders; --'"),
        ])
        .await;
        let r = c.read_ready(2).await;
        assert!(
            r.error().is_some() && !r.timed_out,
            "{change}: {}",
            r.describe()
        );
        assert!(orders_exist(&gh).await, "{change}: orders dropped");
        let after = c.simple("SELECT 1").await;
        assert!(
            after.closed || after.error().is_some() || after.cells() == vec!["1"],
            "{change}: {}",
            after.describe()
        );
    }
    // In the startup packet, directly or through options: refused at login.
    for params in [
        &[("client_encoding", "SJIS")][..],
        &[("options", "-c client_encoding=JOHAB")][..],
    ] {
        let mut all = vec![("user", "alice"), ("database", "app")];
        all.extend_from_slice(params);
        let mut s = raw::connect(gh.port).await;
        tokio::io::AsyncWriteExt::write_all(&mut s, &raw::startup(&all))
            .await
            .unwrap();
        let mut b = BytesMut::new();
        let msgs = raw::read_until_closed(&mut s, &mut b, Duration::from_secs(10)).await;
        assert!(
            msgs.iter().any(|m| m.tag == b'E') && !msgs.iter().any(|m| m.tag == b'Z'),
            "{params:?}: {msgs:?}"
        );
    }
}

/// FunctionCall misuse: inside a batch, with the wrong number of arguments, in a failed
/// transaction, pipelined with masked reads, and during COPY IN — each refused or answered by
/// the server, in order, with later results still masked and nothing hanging.
#[tokio::test]
async fn defence_fastpath_calls_stay_in_step() {
    // On a target with [[sensitive]] columns every large-object call is refused (lo_* have no
    // known lineage); the fastpath is exercised where it is allowed.
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let read = "SELECT total FROM orders ORDER BY id";
    // In an unsynced batch: refused (answered with its own ReadyForQuery, as the server answers
    // a FunctionCall); the rest of the batch then fails on the server, in order.
    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SELECT 1"),
            rawpg::bind("", "", &[], &[]),
            function_call(957, &[b"-1"]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        2,
    )
    .await;
    assert!(!r.timed_out && !r.closed, "{}", r.describe());
    assert!(r.error().is_some(), "{}", r.describe());
    assert!(!r.tags().contains('V'), "{}", r.describe());
    let extra = c.drain(Duration::from_millis(300)).await;
    let r = c.simple(read).await;
    assert_eq!(
        r.cells(),
        vec!["500", "700"],
        "after the batch (extra {}): {}",
        extra.describe(),
        r.describe()
    );

    // Wrong number of arguments for a known OID: refused, never sent.
    c.send(&[function_call(952, &[b"1"])]).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());

    // In a failed transaction: the server's error, in order.
    ok(&mut c, "BEGIN").await;
    let r = c.simple("SELECT 1/0").await;
    assert!(r.error().is_some(), "{}", r.describe());
    c.send(&[function_call(957, &[b"-1"]), rawpg::query(read)])
        .await;
    let r = c.read_ready(2).await;
    assert!(r.complete(), "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("25P02"), "{}", r.describe());
    assert!(
        !r.tags().contains('V') && !r.tags().contains('D'),
        "{}",
        r.describe()
    );
    ok(&mut c, "ROLLBACK").await;

    // Pipelined with masked reads: every answer matched to its request.
    c.send(&[
        function_call(957, &[b"-1"]),
        rawpg::query(read),
        function_call(957, &[b"-1"]),
        rawpg::query("SELECT name FROM pets"),
    ])
    .await;
    let r = c.read_ready(4).await;
    assert!(r.complete() && r.error().is_none(), "{}", r.describe());
    assert_eq!(r.msgs.iter().filter(|m| m.tag == b'V').count(), 2);
    assert_eq!(r.cells(), vec!["500", "700", "Rex"], "{}", r.describe());

    // During COPY IN the server takes a FunctionCall as a protocol violation (ERROR, then FATAL):
    // the session ends with the server's error and the proxy's FATAL, not silently, no hang.
    c.send(&[rawpg::query("COPY pets (id, name) FROM STDIN")])
        .await;
    let r = c.read_until_tag(b'G').await;
    assert!(r.complete(), "{}", r.describe());
    c.send(&[function_call(957, &[b"-1"]), rawpg::copy_done()])
        .await;
    let r = c.read_ready(2).await;
    assert!(!r.timed_out, "{}", r.describe());
    assert!(r.error().is_some(), "{}", r.describe());
}

/// Where columns are sensitive, a large object cannot be made from their values (in SQL) nor
/// read through the fastpath: large-object functions have no known lineage.
#[tokio::test]
async fn defence_large_objects_cannot_carry_sensitive_values() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for sql in [
        "SELECT lo_from_bytea(0, convert_to(ssn, 'UTF8')) FROM users",
        "SELECT lo_put(lo_create(0), 0, convert_to(email, 'UTF8')) FROM users",
        "SELECT lo_from_bytea(0, (SELECT convert_to(string_agg(ssn, ','), 'UTF8') FROM users))",
    ] {
        let r = c.simple(sql).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{sql}: {}",
            r.describe()
        );
    }
    for (oid, args) in [
        (3458u32, &[&b"1"[..]][..]),
        (954, &[&b"0"[..], &b"10"[..]][..]),
    ] {
        c.send(&[function_call(oid, args)]).await;
        let r = c.read_ready(1).await;
        assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    }
    assert_eq!(c.simple("SELECT 1").await.cells(), vec!["1"]);
}

/// The client is told the upstream's real PID with Gatehouse's own secret: a CancelRequest
/// with that PID and any other secret cancels nothing; the right pair cancels.
#[tokio::test]
async fn defence_cancel_needs_gatehouse_secret() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("can", "human", &[]).await;
    let (s, buf, seen) = raw::login_with(
        gh.port,
        raw::startup(&[("user", "can"), ("database", "app")]),
        &token,
    )
    .await;
    let key = seen.iter().find(|m| m.tag == b'K').expect("BackendKeyData");
    let pid = i32::from_be_bytes([key.body[0], key.body[1], key.body[2], key.body[3]]);
    let secret = i32::from_be_bytes([key.body[4], key.body[5], key.body[6], key.body[7]]);
    let mut c = RawPg::from_login(s, buf);
    let slow = "SELECT count(*) FROM generate_series(1, 8000000)";
    let cancel = |secret: i32| async move {
        let mut req = BytesMut::new();
        req.put_i32(16);
        req.put_i32(80_877_102);
        req.put_i32(pid);
        req.put_i32(secret);
        let mut s = raw::connect(gh.port).await;
        tokio::io::AsyncWriteExt::write_all(&mut s, &req)
            .await
            .unwrap();
        let mut b = BytesMut::new();
        raw::read_until_closed(&mut s, &mut b, Duration::from_secs(5)).await
    };
    for wrong in [secret.wrapping_add(1), secret ^ i32::MIN, 0] {
        c.send(&[rawpg::query(slow)]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let answer = cancel(wrong).await;
        assert!(answer.is_empty(), "{answer:?}");
        let r = c.read_ready(1).await;
        assert!(
            r.complete() && r.error().is_none(),
            "wrong secret cancelled: {}",
            r.describe()
        );
    }
    c.send(&[rawpg::query(slow)]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    cancel(secret).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
}

/// Protocol 3.2 startup: settings a client may not pass are refused as in 3.0, and `_pq_`
/// options never reach the server as settings.
#[tokio::test]
async fn defence_protocol_3_2_startup_is_filtered_like_3_0() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("neg", "human", &[]).await;
    let startup = |body: &[u8]| {
        let mut b = BytesMut::new();
        b.put_i32(8 + body.len() as i32);
        b.put_i32(3 << 16 | 2);
        b.put_slice(body);
        b
    };
    for body in [
        &b"user\0neg\0database\0app\0role\0postgres\0\0"[..],
        &b"user\0neg\0database\0app\0options\0-c session_replication_role=replica\0\0"[..],
        &b"user\0neg\0database\0app\0_PQ_.x\0y\0\0"[..],
    ] {
        let mut s = raw::connect(gh.port).await;
        tokio::io::AsyncWriteExt::write_all(&mut s, &startup(body))
            .await
            .unwrap();
        let mut b = BytesMut::new();
        let msgs = raw::read_until_closed(&mut s, &mut b, Duration::from_secs(10)).await;
        assert!(
            msgs.iter().any(|m| m.tag == b'E') && !msgs.iter().any(|m| m.tag == b'Z'),
            "{}: {msgs:?}",
            String::from_utf8_lossy(body)
        );
    }
    let (s, buf, _) = raw::login_with(
        gh.port,
        startup(b"user\0neg\0database\0app\0_pq_.gatehouse.identity\0bob\0\0"),
        &token,
    )
    .await;
    let mut c = RawPg::from_login(s, buf);
    let r = c
        .simple("SELECT current_setting('gatehouse.identity', true)")
        .await;
    assert_eq!(r.cells(), vec!["neg"], "{}", r.describe());
}

/// The server-side application_name is `gatehouse:<identity>/<client's>` so the server's own
/// views and logs show who is behind a session; a plain SET replaces it with anything,
/// another identity's prefix included, and pg_stat_activity (and `%a` in server logs) then
/// names that identity.
#[tokio::test]
async fn application_name_cannot_claim_another_identity() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let pid = ok(&mut c, "SELECT pg_backend_pid()").await.cells()[0].clone();
    // Claiming an identity is refused (in SET and set_config alike); a plain name is fine.
    for claim in [
        "SET application_name = 'gatehouse:bob/psql'",
        "SELECT set_config('application_name', 'GateHouse:bob', false)",
    ] {
        let r = c.simple(claim).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{claim}: {}",
            r.describe()
        );
    }
    let r = ok(&mut c, "SET application_name = 'report-job'").await;
    assert!(r.complete(), "{}", r.describe());
    ok(&mut c, "RESET application_name").await;
    let pid: i32 = pid.parse().unwrap();
    let seen: String = direct(&gh)
        .await
        .query_one(
            "SELECT application_name FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        seen.starts_with("gatehouse:alice"),
        "the server attributes alice's session to: {seen:?}"
    );
}

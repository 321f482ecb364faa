//! The first round's findings (all fixed), kept asserting the secure behaviour.

use super::*;

/// `SET client_encoding` executed inside an unsynced batch changes how the server reads every
/// later message of the batch at once, but the proxy learns of it only at ReadyForQuery: the
/// Bind after it is read as UTF-8 by the proxy ("é", a harmless statement) and as LATIN1 by
/// the server ("Ã©", a statement reading ssn in an expression, which only its own plan masks).
#[tokio::test]
async fn finding_names_after_in_batch_encoding_change_are_read_in_the_old_encoding() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse("é", "SELECT 'nothing to see'::text AS v"),
            rawpg::parse("Ã©", "SELECT ssn || '' AS v FROM users ORDER BY id"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse both", &r);
    // Control: the sensitive statement by its own name is masked.
    let r = ext(
        &mut c,
        &[
            rawpg::bind("", "Ã©", &[], &[]),
            rawpg::describe(b'P', ""),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("control", &r);
    assert_no_secrets("control", &r.bytes);

    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SET client_encoding TO 'LATIN1'"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            // b"\xc3\xa9": "é" in UTF-8 (the proxy), "Ã©" in LATIN1 (the server).
            bind_b(b"", "é".as_bytes(), &[]),
            rawpg::describe(b'P', ""),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_no_secrets("Bind read in two encodings", &r.bytes);
}

/// PostgreSQL's KOI8U reads byte 0xAE as U+255D; the proxy's converter (WHATWG KOI8-U, which
/// is KOI8-RU) as U+045E. A statement name with that byte names one prepared statement to the
/// proxy and another to the server.
#[tokio::test]
async fn finding_koi8u_name_read_unlike_the_server_unmasks() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse(KOI8U_SERVER, "SELECT ssn || '' AS v FROM users ORDER BY id"),
            rawpg::parse(KOI8U_PROXY, "SELECT 'nothing to see'::text AS v"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse both", &r);
    ok(&mut c, "SET client_encoding TO 'KOI8U'").await;
    let r = ext(
        &mut c,
        &[
            bind_b(b"", b"s\xae", &[]),
            rawpg::describe(b'P', ""),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_no_secrets("Bind of s\\xAE under KOI8U", &r.bytes);
}

/// The same confusion in the audit trail: the server runs a DELETE, the trail records the
/// SELECT the proxy believed it ran.
#[tokio::test]
async fn finding_koi8u_name_confusion_records_another_statement() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse(KOI8U_SERVER, "DELETE FROM orders WHERE id = 10"),
            rawpg::parse(KOI8U_PROXY, "SELECT 'harmless' AS h"),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Parse both", &r);
    ok(&mut c, "SET client_encoding TO 'KOI8U'").await;
    let r = ext(
        &mut c,
        &[
            bind_b(b"", b"s\xae", &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_ok("Execute", &r);
    let deleted: i64 = direct(&gh)
        .await
        .query_one("SELECT count(*) FROM orders WHERE id = 10", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(deleted, 0, "the server ran the DELETE");
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "'harmless'").is_empty()
    })
    .await;
    assert!(
        statements_containing(&events, "DELETE FROM orders")
            .iter()
            .any(|e| e["outcome"]["status"] == "ok"),
        "the DELETE that ran is not in the audit trail as having run: {:#?}",
        statements_containing(&events, "harmless")
    );
}

/// PostgreSQL's EUC_CN reads 0xA1A4 as U+30FB (KATAKANA MIDDLE DOT), the proxy as U+00B7
/// (MIDDLE DOT). DROP of "the session's temporary table archive·2023" is allowed by the
/// built-in pack; the server drops the permanent table "archive・2023".
#[tokio::test]
async fn finding_euc_cn_drop_of_temporary_table_drops_permanent_table() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: format!(
            "{SETUP}\nCREATE TABLE \"archive\u{30FB}2023\" (id int); INSERT INTO \"archive\u{30FB}2023\" VALUES (1);"
        ),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "CREATE TEMP TABLE \"archive\u{B7}2023\" (id int)").await;
    // A refused DROP still has the proxy probe the session's temporary tables first.
    let r = c.simple("DROP TABLE orders").await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'EUC_CN'").await;
    c.send(&[query_b(b"DROP TABLE \"archive\xa1\xa42023\"")])
        .await;
    let r = c.read_ready(1).await;
    let exists: bool = direct(&gh)
        .await
        .query_one(
            "SELECT to_regclass('public.\"archive\u{30FB}2023\"') IS NOT NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        exists,
        "the permanent table was dropped through the proxy: {}",
        r.describe()
    );
}

/// A setting changed by code the statement's text does not show — a cursor's query, run when
/// the cursor is fetched — is not followed by a wait for the server's report: the next query
/// string is analysed with standard_conforming_strings on while the server reads it with it
/// off. `SELECT 'a\' || ' ; DROP TABLE orders; COMMIT; -- '` is one SELECT of two literals to
/// the proxy, and SELECT; DROP TABLE; COMMIT to the server.
#[tokio::test]
async fn finding_setting_changed_by_a_fetched_cursor_smuggles_drop_table() {
    // Without [[sensitive]] columns (where any function call needs lineage, and set_config
    // has none), only the guardrails stand in the way.
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "BEGIN").await;
    ok(
        &mut c,
        "DECLARE c CURSOR FOR SELECT set_config('standard_conforming_strings', 'off', false)",
    )
    .await;
    // Text that is not plain ASCII has the proxy confirm the settings now (nothing changed
    // yet): the DECLARE's possible change is settled.
    ok(&mut c, "SELECT 'é'").await;
    c.send(&[
        rawpg::query("FETCH c"),
        rawpg::query("SELECT 'a\\' || ' ; DROP TABLE orders; COMMIT; -- '"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(
        orders_exist(&gh).await,
        "DROP TABLE orders ran on the server: {}",
        r.describe()
    );
}

/// The same through a column default of a temporary table (allowed DDL): INSERT … DEFAULT
/// VALUES runs set_config without showing it, no transaction needed.
#[tokio::test]
async fn finding_setting_changed_by_a_column_default_smuggles_drop_table() {
    let gh = Gatehouse::start_with(Options {
        setup_sql: SETUP.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE TEMP TABLE t (x text DEFAULT set_config('standard_conforming_strings', 'off', false))",
    )
    .await;
    ok(&mut c, "SELECT 'é'").await;
    c.send(&[
        rawpg::query("INSERT INTO t DEFAULT VALUES"),
        rawpg::query("SELECT 'a\\' || ' ; DROP TABLE orders; -- '"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(
        orders_exist(&gh).await,
        "DROP TABLE orders ran on the server: {}",
        r.describe()
    );
}

/// The session probe's rows arrive in the client encoding but are read as UTF-8: under LATIN1
/// a temporary view named "vé" is known to the proxy as "v\u{FFFD}", so the proxy's model of
/// the session's relations drifts from the server's and reading the view is refused as a
/// relation that does not exist (it works under UTF-8).
#[tokio::test]
async fn finding_probe_read_as_utf8_drifts_temporary_relations() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    // Control under UTF-8.
    ok(&mut c, "CREATE TEMP VIEW \"ué\" AS SELECT name FROM pets").await;
    let r = ok(&mut c, "SELECT name FROM \"ué\"").await;
    assert_eq!(r.cells(), vec!["Rex"], "{}", r.describe());
    ok(&mut c, "SET client_encoding TO 'LATIN1'").await;
    c.send(&[query_b(
        b"CREATE TEMP VIEW \"v\xe9\" AS SELECT name FROM pets",
    )])
    .await;
    assert_ok("CREATE TEMP VIEW under LATIN1", &c.read_ready(1).await);
    c.send(&[query_b(b"SELECT name FROM \"v\xe9\"")]).await;
    let r = c.read_ready(1).await;
    assert_ok("SELECT from the view under LATIN1", &r);
    assert_eq!(r.cells(), vec!["Rex"], "{}", r.describe());
}

/// A fastpath call Gatehouse refuses (here pg_read_file by OID) is refused without an audit
/// event or a log line, unlike the same call in SQL.
#[tokio::test]
async fn finding_refused_fastpath_calls_leave_no_trace() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "SELECT 'marker-before'").await;
    c.send(&[function_call(3826, &[b"/etc/passwd"])]).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    ok(&mut c, "SELECT 'marker-after'").await;
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "marker-after").is_empty()
    })
    .await;
    let before = events
        .iter()
        .position(|e| e["statement"] == "SELECT 'marker-before'")
        .unwrap();
    let after = events
        .iter()
        .position(|e| e["statement"] == "SELECT 'marker-after'")
        .unwrap();
    assert!(
        after > before + 1,
        "no audit event for the refused fastpath call between the markers: {:#?}",
        &events[before..=after]
    );
    assert!(
        gh.log().contains("3826"),
        "no log line for the refused fastpath call:\n{}",
        gh.log()
    );
}

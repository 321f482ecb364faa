//! Third round of wire-fidelity attacks, aimed at the in-batch check of the text settings
//! (`relay_up::text::check_in_batch`, `relay_down::text_check`): inside an unsynced batch,
//! text that could read differently after something ran is read only once Gatehouse's own
//! `SELECT current_setting(…)` (statement and portal `gatehouse.text_settings`) answered.
//!
//! Findings (all fixed: Parse and Describe now count as running code; each `finding_*` test
//! keeps asserting the secure behaviour):
//! - Parse runs code too. Parse analysis coerces a typed literal with the type's input
//!   function: an array of a domain (`'{x}'::pg_temp.d[]`) goes through `array_in` and then
//!   `domain_in`, which evaluates the domain's CHECK, which can call `set_config`. Parse does
//!   not set `Tracking::ran_unconfirmed`, so the next message's text is read by the proxy in
//!   the old setting while the server reads it in the new one: a Bind naming another prepared
//!   statement (clear SSNs), or a Query that is two literals to the proxy and a DROP TABLE to
//!   the server.
//! - Describe of a statement runs code too: a prepared statement invalidated earlier in the
//!   batch (a DDL on a table it reads) is re-analysed by Describe (`RevalidateCachedQuery`),
//!   which again runs the array-of-domain CHECK. A check in between confirms the old setting;
//!   the Describe then changes it unseen.

use super::{bind_b, ok, orders_exist, parse_b, start_unmasked};
use crate::raw;
use crate::session_integrity::rawpg::{self, RawPg, Reply};
use crate::session_integrity::{assert_no_secrets, assert_ok, direct, start};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The session still answers an ordinary query correctly.
async fn still_works(c: &mut RawPg, what: &str) {
    let r = c.simple("SELECT 'still here' AS v").await;
    assert_ok(what, &r);
    assert_eq!(
        r.cells(),
        vec!["still here".to_owned()],
        "{what}: {}",
        r.describe()
    );
}

/// Whether any DataRow carries the check's answer (an encoding name next to on/off).
fn check_row_leaked(r: &Reply) -> bool {
    r.msgs.iter().any(|m| {
        m.tag == b'D'
            && (m.body.windows(4).any(|w| w == b"UTF8")
                || m.body.windows(6).any(|w| w == b"LATIN1"))
            && (m.body.ends_with(b"on") || m.body.ends_with(b"off"))
    })
}

// ---------------------------------------------------------------------------------------------
// Findings
// ---------------------------------------------------------------------------------------------

/// Parse of `SELECT '{x}'::pg_temp.d[]` runs the domain's CHECK during parse analysis
/// (`array_in` calls `domain_in` for each element): client_encoding is LATIN1 from the Parse
/// on. Only Parse messages followed the last settle, so the next Bind's statement name is read
/// as UTF-8 by the proxy ("é", harmless) and as LATIN1 by the server ("Ã©", SSNs in an
/// expression the proxy's plan for "é" does not mask).
#[tokio::test]
async fn finding_parse_runs_domain_check_that_changes_encoding_unmasks() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('client_encoding', 'LATIN1', false) IS NOT NULL)",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"é\" AS SELECT 'nothing to see'::text AS v",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"Ã©\" AS SELECT ssn || '' AS v FROM users ORDER BY id",
    )
    .await;
    c.send(&[
        // Not plain ASCII and first in the batch: the proxy settles here.
        rawpg::parse("dé", "SELECT 1 AS v"),
        // Parse analysis runs the CHECK: client_encoding is LATIN1 from here on.
        rawpg::parse("arm", "SELECT '{x}'::pg_temp.d[] AS v"),
        // b"\xc3\xa9": "é" to the proxy, "Ã©" to the server.
        bind_b(b"", "é".as_bytes(), &[]),
        rawpg::describe(b'P', ""),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_no_secrets("Bind after a Parse that changed client_encoding", &r.bytes);
}

/// The same with standard_conforming_strings: Parse analysis turns it off, and a simple Query
/// later in the batch, `SELECT 'a\' || '; DROP TABLE orders; -- '`, is two literals to the
/// proxy and SELECT; DROP TABLE to the server.
#[tokio::test]
async fn finding_parse_runs_domain_check_that_turns_off_scs_smuggles_drop_table() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let r = c.simple("DROP TABLE orders").await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('standard_conforming_strings', 'off', false) IS NOT NULL)",
    )
    .await;
    c.send(&[
        rawpg::parse("dé", "SELECT 1 AS v"),
        rawpg::parse("arm", "SELECT '{x}'::pg_temp.d[] AS v"),
        rawpg::query("SELECT 'a\\' || '; DROP TABLE orders; -- '"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(
        orders_exist(&gh).await,
        "DROP TABLE orders ran on the server: {}",
        r.describe()
    );
}

/// A check that answers truthfully, then code that runs after it: Describe of a prepared
/// statement invalidated earlier in the batch re-analyses it, and the re-analysis runs the
/// array-of-domain CHECK (armed by a custom setting, so the statement's first preparation
/// left the encoding alone). The check (before the Describe) said UTF8; the Bind after the
/// Describe is read in LATIN1 by the server.
#[tokio::test]
async fn finding_describe_revalidation_runs_code_after_the_check() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('client_encoding', \
         coalesce(nullif(current_setting('x.enc', true), ''), current_setting('client_encoding')), \
         false) IS NOT NULL)",
    )
    .await;
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.arm AS text CHECK (set_config('x.enc', 'LATIN1', false) IS NOT NULL)",
    )
    .await;
    ok(&mut c, "CREATE TEMP TABLE tt (x int)").await;
    ok(
        &mut c,
        "PREPARE \"é\" AS SELECT 'nothing to see'::text AS v",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"Ã©\" AS SELECT ssn || '' AS v FROM users ORDER BY id",
    )
    .await;
    c.send(&[
        rawpg::parse("s", "SELECT '{x}'::pg_temp.d[] AS v FROM tt"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_ok("prepare s", &r);
    c.send(&[
        // Invalidates "s" and arms the CHECK.
        rawpg::parse("", "ALTER TABLE tt ADD COLUMN y int"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("", "SELECT $1::pg_temp.arm AS v"),
        rawpg::bind("", "", &[Some("x")], &[]),
        rawpg::execute("", 0),
        // Not plain ASCII after an Execute: the in-batch check runs here and says UTF8.
        rawpg::parse("dé", "SELECT 1 AS v"),
        // Re-analysis of "s": the CHECK switches to LATIN1.
        rawpg::describe(b'S', "s"),
        // "é" to the proxy, "Ã©" to the server.
        bind_b(b"", "é".as_bytes(), &[]),
        rawpg::describe(b'P', ""),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert_no_secrets(
        "Bind after a Describe that changed client_encoding",
        &r.bytes,
    );
}

// ---------------------------------------------------------------------------------------------
// Defences that hold
// ---------------------------------------------------------------------------------------------

/// A portal run in parts: its second row calls `set_config`. Execute(P, 1), then non-ASCII
/// text (checked: UTF8), then Execute(P, 0) (the second row switches to LATIN1), then a Bind
/// naming "é": the second Execute counts as running code, so the Bind's name is checked again
/// and read as LATIN1 ("Ã©"), as the server reads it. The Ã© statement's SSNs stay masked.
#[tokio::test]
async fn defence_suspended_portal_resumed_after_the_check_is_checked_again() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('client_encoding', 'LATIN1', false) IS NOT NULL)",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"é\" AS SELECT 'nothing to see'::text AS v",
    )
    .await;
    ok(
        &mut c,
        "PREPARE \"Ã©\" AS SELECT ssn AS v FROM users ORDER BY id",
    )
    .await;
    c.send(&[
        rawpg::parse(
            "p",
            "SELECT CASE WHEN i = 2 THEN (i::text)::pg_temp.d END AS v \
             FROM generate_series(1, 2) AS i",
        ),
        rawpg::bind("P", "p", &[], &[]),
        rawpg::execute("P", 1),
        rawpg::parse("dé", "SELECT 1 AS v"),
        rawpg::execute("P", 0),
        bind_b(b"", "é".as_bytes(), &[]),
        rawpg::describe(b'P', ""),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(!r.timed_out, "{}", r.describe());
    assert_no_secrets("Bind after a resumed portal", &r.bytes);
    assert!(!check_row_leaked(&r), "{}", r.describe());
}

/// The reserved name in every spelling a client can send: protocol Parse/Bind/Describe/
/// Close/Execute, SQL PREPARE, DECLARE, EXECUTE, DEALLOCATE and CLOSE. Refused or harmless, and
/// the session goes on.
#[tokio::test]
async fn defence_reserved_name_is_refused() {
    let (gh, token) = start_unmasked().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let n = "gatehouse.text_settings";
    for frames in [
        vec![rawpg::parse(n, "SELECT 1"), rawpg::sync()],
        vec![
            rawpg::parse("", "SELECT 1"),
            rawpg::bind(n, "", &[], &[]),
            rawpg::sync(),
        ],
        vec![rawpg::describe(b'S', n), rawpg::sync()],
        vec![rawpg::describe(b'P', n), rawpg::sync()],
        vec![rawpg::close(b'S', n), rawpg::sync()],
        vec![rawpg::close(b'P', n), rawpg::sync()],
        vec![rawpg::execute(n, 0), rawpg::sync()],
    ] {
        c.send(&frames).await;
        let r = c.read_ready(1).await;
        assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    }
    for sql in [
        "PREPARE \"gatehouse.text_settings\" AS SELECT 1",
        "BEGIN; DECLARE \"gatehouse.text_settings\" CURSOR FOR SELECT 1; COMMIT",
    ] {
        let r = c.simple(sql).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{sql}: {}",
            r.describe()
        );
        if sql.starts_with("BEGIN") {
            let _ = c.simple("ROLLBACK").await;
        }
    }
    // Whatever the server says to these, the session goes on.
    for sql in [
        "DEALLOCATE \"gatehouse.text_settings\"",
        "CLOSE \"gatehouse.text_settings\"",
        "EXECUTE \"gatehouse.text_settings\"",
        "DEALLOCATE ALL",
        "CLOSE ALL",
    ] {
        let r = c.simple(sql).await;
        assert!(r.complete(), "{sql}: {}", r.describe());
    }
    still_works(&mut c, "after the reserved-name attempts").await;
}

/// A PL/pgSQL cursor opened under the reserved name (a refcursor's value names the portal,
/// which the proxy cannot see) makes the check's own Bind fail (42P03). The error reaches the
/// client in place of its message's, the server skips to Sync, the proxy follows it there,
/// and the session goes on; the check's row never reaches the client.
#[tokio::test]
async fn defence_refcursor_squatting_the_reserved_portal_fails_cleanly() {
    let (gh, token) = start_unmasked().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[
        rawpg::parse(
            "",
            "DO $$DECLARE c refcursor := 'gatehouse.text_' || 'settings.1'; \
             BEGIN OPEN c FOR SELECT 1; END$$",
        ),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        // Not plain ASCII after an Execute: the check runs, and its Bind collides.
        rawpg::parse("dé", "SELECT 'é' AS v"),
        rawpg::bind("", "dé", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(!r.timed_out && !r.closed, "{}", r.describe());
    assert!(!check_row_leaked(&r), "{}", r.describe());
    assert!(r.error().is_some(), "{}", r.describe());
    still_works(&mut c, "after a failed check").await;
    // The next check has a name of its own: a failed one never blocks it.
    c.send(&[
        rawpg::parse("", "SELECT 1"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("dé2", "SELECT 'é' AS v"),
        rawpg::bind("", "dé2", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.error().is_none(), "{}", r.describe());
    assert!(!check_row_leaked(&r), "{}", r.describe());
}

/// The check in a failed transaction: the batch opens with a Close (allowed there), then text
/// that is not plain ASCII after the failing Query. The check's own Parse fails (25P02), its
/// error goes to the client, the client's text is skipped by the server and by the proxy, and
/// ROLLBACK brings the session back.
#[tokio::test]
async fn defence_check_in_a_failed_transaction() {
    let (gh, token) = start_unmasked().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(&mut c, "BEGIN").await;
    let r = c.simple("SELECT 1/0").await;
    assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
    c.send(&[
        rawpg::close(b'S', "nothing"),
        rawpg::parse("dé", "SELECT 'é' AS v"),
        rawpg::bind("", "dé", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(!r.timed_out && !r.closed, "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("25P02"), "{}", r.describe());
    assert!(!check_row_leaked(&r), "{}", r.describe());
    ok(&mut c, "ROLLBACK").await;
    still_works(&mut c, "after a check in a failed transaction").await;
}

/// The client's own Flush before and after the text, and a
/// masked read after the encoding changed in the batch: the check's answers are consumed, the
/// client's answers arrive, the rows are masked and in LATIN1, and the check's
/// row never reaches the client.
#[tokio::test]
async fn defence_client_flushes_and_masked_rows_around_the_check() {
    let (gh, token) = start().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    ok(
        &mut c,
        "CREATE DOMAIN pg_temp.d AS text CHECK (set_config('client_encoding', 'LATIN1', false) IS NOT NULL)",
    )
    .await;
    direct(&gh)
        .await
        .batch_execute(
            "INSERT INTO kids VALUES (4, 'Zoë', 'zoë.secret@example.com', '567-89-0123', 7)",
        )
        .await
        .unwrap();
    c.send(&[
        rawpg::parse("dd", "SELECT $1::pg_temp.d AS v"),
        rawpg::bind("", "dd", &[Some("x")], &[]),
        rawpg::execute("", 0),
        rawpg::flush(),
        // b"\xe9" is "é" in LATIN1: invalid UTF-8, so only a proxy that follows the check
        // reads it.
        parse_b(b"d\xe9", b"SELECT name, email, ssn FROM users ORDER BY id"),
        rawpg::flush(),
        bind_b(b"", b"d\xe9", &[]),
        rawpg::describe(b'P', ""),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(!r.timed_out && !r.closed, "{}", r.describe());
    assert!(r.error().is_none(), "{}", r.describe());
    assert!(!check_row_leaked(&r), "{}", r.describe());
    assert_no_secrets("masked read after an in-batch encoding change", &r.bytes);
    // The name of row 4 comes back in LATIN1 ("Zo\xeb"), the masks applied to every row.
    // The domain's row ("x"), then the four rows of users.
    let rows: Vec<_> = r.msgs.iter().filter(|m| m.tag == b'D').collect();
    assert_eq!(rows.len(), 5, "{}", r.describe());
    assert!(
        rows.iter()
            .any(|m| m.body.windows(3).any(|w| w == b"Zo\xeb")),
        "{}",
        r.describe()
    );
}

/// A check outstanding when the client ends: Terminate right after the text, or the socket
/// closed. The proxy ends the session, and the upstream backend goes with it.
#[tokio::test]
async fn defence_client_leaves_while_the_check_is_outstanding() {
    let (gh, token) = start_unmasked().await;
    for terminate in [true, false] {
        let mut c = RawPg::login(gh.port, "alice", &token).await;
        let pid = ok(&mut c, "SELECT pg_backend_pid()").await.cells()[0].clone();
        let mut frames = vec![
            rawpg::parse("", "SELECT pg_sleep(0.3)"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::parse("dé", "SELECT 'é'"),
        ];
        if terminate {
            frames.push(raw::message(b'X', &[]));
        }
        c.send(&frames).await;
        drop(c);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let pid: i32 = pid.parse().unwrap();
        let alive: bool = direct(&gh)
            .await
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)",
                &[&pid],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            !alive,
            "terminate={terminate}: the upstream backend outlived its client"
        );
    }
}

/// COPY FROM STDIN started by an Execute just before the text: whichever the proxy sees
/// first (the CopyInResponse or its own check), the client gets an answer and nothing hangs.
#[tokio::test]
async fn defence_copy_in_starting_under_the_check_does_not_hang() {
    let (gh, token) = start_unmasked().await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    c.send(&[
        rawpg::parse("", "COPY pets (id, name) FROM STDIN"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::parse("dé", "SELECT 'é'"),
        rawpg::sync(),
    ])
    .await;
    let r = c.drain(Duration::from_secs(4)).await;
    assert!(
        r.closed || r.error().is_some(),
        "no answer to text sent under COPY: {}",
        r.describe()
    );
    assert!(!check_row_leaked(&r), "{}", r.describe());
}

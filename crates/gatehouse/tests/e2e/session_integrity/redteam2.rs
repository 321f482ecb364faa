//! Red-team round two, against the defences added after round one. Each `finding_*` test
//! asserts the SECURE behaviour and fails today; each `defence_*` test passes and shows an
//! attack the current code stops.
//!
//! Findings:
//! - the client→upstream half forgets a prepared statement when it *forwards* a Close or a
//!   DEALLOCATE, not when the server confirms it. A Close the server skips (an earlier error
//!   in the same batch) or a DEALLOCATE the server refuses (a failed transaction block) leaves
//!   the statement on the server while the proxy believes the name is free. A later Bind of
//!   the name is then neither re-decided nor re-planned (`recheck` finds nothing), so:
//!   * a statement planned under `search_path = shadow, public` (no masks: shadow.users) and
//!     re-analysed by the server under `search_path = public` returns clear emails and SSNs;
//!   * a prepared `DROP TABLE orders` that dropped the session's temporary `orders` when it
//!     was decided drops public.orders when executed after the temporary table is gone;
//!   * both executions are audited as `-- execute portal ""`, without the statement text or
//!     the tables (the audit trail names no DROP and no read of users).
//!
//! Defences confirmed: Bind/EXECUTE re-planned after a search_path change (while the proxy
//! still knows the name); 42P05 on name collisions (Parse and SQL PREPARE) with the audit and
//! masks of the statement the server holds; a standard_conforming_strings=off SET followed in
//! the same batch (or pipelined after Sync) by text lexed differently is refused / ends the
//! session; a cursor re-declared under a name described earlier stays masked; ALTER VIEW /
//! ALTER MATERIALIZED VIEW … RENAME COLUMN on a sensitive table is refused.

use super::rawpg::{bind, close, describe, execute, parse, query, sync, RawPg, Reply};
use super::{
    assert_all_passed, assert_no_secrets, assert_ok, assert_orders_intact, attempt, events_until,
    raw, run_all, start, statements_containing,
};
use bytes::BytesMut;
use std::time::Duration;

/// Sends `frames` and reads up to `n` ReadyForQuery.
async fn ext(c: &mut RawPg, frames: &[BytesMut], n: usize) -> Reply {
    c.send(frames).await;
    c.read_ready(n).await
}

/// A batch whose Bind fails on the server (division by zero is folded at planning, which for
/// the unnamed statement happens at Bind), so the server skips everything after it up to
/// Sync, here a Close of statement `name`. The proxy forgets `name` all the same.
fn skipped_close(name: &str) -> Vec<BytesMut> {
    vec![
        parse("", "SELECT 1/0"),
        bind("", "", &[], &[]),
        execute("", 0),
        close(b'S', name),
        sync(),
    ]
}

/// Expressions over both sensitive columns: no RowDescription origin, only lineage masks them.
const EXPR_READ: &str = "SELECT email || '' AS e, ssn || '' AS s FROM users";

/// Message sequence (one session, `alice`, who may not unmask):
///   Q  SET search_path = shadow, public
///   P  s1 = SELECT email || '' AS e, ssn || '' AS s FROM users   (lineage: shadow.users,
///      nothing to mask), S
///   P ""=SELECT 1/0, B, E, C(S "s1"), S          (Bind fails; the server skips the Close,
///      the proxy forgets s1)
///   Q  SET search_path = public                  (the server will re-analyse s1)
///   B ""←s1, E, S                                (no recheck: the proxy does not know s1)
/// The server runs s1 against public.users: every email and SSN in clear.
/// The same with the statement forgotten through a DEALLOCATE the server refused (25P02).
#[tokio::test]
async fn finding_forgotten_prepared_statement_escapes_replanning() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    failures.push(
        attempt("Close skipped after an error in the batch", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["SET search_path = shadow, public"]).await;
            let r = ext(&mut c, &[parse("s1", EXPR_READ), sync()], 1).await;
            assert_ok("Parse s1 under shadow", &r);
            let r = ext(&mut c, &skipped_close("s1"), 1).await;
            assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
            run_all(&mut c, &["SET search_path = public"]).await;
            let r = ext(
                &mut c,
                &[bind("", "s1", &[], &[]), execute("", 0), sync()],
                1,
            )
            .await;
            assert_no_secrets("Bind of the forgotten s1 under public", &r.bytes);
        })
        .await,
    );
    failures.push(
        attempt("DEALLOCATE refused in a failed transaction", async {
            let mut c = raw(gh, token).await;
            run_all(&mut c, &["SET search_path = shadow, public"]).await;
            let r = ext(&mut c, &[parse("s2", EXPR_READ), sync()], 1).await;
            assert_ok("Parse s2 under shadow", &r);
            let r = run_all(
                &mut c,
                &["BEGIN", "SELECT 1/0", "DEALLOCATE s2", "ROLLBACK"],
            )
            .await;
            assert_eq!(
                r[2].sqlstate().as_deref(),
                Some("25P02"),
                "{}",
                r[2].describe()
            );
            run_all(&mut c, &["SET search_path = public"]).await;
            let r = ext(
                &mut c,
                &[bind("", "s2", &[], &[]), execute("", 0), sync()],
                1,
            )
            .await;
            assert_no_secrets("Bind of the forgotten s2 under public", &r.bytes);
        })
        .await,
    );
    assert_all_passed(failures);
}

/// Message sequence:
///   Q  CREATE TEMP TABLE orders (id int)
///   P  d = DROP TABLE orders, S          (allowed: the probe confirms orders is our temp table)
///   P ""=SELECT 1/0, B, E, C(S "d"), S   (server skips the Close; the proxy forgets d)
///   Q  DROP TABLE orders                 (drops the temporary table)
///   B ""←d, E, S                         (not re-decided: the proxy does not know d)
/// The server resolves the prepared DROP at execution: public.orders is dropped, and the
/// audit event of that execution carries no statement text.
#[tokio::test]
async fn finding_forgotten_prepared_drop_drops_the_real_table() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(&mut c, &["CREATE TEMP TABLE orders (id int)"]).await;
    let r = ext(&mut c, &[parse("d", "DROP TABLE orders"), sync()], 1).await;
    assert_ok("Parse d (own temporary table)", &r);
    let r = ext(&mut c, &skipped_close("d"), 1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("22012"), "{}", r.describe());
    let r = c.simple("DROP TABLE orders").await;
    assert_ok("DROP TABLE orders (temporary)", &r);
    let r = ext(
        &mut c,
        &[bind("", "d", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    let mut failures = Vec::new();
    failures.push(
        attempt("public.orders survives", async {
            assert_orders_intact(&gh, &format!("Execute of forgotten d: {}", r.describe())).await;
        })
        .await,
    );
    failures.push(
        attempt("the execution is audited with its text", async {
            let events = events_until(&gh, Duration::from_secs(5), |evs| {
                evs.iter().any(|e| {
                    e["kind"] == "statement"
                        && e["statement"]
                            .as_str()
                            .is_some_and(|s| s.starts_with("-- execute portal"))
                })
            })
            .await;
            let anonymous: Vec<_> = events
                .iter()
                .filter(|e| {
                    e["statement"]
                        .as_str()
                        .is_some_and(|s| s.starts_with("-- execute portal"))
                })
                .collect();
            assert!(
                anonymous.is_empty(),
                "a statement that ran is audited without its text: {anonymous:?}"
            );
            let drops = statements_containing(&events, "DROP TABLE orders");
            assert!(drops.len() >= 2, "expected two DROP events, got {drops:?}");
        })
        .await,
    );
    assert_all_passed(failures);
}

// ---------------------------------------------------------------------------------------------
// Defences that hold
// ---------------------------------------------------------------------------------------------

/// The search path changed since Parse: Bind of the (still known) statement is planned again
/// and the masks of both plans apply.
#[tokio::test]
async fn defence_bind_after_search_path_change_is_replanned() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(&mut c, &["SET search_path = shadow, public"]).await;
    let r = ext(&mut c, &[parse("s1", EXPR_READ), sync()], 1).await;
    assert_ok("Parse s1 under shadow", &r);
    run_all(&mut c, &["SET search_path = public"]).await;
    let r = ext(
        &mut c,
        &[bind("", "s1", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    assert_no_secrets("Bind of s1 under public", &r.bytes);
    let r = c.simple("EXECUTE s1").await;
    assert_no_secrets("EXECUTE s1 under public", &r.bytes);
}

/// A name collision is refused locally (42P05); the statement the server holds is the one
/// audited when it runs.
#[tokio::test]
async fn defence_prepared_name_collision_keeps_audit_and_masks_exact() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let r = ext(&mut c, &[parse("p", "SELECT email FROM users"), sync()], 1).await;
    assert_ok("Parse p", &r);
    let r = ext(
        &mut c,
        &[parse("p", "SELECT name FROM pets /*other*/"), sync()],
        1,
    )
    .await;
    assert_eq!(r.sqlstate().as_deref(), Some("42P05"), "{}", r.describe());
    let r = c.simple("PREPARE p AS SELECT 1").await;
    assert_eq!(r.sqlstate().as_deref(), Some("42P05"), "{}", r.describe());
    let r = ext(
        &mut c,
        &[bind("", "p", &[], &[]), execute("", 0), sync()],
        1,
    )
    .await;
    assert_no_secrets("Bind p", &r.bytes);
    assert_eq!(r.rows().len(), 3, "{}", r.describe());
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        !statements_containing(evs, "SELECT email FROM users").is_empty()
    })
    .await;
    assert!(statements_containing(&events, "/*other*/")
        .iter()
        .all(|e| e["outcome"].to_string().contains("42")));
}

/// A SET that makes the server read backslashes differently, run through the extended
/// protocol, followed in the same batch by text that is a literal to the proxy and a DROP to
/// a server with standard_conforming_strings off: the second Parse is refused (the setting
/// must be confirmed first), and the session ends when the server reports the setting.
#[tokio::test]
async fn defence_lexing_change_in_a_batch_blocks_the_rest() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    let r = ext(
        &mut c,
        &[
            parse("", "SET standard_conforming_strings = off"),
            bind("", "", &[], &[]),
            execute("", 0),
            parse("", "SELECT 'a\\'; DROP TABLE orders; --'"),
            bind("", "", &[], &[]),
            execute("", 0),
            sync(),
        ],
        1,
    )
    .await;
    assert!(r.error().is_some() || r.closed, "{}", r.describe());
    // And in a later batch after Sync: the session ends before the text is analysed.
    let mut c = raw(&gh, &token).await;
    c.send(&[
        parse("", "SET standard_conforming_strings = off"),
        bind("", "", &[], &[]),
        execute("", 0),
        sync(),
        query("SELECT 'a\\'; DROP TABLE orders; --'"),
    ])
    .await;
    let r = c.read_ready(2).await;
    assert!(r.closed || r.error().is_some(), "{}", r.describe());
    assert_orders_intact(&gh, "scs=off in a batch").await;
}

/// Execute of an SQL cursor by its portal name without Describe: Gatehouse describes it
/// itself, so plain columns are masked by origin even where the client never asked.
#[tokio::test]
async fn defence_cursor_executed_as_portal_is_described_by_the_proxy() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &["BEGIN", "DECLARE k CURSOR FOR SELECT email, ssn FROM users"],
    )
    .await;
    // Described once (the proxy remembers), then closed and declared again over the same name.
    let r = ext(&mut c, &[describe(b'P', "k"), sync()], 1).await;
    assert_no_secrets("Describe k", &r.bytes);
    run_all(
        &mut c,
        &[
            "CLOSE k",
            "DECLARE k CURSOR FOR SELECT email, ssn FROM kids",
        ],
    )
    .await;
    let r = ext(&mut c, &[execute("k", 0), sync()], 1).await;
    assert_no_secrets("Execute k (redeclared)", &r.bytes);
    run_all(&mut c, &["ROLLBACK"]).await;
}

/// PostgreSQL runs `ALTER VIEW … RENAME COLUMN` (and `ALTER MATERIALIZED VIEW … RENAME
/// COLUMN`) on a plain table, which would shed the configured column name. The DDL guard's
/// exception for commands ending in VIEW does not apply: the analyser names both
/// "ALTER RENAME", and they are refused (42501) for a principal who may not unmask.
#[tokio::test]
async fn defence_alter_view_rename_column_on_a_sensitive_table_is_refused() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let mut failures = Vec::new();
    for (what, ddl, read) in [
        (
            "ALTER VIEW … RENAME COLUMN",
            "ALTER VIEW users RENAME COLUMN ssn TO tax_id",
            "SELECT tax_id FROM users",
        ),
        (
            "ALTER MATERIALIZED VIEW … RENAME COLUMN",
            "ALTER MATERIALIZED VIEW users RENAME COLUMN email TO contact",
            "SELECT contact FROM users",
        ),
    ] {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                let r = c.simple(ddl).await;
                assert_no_secrets(ddl, &r.bytes);
                if r.error().is_some() {
                    return;
                }
                // The proxy reloads its catalog once DDL has completed.
                tokio::time::sleep(Duration::from_millis(1500)).await;
                let r = c.simple(read).await;
                super::assert_masked_or_refused(read, &r, 3);
            })
            .await,
        );
    }
    assert_all_passed(failures);
}

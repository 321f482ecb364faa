//! `search_path` changes the server undid (ROLLBACK, ROLLBACK TO SAVEPOINT, an error later in
//! the same string, SET LOCAL ending with its transaction, RESET, DISCARD, set_config, a SET in
//! an aborted transaction). `shadow.users` holds different, non-sensitive values: a proxy that
//! still believes `shadow` comes first resolves `users` to it and leaves public.users'
//! sensitive columns unmasked. The converse (the server really uses `shadow`) must work.

use super::rawpg::{bind, execute, parse, sync};
use super::{
    assert_all_passed, assert_masked, assert_masked_or_refused, assert_no_secrets, assert_ok,
    attempt, raw, run_all, start,
};

/// Runs `steps` on a fresh proxy and session, then reads `users` (see [`after_on`]).
async fn after(what: &str, steps: &[&str]) {
    let (gh, token) = start().await;
    after_on(&gh, &token, what, steps).await;
}

/// Runs `steps` on a fresh session, then reads `users` in several ways: masked (public.users
/// is what the server reads; the server told the proxy what it undid, so no refusal either).
/// If Gatehouse refused one of the steps, the server's search_path never changed back and
/// the case proves nothing about undoing: the reads must then only carry no secret.
async fn after_on(gh: &crate::harness::Gatehouse, token: &str, what: &str, steps: &[&str]) {
    let mut c = raw(gh, token).await;
    let mut refused = false;
    for r in run_all(&mut c, steps).await {
        assert!(r.complete(), "{what}: {}", r.describe());
        refused |= r.sqlstate().as_deref() == Some("42501");
    }
    let expect = |label: &str, r: &super::rawpg::Reply| {
        let label = format!("{what}: {label}");
        if refused {
            assert_no_secrets(&label, &r.bytes);
        } else {
            assert_masked(&label, r, 3);
        }
    };
    for sql in [
        "SELECT email, ssn FROM users ORDER BY id",
        "SELECT lower(email) || ssn FROM users",
        "SELECT * FROM users ORDER BY id",
    ] {
        expect(sql, &c.simple(sql).await);
    }
    c.send(&[
        parse("", "SELECT ssn FROM users"),
        bind("", "", &[], &[1]),
        execute("", 0),
        sync(),
    ])
    .await;
    expect("extended, binary", &c.read_ready(1).await);
    if !refused {
        // The server reads public.users: its non-sensitive column is clear.
        let r = c.simple("SELECT name FROM users ORDER BY id").await;
        assert_ok(&format!("{what}: name"), &r);
        assert_eq!(r.cells(), vec!["Ada", "Alan", "Kid"], "{what}");
    }
}

#[tokio::test]
async fn search_path_set_then_rolled_back() {
    after(
        "ROLLBACK",
        &["BEGIN", "SET search_path = shadow, public", "ROLLBACK"],
    )
    .await;
}

#[tokio::test]
async fn search_path_set_then_rolled_back_to_savepoint() {
    after(
        "ROLLBACK TO SAVEPOINT",
        &[
            "BEGIN",
            "SAVEPOINT s",
            "SET search_path = shadow, public",
            "ROLLBACK TO SAVEPOINT s",
        ],
    )
    .await;
}

#[tokio::test]
async fn search_path_set_undone_by_an_error_later_in_the_string() {
    after(
        "error in the same string",
        &["SET search_path = shadow; SELECT 1/0"],
    )
    .await;
}

#[tokio::test]
async fn search_path_set_local_ends_with_commit() {
    after(
        "SET LOCAL + COMMIT",
        &["BEGIN", "SET LOCAL search_path = shadow", "COMMIT"],
    )
    .await;
}

#[tokio::test]
async fn search_path_undone_by_reset_discard_set_config_or_an_aborted_transaction() {
    let (gh, token) = start().await;
    let cases: [(&str, &[&str]); 4] = [
        ("RESET", &["SET search_path = shadow", "RESET search_path"]),
        ("DISCARD ALL", &["SET search_path = shadow", "DISCARD ALL"]),
        (
            "set_config",
            &[
                "SET search_path = shadow",
                "SELECT set_config('search_path', 'public', false)",
            ],
        ),
        (
            "SET in an aborted transaction",
            &[
                "BEGIN",
                "SELECT 1/0",
                "SET search_path = shadow",
                "ROLLBACK",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (what, steps) in cases {
        failures.push(attempt(what, after_on(&gh, &token, what, steps)).await);
    }
    assert_all_passed(failures);
}

#[tokio::test]
async fn search_path_the_server_kept_resolves_to_the_other_schema() {
    let (gh, token) = start().await;
    for steps in [
        &["SET search_path = shadow, public"][..],
        &["BEGIN", "SET search_path = shadow, public", "COMMIT"][..],
    ] {
        let mut c = raw(&gh, &token).await;
        for r in run_all(&mut c, steps).await {
            assert_ok(&format!("{steps:?}"), &r);
        }
        let r = c.simple("SELECT email, ssn FROM users").await;
        assert_ok(&format!("{steps:?}: shadow.users"), &r);
        assert_eq!(
            r.cells(),
            vec!["shade.clear@example.net", "999-00-1111"],
            "{steps:?}: users is shadow.users, which has nothing sensitive"
        );
        let r = c.simple("SELECT email, ssn FROM public.users").await;
        assert_masked_or_refused(&format!("{steps:?}: public.users"), &r, 3);
        assert_no_secrets(&format!("{steps:?}"), &r.bytes);
    }
}

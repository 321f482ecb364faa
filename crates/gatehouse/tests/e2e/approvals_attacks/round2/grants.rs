//! One-time grants and released portals: an approval runs exactly what was approved, once.

use super::*;

// =============================================================================================
// One-time grants: what a grant key does not pin down
// =============================================================================================

/// Findings of this round (fixed): a one-time grant for `EXECUTE s` ran whatever `s` meant
/// when the grant was used (the key was the text `EXECUTE s`), and the approver of `EXECUTE
/// s(1)` saw only the name. An SQL EXECUTE that needs approval is now refused, not held.
#[tokio::test]
async fn sql_execute_needing_approval_is_refused_not_held() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let bot = gh.issue("deploy-bot", "agent", &["deployers"]).await;
    for (user, token) in [("deploy-bot", bot.as_str()), ("alice", who.alice.as_str())] {
        let mut a = RawPg::login(gh.port, user, token).await;
        a.send(&[
            rawpg::parse("s", "DELETE FROM orders WHERE id >= $1"),
            rawpg::sync(),
        ])
        .await;
        let r = a.read_ready(1).await;
        assert!(r.sqlstate().is_none(), "{}", r.describe());
        a.send(&[rawpg::query("EXECUTE s(1)")]).await;
        let r = a.read_ready(1).await;
        assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
        assert!(hold_id(&r).is_none(), "held: {}", r.describe());
        assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    }
    assert!(pending(&gh, &who.bob).await.is_empty());
}

/// Same text, other parameters: a text-format grant does not cover the binary form, another
/// parameter count, NULL for an empty string, nor another target statement bound to a
/// re-parsed name; and the grant runs once, for the statement it was asked for.
#[tokio::test]
async fn grant_is_pinned_to_parameters_and_statement_text() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let bot = gh.issue("deploy-bot", "agent", &["deployers"]).await;
    let other = gh.issue("other-bot", "agent", &["deployers"]).await;
    let sql = "UPDATE orders SET amount = $1 WHERE id = $2";

    let mut c = RawPg::login(gh.port, "deploy-bot", &bot).await;
    let id = agent_pending(
        &mut c,
        &[
            rawpg::parse("s", sql),
            rawpg::bind("p", "s", &[Some("5"), Some("1")], &[]),
            rawpg::execute("p", 0),
            rawpg::sync(),
        ],
    )
    .await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "amount 5 on order 1").await;
    assert_eq!(status, 200);

    // Binary form of the same values; one parameter more; NULL; empty string; other values.
    let attempts: Vec<(&str, Vec<bytes::BytesMut>)> = vec![
        (
            "binary form",
            vec![
                binary_bind(
                    "p",
                    "s",
                    &[Some(&5i32.to_be_bytes()), Some(&1i32.to_be_bytes())],
                ),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "other amount",
            vec![
                rawpg::bind("p", "s", &[Some("500"), Some("1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "NULL amount",
            vec![
                rawpg::bind("p", "s", &[None, Some("1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "other id with spaces",
            vec![
                rawpg::bind("p", "s", &[Some("5"), Some(" 1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
        (
            "re-parsed name",
            vec![
                rawpg::close(b'S', "s"),
                rawpg::parse("s", "UPDATE orders SET amount = $1 WHERE id >= $2"),
                rawpg::bind("p", "s", &[Some("5"), Some("1")], &[]),
                rawpg::execute("p", 0),
                rawpg::sync(),
            ],
        ),
    ];
    for (what, msgs) in attempts {
        c.send(&msgs).await;
        let r = c.read_ready(1).await;
        let got = refusal_of(&r);
        assert!(
            got.as_ref().is_some_and(|(i, _)| i != &id) || r.sqlstate().is_some(),
            "{what}: {}",
            r.describe()
        );
        assert!(
            !command_tags(&r).iter().any(|t| t.starts_with("UPDATE")),
            "{what} ran under the grant: {}",
            r.describe()
        );
        assert_eq!(orders_state(&gh).await, ORDERS_AT_START, "{what}");
    }
    // Another agent, same text and parameters.
    let mut o = RawPg::login(gh.port, "other-bot", &other).await;
    o.send(&[
        rawpg::parse("s", sql),
        rawpg::bind("p", "s", &[Some("5"), Some("1")], &[]),
        rawpg::execute("p", 0),
        rawpg::sync(),
    ])
    .await;
    let r = o.read_ready(1).await;
    assert!(
        refusal_of(&r).is_some_and(|(i, _)| i != id),
        "{}",
        r.describe()
    );
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);

    // The exact re-run (a new statement name, same text) runs once, and not twice.
    for round in 0..2 {
        c.send(&[
            rawpg::parse(&format!("again{round}"), sql),
            rawpg::bind("p", &format!("again{round}"), &[Some("5"), Some("1")], &[]),
            rawpg::execute("p", 0),
            rawpg::sync(),
        ])
        .await;
        let r = c.read_ready(1).await;
        if round == 0 {
            assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
        } else {
            assert!(command_tags(&r).is_empty(), "ran twice: {}", r.describe());
        }
    }
    assert_eq!(orders_state(&gh).await, "1:5,2:20,3:30");
}

/// The unnamed statement replaced behind a bound portal, a portal re-bound after its release,
/// and Bind of another statement to the released portal's name: each Execute of something not
/// approved is held again.
#[tokio::test]
async fn released_portal_does_not_carry_over_to_other_statements() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("", "DELETE FROM orders WHERE id = 1 RETURNING id"),
        rawpg::bind("", "", &[], &[]),
        // The unnamed statement is replaced; the portal still runs the DELETE.
        rawpg::parse("", "SELECT 1"),
        rawpg::execute("", 1),
        // The unnamed portal re-bound after its release to an unapproved statement.
        rawpg::parse("", "DELETE FROM orders WHERE id = 2"),
        rawpg::bind("", "", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let first = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (_, shown) = show(&gh, &who.bob, &first).await;
    assert_eq!(
        shown["statement"], "DELETE FROM orders WHERE id = 1 RETURNING id",
        "{shown}"
    );
    let (status, _) = vote(&gh, &who.bob, &first, "approve", "one").await;
    assert_eq!(status, 200);
    let r = c.read_until_tag(b'N').await;
    let second = hold_id(&r).unwrap_or_else(|| panic!("re-bound portal ran: {}", r.describe()));
    assert_ne!(first, second);
    let (_, shown) = show(&gh, &who.bob, &second).await;
    assert_eq!(
        shown["statement"], "DELETE FROM orders WHERE id = 2",
        "{shown}"
    );
    let (status, _) = vote(&gh, &who.bob, &second, "deny", "no").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    // The refusal ended the batch's implicit transaction: the approved DELETE went with it.
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    let r = c.simple("SELECT 1").await;
    assert_eq!(r.cells(), ["1"], "{}", r.describe());
}

//! Who may decide and see: self-approval, agents, reasons, late and repeated votes, the API
//! and the CLI output.

use super::*;

// =============================================================================================
// Deciding
// =============================================================================================

/// The requester cannot approve through another token of the same name (with other groups,
/// or in the break-glass group); a token of the other kind for the same name cannot even be
/// issued; nor can the namesake of an agent requester approve the agent's request.
#[tokio::test]
async fn no_self_approval_through_another_token_or_kind() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let alice_dba = gh.issue("alice", "human", &["dba"]).await;
    let alice_glass = gh.issue("alice", "human", &["breakglass"]).await;
    let out = gh
        .cli(&[
            "token",
            "issue",
            "--identity",
            "alice",
            "--kind",
            "agent",
            "--group",
            "dba",
        ])
        .await;
    assert_ne!(out.code, 0, "an agent token for the person alice: {out:?}");
    let bot = gh.issue("deploy-bot", "agent", &["dev"]).await;
    let out = gh
        .cli(&[
            "token",
            "issue",
            "--identity",
            "deploy-bot",
            "--kind",
            "human",
            "--group",
            "dba",
        ])
        .await;
    assert_ne!(
        out.code, 0,
        "a person's token for the agent deploy-bot: {out:?}"
    );

    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    for (what, t) in [
        ("alice's dba token", &alice_dba),
        ("alice's break-glass token", &alice_glass),
    ] {
        let (status, body) = vote(&gh, t, &id, "approve", "mine").await;
        assert_eq!(status, 403, "{what}: {body}");
    }
    let (_, r) = show(&gh, &who.bob, &id).await;
    assert_eq!(r["state"], "pending", "{r}");
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = c.read_ready(1).await;

    // An agent's request: the agent itself cannot decide (the API refuses agents).
    let mut b = RawPg::login(gh.port, "deploy-bot", &bot).await;
    let id = raw_hold(&mut b, "DELETE FROM orders WHERE id = 2").await;
    let (status, body) = vote(&gh, &bot, &id, "approve", "mine").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = b.read_ready(1).await;
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// "Every decision carries a reason": a reason made only of a NUL, a zero-width space, a
/// byte-order mark or control characters is no reason (it shows as nothing in the audit
/// trail and in the client's error).
#[tokio::test]
async fn invisible_reasons_are_not_reasons() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    let mut accepted = Vec::new();
    for reason in [
        "\u{0}",
        "\u{200b}",
        "\u{feff}",
        "\u{7}\u{8}",
        "\u{0}\u{0}\u{0}",
    ] {
        let (status, body) = vote(&gh, &who.bob, &id, "deny", reason).await;
        if status == 200 {
            accepted.push(format!("{reason:?}: {}", body["votes"]));
            break;
        }
    }
    deny_if_pending(&gh, &who.bob, &id).await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert!(accepted.is_empty(), "accepted as a reason: {accepted:?}");
}

/// Votes after expiry, after a denial, after a withdrawal, and a second vote by the same
/// person are refused (409), and change nothing.
#[tokio::test]
async fn late_and_repeated_votes_are_refused() {
    let gh = start(3).await;
    let who = cast(&gh).await;

    // Expired.
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    let (status, body) = vote(&gh, &who.bob, &id, "approve", "late").await;
    assert_eq!(status, 409, "{body}");
    // The same text again is a new request; the expired approval attempt is not carried over.
    let id2 = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    assert_ne!(id, id2);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());

    // Quorum of two: the same person twice is one vote; then denied, late approvals fail.
    let id3 = raw_hold(&mut c, "DELETE FROM ledger WHERE id = 1").await;
    assert_eq!(vote(&gh, &who.bob, &id3, "approve", "one").await.0, 200);
    let (status, body) = vote(&gh, &who.bob, &id3, "approve", "two").await;
    assert_eq!(status, 409, "{body}");
    let (status, body) = vote(&gh, &who.bob, &id3, "deny", "changed my mind").await;
    assert_eq!(
        status, 409,
        "a second vote (deny) by the same person: {body}"
    );
    let (status, body) = vote(&gh, &who.dan, &id3, "deny", "no").await;
    assert_eq!(status, 200, "{body}");
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    let (status, _) = vote(&gh, &who.dan, &id3, "approve", "late").await;
    assert_eq!(status, 409);
    let (status, _) = vote(&gh, &who.bob, &id3, "approve", "late").await;
    assert_eq!(status, 409);
    assert_eq!(count(&gh, "ledger").await, 2);
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
}

/// Approval and CancelRequest racing: whichever wins, the client's answer and the database
/// agree (ran ⇔ success), and the audit chain verifies.
#[tokio::test]
async fn approve_racing_cancel_is_consistent() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mut ran = 0;
    for round in 0..6 {
        let (s, buf, seen) = raw::login_with(
            gh.port,
            raw::startup(&[("user", "alice"), ("database", "app")]),
            &who.alice,
        )
        .await;
        let k = seen
            .iter()
            .find(|m| m.tag == b'K')
            .cloned()
            .unwrap_or_else(|| panic!("no key"));
        let pid = i32::from_be_bytes([k.body[0], k.body[1], k.body[2], k.body[3]]);
        let secret = i32::from_be_bytes([k.body[4], k.body[5], k.body[6], k.body[7]]);
        let mut c = RawPg::from_login(s, buf);
        let id = raw_hold(&mut c, "UPDATE orders SET amount = amount + 1 WHERE id = 3").await;
        let delay = Duration::from_millis(round * 3);
        let port = gh.port;
        let ((status, _), ()) = tokio::join!(vote(&gh, &who.bob, &id, "approve", "race"), async {
            tokio::time::sleep(delay).await;
            cancel_request(port, pid, secret).await;
        });
        let r = c.read_ready(1).await;
        assert!(r.complete(), "{}", r.describe());
        let amount: i64 = direct_one(&gh, "SELECT amount FROM orders WHERE id = 3")
            .await
            .parse()
            .unwrap_or(-1);
        let ok = r.error().is_none();
        if ok {
            ran += 1;
        } else {
            // A cancel that arrived after the release may cancel the running UPDATE (57014
            // from the server, rolled back): either way the database agrees with the client.
            assert_eq!(r.sqlstate().as_deref(), Some("57014"), "{}", r.describe());
        }
        assert_eq!(
            amount,
            30 + ran,
            "round {round}: client ok={ok}, vote {status}, database amount {amount}: {}",
            r.describe()
        );
        c.vanish();
    }
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

/// The statement event of a released statement names the request it ran under (as the
/// model's `approval` field documents), so the audit trail ties each execution to its
/// approval; the approval steps come in order and the chain verifies.
#[tokio::test]
async fn released_statement_event_names_its_request() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let sql = "DELETE FROM orders WHERE id = 2";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    assert_eq!(vote(&gh, &who.bob, &id, "approve", "ticket 7").await.0, 200);
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["DELETE 1"], "{}", r.describe());
    let events = gh
        .wait_events("the statement event", |ev| {
            ev.iter()
                .any(|e| e["kind"] == "statement" && e["statement"] == sql)
        })
        .await;
    let steps: Vec<&str> = events
        .iter()
        .filter(|e| e["kind"] == "approval" && e["approval"]["request"] == id.as_str())
        .filter_map(|e| e["approval"]["step"].as_str())
        .collect();
    assert_eq!(steps, ["requested", "approve", "released"], "{events:?}");
    let stmt = events
        .iter()
        .find(|e| e["kind"] == "statement" && e["statement"] == sql)
        .cloned()
        .unwrap_or_default();
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
    assert_eq!(
        stmt["approval"]["request"],
        id.as_str(),
        "the released statement's own event does not name its approval request (decision \
         recorded: {}): {stmt}",
        stmt["decision"]
    );
}

const MASKED_SETUP: &str = "
CREATE TABLE users (id int PRIMARY KEY, email text);
INSERT INTO users VALUES (1, 'ada.secret@example.com');
";

const MASKED_TOML: &str = r#"
[[sensitive]]
target = "app"
columns = ["public.users.email"]
tags = ["pii"]
mask = "email"
"#;

/// Masking around a hold: the held string's own SELECT (planned again at release), a
/// temporary view it creates, and reads pipelined behind it are all masked.
#[tokio::test]
async fn masking_holds_across_a_released_string_and_pipelined_reads() {
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{MASKED_SETUP}"),
        policies: POLICIES.into(),
        extra_toml: format!("[approvals]\ntimeout_secs = 30\n{MASKED_TOML}"),
    })
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c
        .simple("CREATE TEMP VIEW v AS SELECT email AS e FROM users")
        .await;
    assert!(r.error().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::query(
            "UPDATE orders SET amount = amount WHERE id = 1; SELECT email FROM users; SELECT e FROM v",
        ),
        rawpg::query("SELECT e FROM v"),
        rawpg::query("SELECT email FROM users"),
        rawpg::query("SET search_path = pg_temp, public"),
        rawpg::query("SELECT * FROM v"),
    ])
    .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("{}", r.describe()));
    assert_eq!(vote(&gh, &who.bob, &id, "approve", "ok").await.0, 200);
    let r = c.read_ready(5).await;
    assert!(r.complete(), "{}", r.describe());
    let text = String::from_utf8_lossy(&r.bytes).into_owned();
    assert!(
        !text.contains("ada.secret"),
        "a clear value after the hold: {}",
        r.describe()
    );
    assert!(
        r.error().is_none() || r.sqlstate().as_deref() == Some("42501"),
        "{}",
        r.describe()
    );
}

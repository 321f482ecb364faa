//! The approvals API and CLI as an attacker meets them: bad callers and bodies, requests of
//! others, terminal control characters in what approvers read.

use super::*;

/// One abuse of the API: what, method, path, Authorization, body (content type, bytes), the
/// statuses acceptable.
type ApiCase<'a> = (
    &'a str,
    &'a str,
    String,
    Option<String>,
    Option<(&'a str, &'a [u8])>,
    &'a [u16],
);

/// The approvals API against bad callers and bad bodies: nothing approves, nothing crashes.
#[tokio::test]
async fn approvals_api_rejects_bad_callers_and_bodies() {
    let mut gh = start(60).await;
    let who = cast(&gh).await;
    let agent = gh.issue("deploy-bot", "agent", &["dba"]).await;
    let expiring = gh.issue_ttl("erin", "human", &["dba"], "1s").await;
    let revoked = gh.issue("frank", "human", &["dba"]).await;
    let mallory = gh.issue("mallory", "human", &["dev"]).await;
    let list = gh.cli(&["token", "list", "--json"]).await;
    let frank_id = list
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|t| t["identity"] == "frank")
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(gh.cli(&["token", "revoke", &frank_id]).await.code, 0);

    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, "DELETE FROM orders WHERE id = 1").await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // erin's token expires

    let approve = format!("/api/approvals/{id}/approve");
    let good = br#"{"reason":"ok"}"#.as_slice();
    let json = |b: &'static [u8]| Some(("application/json", b));
    let mut failures = Vec::new();
    let bob = Some(bearer(&who.bob));
    let post = "POST";
    let cases: Vec<ApiCase> = vec![
        ("no token", post, approve.clone(), None, json(good), &[401]),
        (
            "lower-case scheme",
            post,
            approve.clone(),
            Some(format!("bearer {}", who.bob)),
            json(good),
            &[401],
        ),
        (
            "basic scheme",
            post,
            approve.clone(),
            Some(format!("Basic {}", who.bob)),
            json(good),
            &[401],
        ),
        (
            "garbage token",
            post,
            approve.clone(),
            Some(bearer("gh_nope")),
            json(good),
            &[401],
        ),
        (
            "token with a suffix",
            post,
            approve.clone(),
            Some(format!("Bearer {}x", who.bob)),
            json(good),
            &[401],
        ),
        (
            "token with a NUL",
            post,
            approve.clone(),
            Some(format!("Bearer {}\u{0}x", who.bob)),
            json(good),
            &[400, 401],
        ),
        (
            "huge token",
            post,
            approve.clone(),
            Some(bearer(&"a".repeat(100_000))),
            json(good),
            &[400, 401, 413, 431, 0],
        ),
        (
            "agent",
            post,
            approve.clone(),
            Some(bearer(&agent)),
            json(good),
            &[403],
        ),
        (
            "expired",
            post,
            approve.clone(),
            Some(bearer(&expiring)),
            json(good),
            &[401],
        ),
        (
            "revoked",
            post,
            approve.clone(),
            Some(bearer(&revoked)),
            json(good),
            &[401],
        ),
        (
            "the requester",
            post,
            approve.clone(),
            Some(bearer(&who.alice)),
            json(good),
            &[403],
        ),
        (
            "not an approver",
            post,
            approve.clone(),
            Some(bearer(&mallory)),
            json(good),
            &[403],
        ),
        (
            "unknown id",
            post,
            "/api/approvals/ap_0000000000000000/approve".into(),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "upper-case id",
            post,
            format!("/api/approvals/{}/approve", id.to_uppercase()),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "id with a space",
            post,
            format!("/api/approvals/%20{id}/approve"),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "traversal",
            post,
            format!("/api/approvals/..%2F{id}/approve"),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "traversal 2",
            post,
            format!("/api/approvals/{id}%2F..%2F/approve"),
            bob.clone(),
            json(good),
            &[404],
        ),
        (
            "dot segments",
            post,
            format!("/api/approvals/x/../{id}/approve"),
            bob.clone(),
            json(good),
            &[404, 400],
        ),
        (
            "id with NUL",
            post,
            format!("/api/approvals/{id}%00/approve"),
            bob.clone(),
            json(good),
            &[404, 400],
        ),
        (
            "GET approve",
            "GET",
            approve.clone(),
            bob.clone(),
            None,
            &[405],
        ),
        (
            "PUT approve",
            "PUT",
            approve.clone(),
            bob.clone(),
            json(good),
            &[405],
        ),
        (
            "no body",
            post,
            approve.clone(),
            bob.clone(),
            None,
            &[400, 415, 422],
        ),
        (
            "not JSON",
            post,
            approve.clone(),
            bob.clone(),
            json(b"reason=ok"),
            &[400, 415, 422],
        ),
        (
            "text/plain",
            post,
            approve.clone(),
            bob.clone(),
            Some(("text/plain", good)),
            &[400, 415, 422],
        ),
        (
            "reason a number",
            post,
            approve.clone(),
            bob.clone(),
            json(br#"{"reason":5}"#),
            &[400, 415, 422],
        ),
        (
            "blank reason",
            post,
            approve.clone(),
            bob.clone(),
            json(br#"{"reason":" \t\n"}"#),
            &[400],
        ),
        (
            "unicode blank reason",
            post,
            approve.clone(),
            bob.clone(),
            json("{\"reason\":\"\u{3000}\u{00a0}\"}".as_bytes()),
            &[400],
        ),
    ];
    for (what, method, path, auth, body, want) in cases {
        let (status, text) = http(&gh, method, &path, auth.as_deref(), body).await;
        if !want.contains(&status) {
            failures.push(format!("{what}: {status} {text}"));
        }
        let (_, r) = show(&gh, &who.dan, &id).await;
        if r["state"] != "pending" || r["votes"].as_array().is_some_and(|v| !v.is_empty()) {
            failures.push(format!("{what} changed the request: {r}"));
            break;
        }
    }
    // A body far over any sane size.
    let mut huge = br#"{"reason":""#.to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend_from_slice(br#""}"#);
    let (status, _) = http(
        &gh,
        "POST",
        &approve,
        Some(&bearer(&who.bob)),
        Some(("application/json", &huge)),
    )
    .await;
    if status == 200 {
        failures.push("a 5 MiB body was accepted".into());
    }
    let (_, r) = show(&gh, &who.dan, &id).await;
    if r["state"] != "pending" {
        failures.push(format!("the huge body decided the request: {r}"));
    }
    // Listing without a token or with an agent's.
    for (what, auth, want) in [
        ("list without token", None, 401),
        ("list as agent", Some(bearer(&agent)), 403),
        ("list expired", Some(bearer(&expiring)), 401),
    ] {
        let (status, text) = http(&gh, "GET", "/api/approvals", auth.as_deref(), None).await;
        if status != want {
            failures.push(format!("{what}: {status} {text}"));
        }
    }
    assert!(gh.is_running(), "the proxy died");
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "done").await.0, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
}

/// Pending requests carry the statement text with its literals, the client address and the
/// application name. A person who may not decide a request (not in its approver groups, not
/// break-glass) must not be able to read it through the API.
#[tokio::test]
async fn non_approvers_cannot_read_pending_requests() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let mallory = gh.issue("mallory", "human", &["dev"]).await;
    let sql = "UPDATE orders SET amount = 271828 WHERE id = 1";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    let (_, listed) = http(&gh, "GET", "/api/approvals", Some(&bearer(&mallory)), None).await;
    let (_, shown) = http(
        &gh,
        "GET",
        &format!("/api/approvals/{id}"),
        Some(&bearer(&mallory)),
        None,
    )
    .await;
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = c.read_ready(1).await;
    assert!(
        !listed.contains("271828") && !shown.contains("271828"),
        "mallory (group dev, may not decide) read alice's pending statement:\nlist: {listed}\nshow: {shown}"
    );
}

// =============================================================================================
// Evidence
// =============================================================================================

/// A pending request is shown to approvers by `gatehouse approvals list` as plain text. The
/// requester controls the statement text: terminal control characters in it (inside an SQL
/// comment) must not reach the approver's terminal, where they can overwrite the statement
/// that will run with a harmless-looking one.
#[tokio::test]
async fn approvals_list_does_not_pass_terminal_controls_through() {
    let gh = start(30).await;
    let who = cast(&gh).await;
    let sql = "DELETE FROM orders WHERE id > 0 /*\r\x1b[2K    UPDATE orders SET amount = 11 WHERE id = 1;\x1b[8m*/";
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let id = raw_hold(&mut c, sql).await;
    let out = gh.cli(&["approvals", "list", "--token", &who.bob]).await;
    assert_eq!(vote(&gh, &who.bob, &id, "deny", "no").await.0, 200);
    let _ = c.read_ready(1).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        !out.stdout.contains('\x1b') && !out.stdout.contains('\r'),
        "the approver's terminal receives raw control characters from the requester's \
         statement: {:?}",
        out.stdout
    );
}

//! Authentication failures: every bad credential gets the same FATAL 28P01 (nothing about
//! which part was wrong) and an `auth_failure` audit event; unknown databases get 3D000.

use crate::harness::{connect_err, db_error, of_kind, Gatehouse};
use std::time::Duration;

#[tokio::test]
async fn bad_credentials_are_refused_alike_and_audited() {
    let gh = Gatehouse::start().await;
    let alice = gh.issue("alice", "human", &["eng"]).await;
    let bob = gh.issue("bob", "agent", &[]).await;
    let expiring = gh.issue_ttl("carol", "human", &[], "1s").await;
    let revoked = gh.issue("dave", "human", &[]).await;
    let issued_at = std::time::Instant::now();

    // Revoke dave's token by its id from `token list`.
    let list = gh.cli(&["token", "list", "--json"]).await;
    assert_eq!(list.code, 0, "{list:?}");
    let id = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|t| t["identity"] == "dave")
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .expect("dave's token is listed");
    let out = gh.cli(&["token", "revoke", &id]).await;
    assert_eq!(out.code, 0, "{out:?}");

    // The good tokens work (so the failures below are about the credential only).
    gh.connect("alice", &alice)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();
    gh.connect("bob", &bob)
        .await
        .simple_query("SELECT 1")
        .await
        .unwrap();

    // Let carol's token expire (1 s lifetime, whole seconds).
    let left = Duration::from_millis(2100).saturating_sub(issued_at.elapsed());
    tokio::time::sleep(left).await;

    let wrong = "gh_this-is-not-a-valid-token-0000000000000000000000";
    let cases: [(&str, &str, &str); 6] = [
        ("wrong token", "alice", wrong),
        ("another identity's token", "alice", &bob),
        ("unknown identity", "mallory", &alice),
        ("expired token", "carol", &expiring),
        ("revoked token", "dave", &revoked),
        ("empty token", "alice", ""),
    ];
    let mut shapes = Vec::new();
    for (what, user, token) in cases {
        let e = connect_err(gh.pg_config(user, token)).await;
        let (code, message) = db_error(&e);
        let db = e.as_db_error().unwrap();
        assert_eq!(code, "28P01", "{what}: {message}");
        assert_eq!(db.severity(), "FATAL", "{what}");
        assert!(
            db.detail().is_none() && db.hint().is_none(),
            "{what}: {db:?}"
        );
        // Identical apart from the user name.
        shapes.push(message.replace(&format!("\"{user}\""), "\"<user>\""));
    }
    assert!(
        shapes.iter().all(|s| s == &shapes[0]),
        "messages differ: {shapes:#?}"
    );
    assert_eq!(
        shapes[0],
        "password authentication failed for user \"<user>\""
    );

    let events = gh
        .wait_events("6 auth failures", |evs| {
            of_kind(evs, "auth_failure").len() >= 6
        })
        .await;
    let failures = of_kind(&events, "auth_failure");
    let users: Vec<&str> = failures
        .iter()
        .map(|e| e["identity"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        users,
        vec!["alice", "alice", "mallory", "carol", "dave", "alice"]
    );
    for f in failures {
        assert_eq!(f["outcome"]["status"], "error", "{f}");
        assert_eq!(f["outcome"]["sqlstate"], "28P01", "{f}");
        assert_eq!(f["target"], "app", "{f}");
        assert!(
            f["client_addr"]
                .as_str()
                .unwrap_or("")
                .starts_with("127.0.0.1:"),
            "{f}"
        );
        // A failed login must not claim an identity kind or groups it did not prove.
        assert!(f["identity_kind"].is_null(), "{f}");
        assert_eq!(f["groups"], serde_json::json!([]), "{f}");
    }
    // No failed attempt was counted as authenticated.
    assert_eq!(of_kind(&events, "authenticated").len(), 2);
}

#[tokio::test]
async fn unknown_database_is_3d000() {
    let gh = Gatehouse::start().await;
    let alice = gh.issue("alice", "human", &[]).await;
    let mut cfg = gh.pg_config("alice", &alice);
    cfg.dbname("no_such_target");
    let e = connect_err(cfg).await;
    let (code, message) = db_error(&e);
    assert_eq!(code, "3D000", "{message}");
    assert_eq!(message, "database \"no_such_target\" does not exist");

    // Bad credentials to an unknown database say 28P01, not whether the database exists.
    let mut cfg = gh.pg_config("alice", "wrong-token");
    cfg.dbname("no_such_target");
    let e = connect_err(cfg).await;
    assert_eq!(db_error(&e).0, "28P01");

    let events = gh
        .wait_events("refused unknown target", |evs| {
            !of_kind(evs, "refused").is_empty()
        })
        .await;
    let refused = of_kind(&events, "refused");
    assert_eq!(refused[0]["target"], "no_such_target");
    assert_eq!(refused[0]["outcome"]["sqlstate"], "3D000");
    assert_eq!(refused[0]["identity"], "alice");
}

/// A session outlives nothing its credential does not: revoking a token (from another
/// process, the CLI) ends the sessions opened with it, with FATAL 57P01 and a disconnect
/// event saying why; sessions of other tokens go on.
#[tokio::test]
async fn revoking_a_token_ends_its_open_sessions() {
    let gh = Gatehouse::start().await;
    let doomed = gh.issue("dave", "human", &[]).await;
    let other = gh.issue("erin", "human", &[]).await;
    let c = gh.connect("dave", &doomed).await;
    let e = gh.connect("erin", &other).await;
    c.simple_query("BEGIN; CREATE TEMP TABLE t (x int)")
        .await
        .unwrap();
    let list = gh.cli(&["token", "list", "--json"]).await;
    let id = list
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|t| t["identity"] == "dave")
        .and_then(|t| t["id"].as_str().map(str::to_owned))
        .unwrap();
    assert_eq!(gh.cli(&["token", "revoke", &id]).await.code, 0);
    // Ended within a sweep or two.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !c.is_closed() {
        assert!(
            std::time::Instant::now() < deadline,
            "the session outlived its revoked token"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(c.simple_query("SELECT 1").await.is_err());
    e.simple_query("SELECT 1").await.unwrap();
    let events = gh
        .wait_events("the disconnect", |evs| {
            of_kind(evs, "disconnect")
                .iter()
                .any(|d| d["identity"] == "dave")
        })
        .await;
    let d = of_kind(&events, "disconnect")
        .into_iter()
        .find(|d| d["identity"] == "dave")
        .unwrap();
    assert_eq!(d["outcome"]["sqlstate"], "57P01", "{d}");
    assert!(
        d["outcome"]["message"]
            .as_str()
            .unwrap()
            .contains("revoked"),
        "{d}"
    );
}

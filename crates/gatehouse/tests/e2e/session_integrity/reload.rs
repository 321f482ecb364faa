//! A policy reload applies to sessions already open: an unmask permission withdrawn while a
//! session is connected masks that session's very next result (no per-session memo outlives
//! the reload), and one granted takes effect the same way.

use super::{assert_no_secrets, SENSITIVE, SETUP};
use crate::harness::{Gatehouse, Options};
use std::time::{Duration, Instant};

const UNMASK_ALICE: &str = r#"
@id("alice-may-unmask")
permit(principal == Gatehouse::User::"alice", action == Gatehouse::Action::"unmask", resource);
"#;

/// Rewrites the suite's policy file without the grant (the proxy checks its policy files
/// every two seconds, and reloads on SIGHUP).
async fn withdraw_grant(gh: &Gatehouse) {
    let path = gh.dir.path().join("test-permits.cedar");
    let text = std::fs::read_to_string(&path).expect("policy file");
    std::fs::write(&path, text.replace(UNMASK_ALICE, "\n")).expect("rewrite policy");
}

#[tokio::test]
async fn withdrawn_unmask_masks_an_open_session_at_once() {
    let gh = Gatehouse::start_with(Options {
        extra_toml: SENSITIVE.into(),
        setup_sql: SETUP.into(),
        policies: UNMASK_ALICE.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    let mut c = super::raw(&gh, &token).await;
    let r = c.simple("SELECT ssn FROM users WHERE id = 1").await;
    assert_eq!(r.cells(), vec!["123-45-6789"], "granted: clear at first");
    withdraw_grant(&gh).await;
    // The same session, never reconnected: masked as soon as the reload is in force.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = c.simple("SELECT ssn FROM users WHERE id = 1").await;
        if !r.cells().contains(&"123-45-6789".to_owned()) {
            assert_no_secrets("after the reload", &r.bytes);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the open session still sees clear values"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A cursor declared after the reload is masked too.
    let r = c
        .simple("BEGIN; DECLARE c CURSOR FOR SELECT ssn FROM users; FETCH ALL FROM c; COMMIT")
        .await;
    assert_no_secrets("cursor after the reload", &r.bytes);
}

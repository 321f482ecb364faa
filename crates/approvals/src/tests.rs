use super::*;

fn spec(quorum: u32) -> RequestSpec {
    RequestSpec {
        requester: "alice".into(),
        requester_kind: "human".into(),
        requester_groups: vec!["dev".into()],
        session: "s1".into(),
        client_addr: None,
        application_name: Some("psql".into()),
        target: "app".into(),
        environment: Some("prod".into()),
        statement: "DELETE FROM orders WHERE id = 1".into(),
        params: Vec::new(),
        command: "DELETE".into(),
        tables: vec!["public.orders".into()],
        columns: Vec::new(),
        policy_id: "deletes-need-approval".into(),
        reason: "deletes need a DBA".into(),
        approver_groups: vec!["dba".into()],
        quorum,
        in_transaction: false,
    }
}

fn person(name: &str, groups: &[&str]) -> Identity {
    Identity {
        name: name.into(),
        kind: IdentityKind::Human,
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

#[test]
fn an_approver_in_the_group_approves() {
    let r = Registry::new(None);
    let (_, rx) = r.open("r1".into(), spec(1), 0, 60_000);
    let (req, out) = r
        .vote("r1", &person("bob", &["dba"]), true, "looks right", 10)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, Outcome::Approved);
    assert_eq!(req.state, State::Approved);
    assert_eq!(*rx.borrow(), State::Approved);
}

#[test]
fn who_may_not_decide() {
    let r = Registry::new(Some("breakglass".into()));
    r.open("r1".into(), spec(1), 0, 60_000);
    let vote = |who: &Identity, reason: &str| r.vote("r1", who, true, reason, 10).err();
    assert_eq!(
        vote(&person("alice", &["dba"]), "mine"),
        Some(VoteError::OwnRequest)
    );
    let mut agent = person("bot", &["dba"]);
    agent.kind = IdentityKind::Agent;
    assert_eq!(vote(&agent, "ok"), Some(VoteError::Agent));
    assert!(matches!(
        vote(&person("carol", &["dev"]), "ok"),
        Some(VoteError::NotAnApprover(_))
    ));
    assert_eq!(
        vote(&person("bob", &["dba"]), "  "),
        Some(VoteError::NoReason)
    );
    assert_eq!(r.get("r1").map(|q| q.state), Some(State::Pending));
}

#[test]
fn quorum_needs_distinct_approvers() {
    let r = Registry::new(None);
    r.open("r1".into(), spec(2), 0, 60_000);
    let bob = person("bob", &["dba"]);
    assert_eq!(
        r.vote("r1", &bob, true, "ok", 1).map(|x| x.1),
        Ok(Outcome::Counted {
            approvals: 1,
            quorum: 2
        })
    );
    assert_eq!(
        r.vote("r1", &bob, true, "ok again", 2).err(),
        Some(VoteError::AlreadyVoted)
    );
    assert_eq!(
        r.vote("r1", &person("dan", &["dba"]), true, "ok", 3)
            .map(|x| x.1),
        Ok(Outcome::Approved)
    );
}

#[test]
fn a_denial_ends_it_and_nothing_changes_after() {
    let r = Registry::new(None);
    r.open("r1".into(), spec(2), 0, 60_000);
    let (req, out) = r
        .vote("r1", &person("bob", &["dba"]), false, "not now", 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, Outcome::Denied);
    assert_eq!(req.denial().map(|v| v.reason.as_str()), Some("not now"));
    assert!(matches!(
        r.vote("r1", &person("dan", &["dba"]), true, "ok", 2),
        Err(VoteError::NotPending { .. })
    ));
    assert!(r.finish("r1", State::Withdrawn, None).is_none());
}

#[test]
fn late_votes_find_it_expired() {
    let r = Registry::new(None);
    let (_, rx) = r.open("r1".into(), spec(1), 0, 1_000);
    assert!(matches!(
        r.vote("r1", &person("bob", &["dba"]), true, "ok", 1_000),
        Err(VoteError::NotPending {
            state: State::Expired,
            ..
        })
    ));
    assert_eq!(*rx.borrow(), State::Expired);
}

#[test]
fn break_glass_approves_alone_and_is_flagged() {
    let r = Registry::new(Some("breakglass".into()));
    r.open("r1".into(), spec(2), 0, 60_000);
    let (req, out) = r
        .vote(
            "r1",
            &person("erin", &["breakglass"]),
            true,
            "incident 42",
            1,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, Outcome::Approved);
    assert!(req.votes[0].break_glass);
}

#[test]
fn withdrawn_only_while_pending() {
    let r = Registry::new(None);
    let (_, rx) = r.open("r1".into(), spec(1), 0, 60_000);
    let w = r.finish("r1", State::Withdrawn, Some("client cancelled"));
    assert_eq!(w.map(|q| q.state), Some(State::Withdrawn));
    assert_eq!(*rx.borrow(), State::Withdrawn);
    assert!(r.pending().is_empty());
}

#[test]
fn only_requester_and_approvers_see_a_request() {
    let r = Registry::new(Some("breakglass".into()));
    let (req, _) = r.open("r1".into(), spec(1), 0, 60_000);
    assert!(r.may_see(&req, &person("alice", &["dev"])));
    assert!(r.may_see(&req, &person("bob", &["dba"])));
    assert!(r.may_see(&req, &person("erin", &["breakglass"])));
    assert!(!r.may_see(&req, &person("mallory", &["dev"])));
}

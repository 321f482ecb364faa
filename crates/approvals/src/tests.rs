use super::*;
use tokio::sync::watch;

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
        estimated_rows: None,
        transaction: Vec::new(),
        changed_rows: Vec::new(),
    }
}

fn open(
    r: &Registry,
    id: &str,
    spec: RequestSpec,
    expires: i64,
) -> (Request, watch::Receiver<State>) {
    let key = grant_key(
        &spec.requester,
        &spec.target,
        "p",
        &spec.statement,
        &spec.params,
    );
    r.open(id.into(), spec, key, 0, expires)
        .unwrap_or_else(|e| panic!("{e}"))
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
    let (_, rx) = open(&r, "r1", spec(1), 60_000);
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
    open(&r, "r1", spec(1), 60_000);
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
    open(&r, "r1", spec(2), 60_000);
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
    open(&r, "r1", spec(2), 60_000);
    let (req, out) = r
        .vote("r1", &person("bob", &["dba"]), false, "not now", 1)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out, Outcome::Denied);
    assert_eq!(req.denial().map(|v| v.reason.as_str()), Some("not now"));
    assert!(matches!(
        r.vote("r1", &person("dan", &["dba"]), true, "ok", 2),
        Err(VoteError::NotPending { .. })
    ));
    assert!(r.finish("r1", State::Withdrawn, None, 5).is_none());
}

#[test]
fn late_votes_find_it_expired() {
    let r = Registry::new(None);
    let (_, rx) = open(&r, "r1", spec(1), 1_000);
    assert!(matches!(
        r.vote("r1", &person("bob", &["dba"]), true, "ok", 1_000),
        Err(VoteError::NotPending {
            state: State::Expired,
            ..
        })
    ));
    // The vote changes nothing: whoever expires it (the waiting session or the sweeper)
    // records the expiry.
    assert_eq!(*rx.borrow(), State::Pending);
    assert_eq!(r.sweep(1_000).len(), 1);
    assert_eq!(*rx.borrow(), State::Expired);
}

#[test]
fn break_glass_approves_alone_and_is_flagged() {
    let r = Registry::new(Some("breakglass".into()));
    open(&r, "r1", spec(2), 60_000);
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
    let (_, rx) = open(&r, "r1", spec(1), 60_000);
    let w = r.finish("r1", State::Withdrawn, Some("client cancelled"), 5);
    assert_eq!(w.map(|q| q.state), Some(State::Withdrawn));
    assert_eq!(*rx.borrow(), State::Withdrawn);
    assert!(r.pending().is_empty());
}

#[test]
fn only_requester_and_approvers_see_a_request() {
    let r = Registry::new(Some("breakglass".into()));
    let (req, _) = open(&r, "r1", spec(1), 60_000);
    assert!(r.may_see(&req, &person("alice", &["dev"])));
    assert!(r.may_see(&req, &person("bob", &["dba"])));
    assert!(r.may_see(&req, &person("erin", &["breakglass"])));
    assert!(!r.may_see(&req, &person("mallory", &["dev"])));
}

#[test]
fn an_approval_runs_once() {
    let r = Registry::new(None).with_grant_window_ms(10_000);
    let (req, _) = open(&r, "r1", spec(1), 60_000);
    // Pending: a re-run of the same statement waits on it rather than asking again.
    assert!(matches!(r.grant_for(&req.grant_key, 5), Grant::Pending(ref p, _) if p.id == "r1"));
    assert!(matches!(
        r.consume("r1", "s2", 5),
        Err(UseError::NotApproved { .. })
    ));
    r.vote("r1", &person("bob", &["dba"]), true, "ok", 100)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(r.grant_for(&req.grant_key, 200), Grant::Approved(ref p) if p.id == "r1"));
    let used = r.consume("r1", "s2", 200).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(used.used_by_session.as_deref(), Some("s2"));
    assert!(matches!(
        r.consume("r1", "s3", 300),
        Err(UseError::AlreadyUsed(_))
    ));
    assert!(matches!(r.grant_for(&req.grant_key, 300), Grant::None));
}

#[test]
fn a_grant_has_a_window() {
    let r = Registry::new(None).with_grant_window_ms(1_000);
    let (req, _) = open(&r, "r1", spec(1), 60_000);
    r.vote("r1", &person("bob", &["dba"]), true, "ok", 100)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(r.grant_for(&req.grant_key, 1_100), Grant::None));
    assert!(matches!(
        r.consume("r1", "s2", 1_100),
        Err(UseError::WindowClosed(_))
    ));
}

#[test]
fn a_grant_key_separates_every_field() {
    let k =
        |who: &str, stmt: &str, params: &[Option<String>]| grant_key(who, "app", "p", stmt, params);
    assert_ne!(k("a", "x", &[]), k("b", "x", &[]));
    assert_ne!(
        k("a", "x", &[Some("1".into())]),
        k("a", "x", &[Some("2".into())])
    );
    assert_ne!(k("a", "x", &[None]), k("a", "x", &[Some(String::new())]));
    // Length-prefixed: no field runs into the next.
    assert_ne!(
        grant_key("ab", "c", "p", "x", &[]),
        grant_key("a", "bc", "p", "x", &[])
    );
}

#[test]
fn sweep_expires_what_is_due_and_tells() {
    let r = Registry::new(None);
    let mut ev = r.subscribe();
    let (_, rx) = open(&r, "r1", spec(1), 1_000);
    assert!(r.sweep(999).is_empty());
    let swept = r.sweep(1_000);
    assert_eq!(swept.len(), 1);
    assert_eq!(*rx.borrow(), State::Expired);
    assert_eq!(ev.try_recv().map(|e| e.kind).ok(), Some(EventKind::Opened));
    assert_eq!(
        ev.try_recv().map(|e| e.kind).ok(),
        Some(EventKind::Finished)
    );
}

struct Failing;
impl ApprovalStore for Failing {
    fn save(&self, _: &Request) -> Result<(), String> {
        Err("disk full".into())
    }
    fn load_open(&self) -> Result<Vec<Request>, String> {
        Ok(Vec::new())
    }
}

#[test]
fn nothing_is_opened_or_counted_that_the_store_cannot_keep() {
    let r = Registry::new(None)
        .with_store(std::sync::Arc::new(Failing))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r
        .open("r1".into(), spec(1), String::new(), 0, 1_000)
        .is_err());
    assert!(r.get("r1").is_none());
}

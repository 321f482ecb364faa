//! SqliteApprovals as an ApprovalStore: upsert by id, which requests are open, the history,
//! and that both survive reopening the directory.

use approvals::{ApprovalStore, Request, RequestSpec, State, Vote};
use store::{SqliteApprovals, StoreError};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn request(id: &str, created_at_ms: i64) -> Request {
    Request {
        id: id.to_owned(),
        spec: RequestSpec {
            requester: "deploy-bot".into(),
            requester_kind: "agent".into(),
            requester_groups: vec!["bots".into()],
            session: "s1".into(),
            client_addr: Some("127.0.0.1:5000".into()),
            application_name: None,
            target: "app".into(),
            environment: Some("prod".into()),
            statement: "DELETE FROM orders WHERE id = 1".into(),
            params: vec![Some("1".into()), None],
            command: "delete".into(),
            tables: vec!["public.orders".into()],
            columns: vec![],
            policy_id: "orders-writes".into(),
            reason: "writes to orders need a DBA".into(),
            approver_groups: vec!["dba".into()],
            quorum: 1,
            in_transaction: false,
            estimated_rows: Some(1),
            transaction: Vec::new(),
            changed_rows: Vec::new(),
        },
        created_at_ms,
        expires_at_ms: created_at_ms + 120_000,
        state: State::Pending,
        votes: vec![],
        withdrawn_because: None,
        grant_key: format!("key-{id}"),
        decided_at_ms: None,
        used_at_ms: None,
        used_by_session: None,
    }
}

fn approve(r: &mut Request, at: i64) {
    r.votes.push(Vote {
        approver: "bob".into(),
        approve: true,
        reason: "ticket 42".into(),
        at_ms: at,
        break_glass: false,
    });
    r.state = State::Approved;
    r.decided_at_ms = Some(at);
}

fn ids(v: &[Request]) -> Vec<&str> {
    v.iter().map(|r| r.id.as_str()).collect()
}

#[test]
fn upsert_replaces_the_row_of_the_same_id() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteApprovals::open(dir.path())?;
    let mut r = request("ap_1", 1_000);
    store.save(&r)?;
    assert_eq!(store.load_open()?, vec![r.clone()]);
    approve(&mut r, 2_000);
    store.save(&r)?;
    // One row, as it stands now (every field round-trips).
    assert_eq!(store.load_open()?, vec![r.clone()]);
    assert_eq!(store.finished(0, 10)?, vec![r]);
    Ok(())
}

#[test]
fn open_means_pending_or_approved_and_unused_oldest_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteApprovals::open(dir.path())?;
    let pending_late = request("ap_pending_late", 5_000);
    let pending_early = request("ap_pending_early", 1_000);
    let mut grant = request("ap_grant", 3_000);
    approve(&mut grant, 3_500);
    let mut used = request("ap_used", 2_000);
    approve(&mut used, 2_500);
    used.used_at_ms = Some(2_600);
    used.used_by_session = Some("s9".into());
    let mut denied = request("ap_denied", 4_000);
    denied.state = State::Denied;
    denied.decided_at_ms = Some(4_100);
    let mut expired = request("ap_expired", 500);
    expired.state = State::Expired;
    expired.decided_at_ms = Some(121_000);
    let mut withdrawn = request("ap_withdrawn", 600);
    withdrawn.state = State::Withdrawn;
    withdrawn.withdrawn_because = Some("the client disconnected".into());
    withdrawn.decided_at_ms = Some(700);
    for r in [
        &pending_late,
        &pending_early,
        &grant,
        &used,
        &denied,
        &expired,
        &withdrawn,
    ] {
        store.save(r)?;
    }
    assert_eq!(
        ids(&store.load_open()?),
        ["ap_pending_early", "ap_grant", "ap_pending_late"]
    );
    // The history: everything not pending, most recently decided first, paged.
    assert_eq!(
        ids(&store.finished(0, 10)?),
        [
            "ap_expired",
            "ap_denied",
            "ap_grant",
            "ap_used",
            "ap_withdrawn"
        ]
    );
    assert_eq!(ids(&store.finished(1, 2)?), ["ap_denied", "ap_grant"]);
    assert!(store.finished(5, 10)?.is_empty());
    Ok(())
}

#[test]
fn survives_reopening_and_a_used_grant_stays_used() -> TestResult {
    let dir = tempfile::tempdir()?;
    let mut grant = request("ap_grant", 1_000);
    approve(&mut grant, 2_000);
    {
        let store = SqliteApprovals::open(dir.path())?;
        store.save(&request("ap_pending", 500))?;
        store.save(&grant)?;
    }
    let store = SqliteApprovals::open(dir.path())?;
    assert_eq!(ids(&store.load_open()?), ["ap_pending", "ap_grant"]);
    grant.used_at_ms = Some(3_000);
    grant.used_by_session = Some("s2".into());
    store.save(&grant)?;
    drop(store);
    let store = SqliteApprovals::open(dir.path())?;
    assert_eq!(ids(&store.load_open()?), ["ap_pending"]);
    // The approvals file is beside the main database, not inside it.
    assert!(dir.path().join(store::APPROVALS_FILE_NAME).is_file());
    Ok(())
}

#[test]
fn the_registry_takes_back_open_requests_from_the_store() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = std::sync::Arc::new(SqliteApprovals::open(dir.path())?);
    let registry = approvals::Registry::new(None).with_store(store.clone())?;
    let (r, _rx) = registry.open(
        "ap_r".into(),
        request("ap_r", 0).spec,
        "key".into(),
        1_000,
        60_000,
    )?;
    drop(registry);
    let registry = approvals::Registry::new(None)
        .with_store(std::sync::Arc::new(SqliteApprovals::open(dir.path())?))?;
    assert_eq!(registry.pending(), vec![r]);
    Ok(())
}

#[test]
fn a_row_whose_json_was_edited_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteApprovals::open(dir.path())?;
    store.save(&request("ap_1", 1_000))?;
    let conn = rusqlite::Connection::open(dir.path().join(store::APPROVALS_FILE_NAME))?;
    conn.execute(
        "UPDATE approval_requests SET request_json = replace(request_json, 'ap_1', 'ap_2')",
        [],
    )?;
    match store.open_requests() {
        Err(StoreError::CorruptApproval { id, .. }) => assert_eq!(id, "ap_1"),
        other => panic!("expected a corrupt row, got {other:?}"),
    }
    conn.execute("UPDATE approval_requests SET request_json = '{'", [])?;
    assert!(store.load_open().is_err());
    Ok(())
}

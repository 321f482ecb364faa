use super::*;
use crate::mask_plan::{MaskPlan, PlannedMask};

fn masked() -> Plan {
    Plan::Own(Some(Arc::new(MaskPlan {
        columns: vec![Some(PlannedMask {
            strategy: masking::Strategy::Full,
            tags: vec![],
            name: "ssn".into(),
        })],
    })))
}

fn is_masked(r: Resolved) -> bool {
    matches!(r, Resolved::Plan(Some(_)))
}

fn none() -> Arc<[Effect]> {
    Arc::from(Vec::new())
}

#[test]
fn cursor_plan_follows_declare_and_dies_with_the_transaction() {
    let mut s = SessionState::default();
    s.apply(&[Effect::Declare {
        name: "c".into(),
        plan: masked(),
        hold: false,
    }]);
    assert!(is_masked(s.resolve(&Plan::Cursor("c".into()))));
    s.ready(b'T');
    assert!(is_masked(s.resolve(&Plan::Cursor("c".into()))));
    s.ready(b'I');
    assert!(matches!(
        s.resolve(&Plan::Cursor("c".into())),
        Resolved::Unknown(_)
    ));
}

#[test]
fn holdable_cursor_survives_commit_not_rollback() {
    let mut s = SessionState::default();
    s.apply(&[Effect::Declare {
        name: "h".into(),
        plan: masked(),
        hold: true,
    }]);
    s.ready(b'I');
    assert!(is_masked(s.resolve(&Plan::Cursor("h".into()))));
    s.apply(&[Effect::Declare {
        name: "r".into(),
        plan: masked(),
        hold: true,
    }]);
    s.rolled_back();
    s.ready(b'I');
    assert!(
        is_masked(s.resolve(&Plan::Cursor("h".into()))),
        "committed earlier"
    );
    assert!(matches!(
        s.resolve(&Plan::Cursor("r".into())),
        Resolved::Unknown(_)
    ));
}

#[test]
fn execute_and_bind_follow_the_confirmed_statement() {
    let mut s = SessionState::default();
    s.apply(&[Effect::Prepare {
        name: "p".into(),
        plan: masked(),
    }]);
    assert!(is_masked(s.resolve(&Plan::Prepared("p".into()))));
    assert!(s.bound("".into(), "p", vec![1], None));
    let portal = s.portal("").map(|p| p.plan.clone());
    assert!(is_masked(s.resolve(&portal.unwrap_or(Plan::Own(None)))));
    assert!(!s.bound("x".into(), "missing", vec![], None));
    s.apply(&[Effect::Deallocate(None)]);
    assert!(matches!(
        s.resolve(&Plan::Prepared("p".into())),
        Resolved::Unknown(_)
    ));
}

#[test]
fn statement_executing_a_prepared_name_resolves_through_it() {
    let mut s = SessionState::default();
    s.parsed("".into(), Plan::Prepared("p".into()), none());
    assert!(s.bound("".into(), "", vec![], None));
    let plan = s
        .portal("")
        .map(|p| p.plan.clone())
        .unwrap_or(Plan::Own(None));
    assert!(
        matches!(s.resolve(&plan), Resolved::Unknown(_)),
        "p not prepared yet"
    );
    s.apply(&[Effect::Prepare {
        name: "p".into(),
        plan: masked(),
    }]);
    assert!(is_masked(s.resolve(&plan)));
}

#[test]
fn close_all_and_discard_forget_everything() {
    let mut s = SessionState::default();
    s.apply(&[Effect::Declare {
        name: "c".into(),
        plan: masked(),
        hold: true,
    }]);
    assert!(s.bound("".into(), "", vec![], None) || s.statement("").is_none());
    s.apply(&[Effect::Close(None)]);
    assert!(s.portal("c").is_none());
    s.parsed("q".into(), masked(), none());
    s.apply(&[Effect::DiscardAll]);
    assert!(s.statement("q").is_none());
}

#[test]
fn savepoint_recovery_keeps_holdable_cursors_committed_later() {
    let mut s = SessionState::default();
    s.rolled_back(); // ROLLBACK TO SAVEPOINT (tag "ROLLBACK") or a recovered error
    s.ready(b'T');
    s.apply(&[Effect::Declare {
        name: "h".into(),
        plan: masked(),
        hold: true,
    }]);
    s.ready(b'T');
    s.ready(b'I'); // COMMIT
    assert!(is_masked(s.resolve(&Plan::Cursor("h".into()))));
}

#[test]
fn a_plan_made_again_adds_its_masks_to_the_first() {
    let mut s = SessionState::default();
    s.parsed("p".into(), Plan::Own(None), none());
    let again = MaskPlan {
        columns: vec![
            None,
            Some(PlannedMask {
                strategy: masking::Strategy::Full,
                tags: vec![],
                name: "b".into(),
            }),
        ],
    };
    assert!(s.bound("".into(), "p", vec![], Some(Arc::new(again))));
    let plan = s
        .portal("")
        .map(|p| p.plan.clone())
        .unwrap_or(Plan::Own(None));
    match s.resolve(&plan) {
        Resolved::Plan(Some(p)) => assert!(p.columns.get(1).is_some_and(Option::is_some)),
        _ => panic!("union lost the second plan"),
    }
}

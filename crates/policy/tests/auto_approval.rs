//! Automatic approval rules: real Cedar policies, real statement facts, the decision that
//! held the statement from `decide_all`, then `Policies::auto_approval` on it.

use model::decision::Decision;
use model::facts::StatementFacts;
use model::{Identity, IdentityKind};
use policy::{decide_all, AutoApprovalInput, AutoApproved, Policies, Principal, RequestContext};
use std::sync::{Arc, RwLock};

/// The approval policies the rules below work with.
const HOLDS: &str = r#"
@id("orders-writes-need-a-dba")
@reason("writes to orders need a DBA")
@approval("dba, oncall")
forbid(principal, action, resource)
when { context.tables_written.contains("public.orders") };

@id("ledger-writes-need-two")
@approval("dba")
@quorum("2")
forbid(principal, action, resource)
when { context.tables_written.contains("public.ledger") };
"#;

const SMALL_STAGING: &str = r#"
@id("auto-small-staging-writes")
@reason("small filtered writes on staging are approved automatically")
permit(principal in Gatehouse::Group::"devs", action == Gatehouse::Action::"approve", resource)
when {
  context.environment == "staging" &&
  context.has_where && !context.where_tautology &&
  context has estimated_rows && context.estimated_rows <= 100
};
"#;

fn person(kind: IdentityKind, groups: &[&str]) -> Principal {
    Principal {
        identity: Identity {
            name: "alice".into(),
            kind,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
    }
}

fn dev() -> Principal {
    person(IdentityKind::Human, &["devs"])
}

fn ctx(env: &str) -> RequestContext {
    RequestContext {
        target: "app".into(),
        environment: env.into(),
        hour: 14,
        ..RequestContext::default()
    }
}

fn load(files: &[&str]) -> Policies {
    let sources: Vec<(String, String)> = files
        .iter()
        .enumerate()
        .map(|(n, t)| (format!("p{n}.cedar"), t.to_string()))
        .collect();
    Policies::load(true, &sources).unwrap_or_else(|e| panic!("{e:?}"))
}

fn load_err(text: &str) -> String {
    match Policies::load(true, &[("bad.cedar".into(), text.into())]) {
        Ok(_) => panic!("loaded: {text}"),
        Err(e) => e
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

fn facts(sql: &str) -> Vec<StatementFacts> {
    sql::analyze(sql, &sql::AnalyzeContext::default()).statements
}

/// Decides `sql` (it must need approval), then asks the rules.
fn auto(
    p: &Policies,
    who: &Principal,
    env: &str,
    sql: &str,
    rows: Option<u64>,
) -> Option<AutoApproved> {
    let statements = facts(sql);
    let c = ctx(env);
    let decision = decide_all(p, who, &statements, &c);
    assert!(
        matches!(decision, Decision::NeedsApproval { .. }),
        "{sql}: {decision:?}"
    );
    p.auto_approval(&AutoApprovalInput {
        principal: who,
        statements: &statements,
        ctx: &c,
        decision: &decision,
        in_transaction: false,
        estimated_rows: rows,
    })
}

const DELETE: &str = "DELETE FROM orders WHERE id = 1";

#[test]
fn a_rule_approves_what_it_describes() {
    let p = load(&[HOLDS, SMALL_STAGING]);
    let got = auto(&p, &dev(), "staging", DELETE, Some(1)).unwrap_or_else(|| panic!("none"));
    assert_eq!(got.policy_id, "auto-small-staging-writes");
    assert_eq!(
        got.reason,
        "small filtered writes on staging are approved automatically"
    );
    assert_eq!(got.policies, vec!["auto-small-staging-writes".to_owned()]);
}

#[test]
fn a_rule_does_not_approve_what_it_does_not_describe() {
    let p = load(&[HOLDS, SMALL_STAGING]);
    // Too many rows, another environment, another group, no WHERE.
    assert_eq!(auto(&p, &dev(), "staging", DELETE, Some(101)), None);
    assert_eq!(auto(&p, &dev(), "production", DELETE, Some(1)), None);
    let ops = person(IdentityKind::Human, &["ops"]);
    assert_eq!(auto(&p, &ops, "staging", DELETE, Some(1)), None);
    // No rules at all: nothing is approved automatically.
    let bare = load(&[HOLDS]);
    assert_eq!(auto(&bare, &dev(), "staging", DELETE, Some(1)), None);
}

#[test]
fn only_a_held_decision_is_approved() {
    let p = load(&[HOLDS, SMALL_STAGING]);
    let statements = facts(DELETE);
    let c = ctx("staging");
    for decision in [
        Decision::Allow { policies: vec![] },
        Decision::Deny {
            reason: "no".into(),
            policy_id: "x".into(),
            hint: None,
            policies: vec![],
        },
    ] {
        let input = AutoApprovalInput {
            principal: &dev(),
            statements: &statements,
            ctx: &c,
            decision: &decision,
            in_transaction: false,
            estimated_rows: Some(1),
        };
        assert_eq!(p.auto_approval(&input), None);
    }
}

#[test]
fn a_forbid_on_approve_overrides_every_rule() {
    let never_ledger = r#"
@id("never-auto-ledger")
forbid(principal, action == Gatehouse::Action::"approve", resource)
when { context.tables_written.contains("public.ledger") };

@id("auto-anything-on-staging")
permit(principal, action == Gatehouse::Action::"approve", resource)
when { context.environment == "staging" && context has estimated_rows };
"#;
    let p = load(&[HOLDS, never_ledger]);
    let ledger = "UPDATE ledger SET note = 'x' WHERE id = 1";
    assert_eq!(auto(&p, &dev(), "staging", ledger, Some(1)), None);
    let got = auto(&p, &dev(), "staging", DELETE, Some(1)).map(|a| a.policy_id);
    assert_eq!(got.as_deref(), Some("auto-anything-on-staging"));
    // A string: every statement must be approved, and the forbid stops the whole of it.
    let both = format!("{DELETE}; DELETE FROM ledger WHERE id = 2");
    // (Two different approval requirements are refused by decide; use the same one.)
    let p2 = load(&[
        r#"
@id("hold-all-writes")
@approval("dba")
forbid(principal, action, resource) when { context.tables_written.contains("public.orders") || context.tables_written.contains("public.ledger") };
"#,
        never_ledger,
    ]);
    assert_eq!(auto(&p2, &dev(), "staging", &both, Some(1)), None);
    let two_orders = format!("{DELETE}; DELETE FROM orders WHERE id = 2");
    assert!(auto(&p2, &dev(), "staging", &two_orders, Some(1)).is_some());
}

#[test]
fn open_scope_permits_never_approve() {
    let open = r#"
@id("allow-everything")
permit(principal, action, resource);
"#;
    let p = load(&[HOLDS, open]);
    assert_eq!(auto(&p, &dev(), "staging", DELETE, Some(1)), None);
}

#[test]
fn an_unknown_estimate_needs_a_rule_that_says_so() {
    let p = load(&[HOLDS, SMALL_STAGING]);
    assert_eq!(auto(&p, &dev(), "staging", DELETE, None), None);

    // A rule that never mentions rows approves an unknown estimate only when annotated.
    let silent = r#"
@id("auto-oncall")
permit(principal in Gatehouse::Group::"oncall", action == Gatehouse::Action::"approve", resource);
"#;
    let oncall = person(IdentityKind::Human, &["oncall"]);
    let p = load(&[HOLDS, silent]);
    assert!(auto(&p, &oncall, "prod", DELETE, Some(5)).is_some());
    assert_eq!(auto(&p, &oncall, "prod", DELETE, None), None);

    let says_so = r#"
@id("auto-oncall")
@unknown_estimate("approve")
permit(principal in Gatehouse::Group::"oncall", action == Gatehouse::Action::"approve", resource)
when { if context has estimated_rows then context.estimated_rows < 1000 else true };
"#;
    let p = load(&[HOLDS, says_so]);
    assert!(auto(&p, &oncall, "prod", DELETE, None).is_some());
    assert!(auto(&p, &oncall, "prod", DELETE, Some(999)).is_some());
    assert_eq!(auto(&p, &oncall, "prod", DELETE, Some(1000)), None);
}

#[test]
fn agents_are_approved_only_by_rules_that_name_them() {
    let bot = person(IdentityKind::Agent, &["devs"]);
    let p = load(&[HOLDS, SMALL_STAGING]);
    assert_eq!(auto(&p, &bot, "staging", DELETE, Some(1)), None);
    let for_bots = r#"
@id("auto-bots-tiny")
permit(principal is Gatehouse::Agent in Gatehouse::Group::"devs", action == Gatehouse::Action::"approve", resource)
when { context has estimated_rows && context.estimated_rows <= 1 && context.requester_kind == "agent" };
"#;
    let p = load(&[HOLDS, SMALL_STAGING, for_bots]);
    let got = auto(&p, &bot, "staging", DELETE, Some(1)).map(|a| a.policy_id);
    assert_eq!(got.as_deref(), Some("auto-bots-tiny"));
    assert_eq!(auto(&p, &bot, "staging", DELETE, Some(2)), None);
    // The people's rule is credited for people (first loaded that matched).
    let got = auto(&p, &dev(), "staging", DELETE, Some(1)).map(|a| a.policy_id);
    assert_eq!(got.as_deref(), Some("auto-small-staging-writes"));
}

#[test]
fn rules_see_what_the_approval_asks_for() {
    let rule = r#"
@id("auto-daytime-single-dba")
@unknown_estimate("approve")
permit(principal, action == Gatehouse::Action::"approve", resource)
when {
  context.approval_policy == "orders-writes-need-a-dba" &&
  context.approver_groups.contains("oncall") && context.quorum == 1 &&
  !context.in_transaction && context.hour >= 9 && context.hour < 17 &&
  context.command == "DELETE" && context.requester_kind == "human"
};
"#;
    let p = load(&[HOLDS, rule]);
    assert!(auto(&p, &dev(), "prod", DELETE, None).is_some());
    // The ledger asks another policy, with a quorum of two.
    let ledger = "DELETE FROM ledger WHERE id = 1";
    assert_eq!(auto(&p, &dev(), "prod", ledger, None), None);

    let statements = facts(DELETE);
    let decision = decide_all(&p, &dev(), &statements, &ctx("prod"));
    let ask = |hour: u8, in_transaction: bool| {
        let c = RequestContext {
            hour,
            ..ctx("prod")
        };
        p.auto_approval(&AutoApprovalInput {
            principal: &dev(),
            statements: &statements,
            ctx: &c,
            decision: &decision,
            in_transaction,
            estimated_rows: None,
        })
    };
    assert!(ask(10, false).is_some());
    assert_eq!(ask(20, false), None);
    assert_eq!(ask(10, true), None);
}

#[test]
fn a_failing_evaluation_approves_nothing() {
    // Overflows (an evaluation error) for any estimate above one.
    let broken = r#"
@id("overflowing-forbid")
forbid(principal, action == Gatehouse::Action::"approve", resource)
when { context has estimated_rows && context.estimated_rows * 9223372036854775807 < 0 };

@id("auto-anything")
permit(principal, action == Gatehouse::Action::"approve", resource)
when { context has estimated_rows };
"#;
    let p = load(&[HOLDS, broken]);
    assert!(auto(&p, &dev(), "staging", DELETE, Some(1)).is_some());
    assert_eq!(auto(&p, &dev(), "staging", DELETE, Some(2)), None);
}

#[test]
fn a_reload_swaps_the_rules() {
    // As the proxy's PolicyEngine does: sessions read the current Arc at each use.
    let engine = RwLock::new(Arc::new(load(&[HOLDS, SMALL_STAGING])));
    let current = || engine.read().unwrap_or_else(|p| p.into_inner()).clone();
    assert!(auto(&current(), &dev(), "staging", DELETE, Some(1)).is_some());
    *engine.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(load(&[HOLDS]));
    assert_eq!(auto(&current(), &dev(), "staging", DELETE, Some(1)), None);
    // A reload that fails to load keeps the old set (the caller never swaps it in).
    assert!(Policies::load(true, &[("bad.cedar".into(), "permit(".into())]).is_err());
    assert_eq!(auto(&current(), &dev(), "staging", DELETE, Some(1)), None);
}

#[test]
fn rules_are_checked_at_load() {
    let with_statements = load_err(
        r#"@id("a") permit(principal, action in [Gatehouse::Action::"write", Gatehouse::Action::"approve"], resource);"#,
    );
    assert!(
        with_statements.contains("must name only"),
        "{with_statements}"
    );
    let no_id = load_err(r#"permit(principal, action == Gatehouse::Action::"approve", resource);"#);
    assert!(no_id.contains("needs an @id"), "{no_id}");
    let on_forbid = load_err(
        r#"@unknown_estimate("approve") forbid(principal, action == Gatehouse::Action::"approve", resource);"#,
    );
    assert!(on_forbid.contains("@unknown_estimate only"), "{on_forbid}");
    let bad_value = load_err(
        r#"@id("a") @unknown_estimate("yes") permit(principal, action == Gatehouse::Action::"approve", resource);"#,
    );
    assert!(bad_value.contains("takes \"approve\""), "{bad_value}");
    let approval = load_err(
        r#"@approval("dba") forbid(principal, action == Gatehouse::Action::"approve", resource);"#,
    );
    assert!(
        approval.contains("cannot apply to the approve"),
        "{approval}"
    );
    let never = load_err(
        r#"@id("a") permit(principal, action == Gatehouse::Action::"approve", resource) when { false };"#,
    );
    assert!(never.contains("can never apply"), "{never}");
    // Strict validation: the estimate is optional, so reading it needs `has`.
    let unguarded = load_err(
        r#"@id("a") permit(principal, action == Gatehouse::Action::"approve", resource) when { context.estimated_rows < 10 };"#,
    );
    assert!(unguarded.contains("estimated_rows"), "{unguarded}");
    // A forbid may name approve alongside statement actions.
    load(&[
        r#"@id("f") forbid(principal, action in [Gatehouse::Action::"write", Gatehouse::Action::"approve"], resource) when { context.hour < 6 };"#,
    ]);
}

#[test]
fn the_documented_policies_load_and_decide() {
    let doc = include_str!("../../../docs/approvals.md");
    let blocks: Vec<&str> = doc
        .split("```cedar")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 2, "cedar blocks in docs/approvals.md");
    let p = load(&blocks);
    let got = auto(&p, &dev(), "staging", DELETE, Some(3)).map(|a| a.policy_id);
    assert_eq!(got.as_deref(), Some("auto-small-staging-writes"));
    let ledger = "DELETE FROM ledger WHERE id = 1";
    let oncall = person(IdentityKind::Human, &["oncall"]);
    assert_eq!(auto(&p, &oncall, "prod", ledger, None), None);
    let got = auto(&p, &oncall, "prod", DELETE, None).map(|a| a.policy_id);
    assert_eq!(got.as_deref(), Some("auto-oncall-daytime"));
}

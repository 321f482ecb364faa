//! User policy files combined with the built-in pack: approvals, group permits, agents,
//! addresses, multi-statement strings, and the decision cache.

use crate::common::*;
use model::decision::Decision;
use model::facts::CommandClass as C;
use model::IdentityKind;
use policy::{decide, decide_all, Policies, RequestContext};

const TEAM: &str = r#"// Team policies.
@id("dba-ddl")
permit (principal in Gatehouse::Group::"dba", action == Gatehouse::Action::"ddl", resource);

@id("prod-writes-need-approval")
@reason("writes to production need approval")
@approval("dba")
forbid (principal, action == Gatehouse::Action::"write", resource)
when { context.environment == "production" };

@id("agents-read-only-at-night")
@reason("agents may not write at night")
forbid (principal is Gatehouse::Agent, action == Gatehouse::Action::"write", resource)
when { context.hour < 6 };

@id("office-only")
@reason("copy only from the office network")
forbid (principal, action == Gatehouse::Action::"copy", resource)
unless { context has source_ip && context.source_ip.isInRange(ip("10.0.0.0/8")) };

@id("no-multi-statement-for-agents")
forbid (principal is Gatehouse::Agent, action, resource)
when { context.multi_statement };
"#;

fn team() -> Policies {
    Policies::load(true, &[("team.cedar".into(), TEAM.into())]).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn approval_forbids_yield_needs_approval() {
    let p = team();
    let update = with(stmt(C::Write, "UPDATE"), |f| f.has_where = Some(true));
    let d = decide(&p, &alice(), &update, &req("production"));
    assert_eq!(
        d,
        Decision::NeedsApproval {
            reason: "writes to production need approval".into(),
            policy_id: "prod-writes-need-approval".into(),
            approver_group: "dba".into(),
            policies: vec![
                "builtin.permit-write".into(),
                "prod-writes-need-approval".into()
            ],
            quorum: 1,
            commit: false,
        }
    );
    // Elsewhere the approval forbid does not match.
    assert!(decide(&p, &alice(), &update, &req("staging")).is_allow());
    // Another (non-approval) forbid wins: refused outright.
    let unfiltered = with(stmt(C::Write, "DELETE"), |f| f.has_where = Some(false));
    assert_eq!(
        summary(&decide(&p, &alice(), &unfiltered, &req("production"))),
        "deny builtin.unfiltered-write"
    );
}

#[test]
fn user_policies_combine_with_the_builtin_pack() {
    let p = team();
    let dba = who(IdentityKind::Human, &["dba"]);
    let create = stmt(C::Ddl, "CREATE TABLE");
    assert_eq!(
        summary(&decide(&p, &dba, &create, &req("dev"))),
        "allow dba-ddl"
    );
    assert_eq!(
        summary(&decide(&p, &alice(), &create, &req("dev"))),
        "deny default"
    );
    // A permit never overrides a built-in forbid.
    assert_eq!(
        summary(&decide(
            &p,
            &dba,
            &drop_of("table", "public.t"),
            &req("dev")
        )),
        "deny builtin.no-drop"
    );

    let agent = who(IdentityKind::Agent, &[]);
    let insert = stmt(C::Write, "INSERT");
    let night = RequestContext {
        hour: 3,
        ..req("dev")
    };
    assert_eq!(
        summary(&decide(&p, &agent, &insert, &night)),
        "deny agents-read-only-at-night"
    );
    assert!(decide(&p, &alice(), &insert, &night).is_allow());

    let copy = stmt(C::Copy, "COPY");
    let office = RequestContext {
        source_ip: "10.2.3.4".parse().ok(),
        ..req("dev")
    };
    let home = RequestContext {
        source_ip: "192.0.2.1".parse().ok(),
        ..req("dev")
    };
    assert!(decide(&p, &alice(), &copy, &office).is_allow());
    assert_eq!(
        summary(&decide(&p, &alice(), &copy, &home)),
        "deny office-only"
    );
    assert_eq!(
        summary(&decide(&p, &alice(), &copy, &req("dev"))),
        "deny office-only"
    );
}

#[test]
fn decide_all_refuses_the_whole_string() {
    let p = team();
    let ok = stmt(C::Read, "SELECT");
    let bad = drop_of("table", "public.users");
    assert!(decide_all(&p, &alice(), &[ok.clone(), ok.clone()], &req("dev")).is_allow());
    assert_eq!(
        summary(&decide_all(&p, &alice(), &[ok.clone(), bad], &req("dev"))),
        "deny builtin.no-drop"
    );
    // multi_statement is set for strings of several statements.
    let agent = who(IdentityKind::Agent, &[]);
    assert!(decide_all(&p, &agent, std::slice::from_ref(&ok), &req("dev")).is_allow());
    assert_eq!(
        summary(&decide_all(&p, &agent, &[ok.clone(), ok], &req("dev"))),
        "deny no-multi-statement-for-agents"
    );
}

#[test]
fn decision_cache_reuses_only_identical_questions() {
    let p = builtin();
    let mut cache = policy::DecisionCache::new(8);
    let read = stmt(C::Read, "SELECT");
    let other_text = with(read.clone(), |f| f.text = "SELECT 2".into());
    assert!(cache.decide(&p, &alice(), &read, &req("dev")).is_allow());
    assert!(cache
        .decide(&p, &alice(), &other_text, &req("dev"))
        .is_allow());
    assert_eq!(
        cache.stats(),
        (1, 1),
        "the text is not part of the question"
    );
    let unfiltered = with(stmt(C::Write, "DELETE"), |f| f.has_where = Some(false));
    assert_eq!(
        summary(&cache.decide(&p, &alice(), &unfiltered, &req("dev"))),
        "deny builtin.unfiltered-write"
    );
    let agent = who(IdentityKind::Agent, &[]);
    cache.decide(&p, &agent, &read, &req("dev"));
    cache.decide(&p, &alice(), &read, &req("prod"));
    assert_eq!(cache.stats(), (1, 4), "other principal or context: miss");
    // A reload (even of the same text) starts afresh.
    let reloaded = builtin();
    cache.decide(&reloaded, &alice(), &read, &req("dev"));
    assert_eq!(cache.stats(), (1, 5));
    // Stays bounded and correct under churn.
    for hour in 0..24u8 {
        let ctx = RequestContext { hour, ..req("dev") };
        assert!(cache.decide(&reloaded, &alice(), &read, &ctx).is_allow());
    }
}

#[test]
fn evaluation_errors_fail_closed() {
    // Cedar skips a policy whose evaluation fails; a skipped forbid must not let anything
    // through, so any evaluation error is a denial.
    let overflow = r#"@id("broken")
forbid (principal, action, resource)
when { context.hour + 9223372036854775807 > 0 };"#;
    let p = Policies::load(true, &[("broken.cedar".into(), overflow.into())])
        .unwrap_or_else(|e| panic!("{e:?}"));
    let ctx = RequestContext {
        hour: 5,
        ..req("dev")
    };
    match decide(&p, &alice(), &stmt(C::Read, "SELECT"), &ctx) {
        Decision::Deny {
            policy_id, reason, ..
        } => {
            assert_eq!(policy_id, "gatehouse.evaluation-error");
            assert!(reason.contains("broken"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

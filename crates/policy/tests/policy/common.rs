//! Helpers shared by the policy tests.

use model::decision::Decision;
use model::facts::{CommandClass as C, DangerFamily as D, ObjectRef, StatementFacts};
use model::{Identity, IdentityKind};
use policy::{Policies, Principal, RequestContext};

pub fn who(kind: IdentityKind, groups: &[&str]) -> Principal {
    Principal {
        identity: Identity {
            name: "alice".into(),
            kind,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
    }
}

pub fn alice() -> Principal {
    who(IdentityKind::Human, &["devs"])
}

pub fn req(env: &str) -> RequestContext {
    RequestContext {
        target: "main".into(),
        environment: env.into(),
        application_name: "psql".into(),
        hour: 10,
        ..RequestContext::default()
    }
}

pub fn stmt(class: C, command: &str) -> StatementFacts {
    StatementFacts {
        text: command.into(),
        class,
        command: command.into(),
        ..StatementFacts::default()
    }
}

pub fn drop_of(kind: &str, name: &str) -> StatementFacts {
    let mut f = stmt(C::Ddl, &format!("DROP {}", kind.to_uppercase()));
    f.drops.insert(ObjectRef {
        kind: kind.into(),
        name: name.into(),
        explicit_schema: false,
    });
    f
}

pub fn with(mut f: StatementFacts, change: impl FnOnce(&mut StatementFacts)) -> StatementFacts {
    change(&mut f);
    f
}

pub fn danger(class: C, command: &str, d: D) -> StatementFacts {
    with(stmt(class, command), |f| {
        f.dangerous.insert(d);
    })
}

pub fn builtin() -> Policies {
    Policies::load(true, &[]).unwrap_or_else(|e| panic!("builtin pack: {e:?}"))
}

/// The policy id a decision blames (or the permits for Allow).
pub fn summary(d: &Decision) -> String {
    match d {
        Decision::Allow { policies } => format!("allow {}", policies.join(",")),
        Decision::Deny { policy_id, .. } => format!("deny {policy_id}"),
        Decision::NeedsApproval {
            policy_id,
            approver_group,
            ..
        } => format!("approval {policy_id} {approver_group}"),
    }
}

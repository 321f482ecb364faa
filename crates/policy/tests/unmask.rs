//! The unmask decision: masked by default, unmasked only where a permit says so.

use model::{Identity, IdentityKind};
use policy::{may_unmask, Policies, Principal, RequestContext};

fn who(name: &str, groups: &[&str]) -> Principal {
    Principal {
        identity: Identity {
            name: name.into(),
            kind: IdentityKind::Human,
            groups: groups.iter().map(|g| g.to_string()).collect(),
        },
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        target: "app".into(),
        ..Default::default()
    }
}

#[test]
fn masked_unless_permitted() {
    let builtin = Policies::load(true, &[]).unwrap();
    let tags = vec!["pii".to_owned()];
    assert!(!may_unmask(
        &builtin,
        &who("alice", &["analysts"]),
        "public.users.email",
        &tags,
        &ctx()
    ));

    let extra = r#"
@id("support-sees-contact")
permit(principal in Gatehouse::Group::"support", action == Gatehouse::Action::"unmask", resource)
when { resource.tags.contains("contact") };
@id("dba-sees-users")
permit(principal in Gatehouse::Group::"dba", action == Gatehouse::Action::"unmask", resource in Gatehouse::Table::"public.users");
@id("never-ssn")
forbid(principal, action == Gatehouse::Action::"unmask", resource) when { resource.tags.contains("ssn") };
"#;
    let p = Policies::load(true, &[("extra.cedar".into(), extra.into())]).unwrap();
    let contact = vec!["pii".to_owned(), "contact".to_owned()];
    let ssn = vec!["pii".to_owned(), "ssn".to_owned()];
    assert!(may_unmask(
        &p,
        &who("sam", &["support"]),
        "public.users.email",
        &contact,
        &ctx()
    ));
    assert!(!may_unmask(
        &p,
        &who("sam", &["support"]),
        "public.users.ssn",
        &ssn,
        &ctx()
    ));
    assert!(!may_unmask(
        &p,
        &who("alice", &["analysts"]),
        "public.users.email",
        &contact,
        &ctx()
    ));
    assert!(may_unmask(
        &p,
        &who("dora", &["dba"]),
        "public.users.email",
        &tags,
        &ctx()
    ));
    assert!(
        !may_unmask(&p, &who("dora", &["dba"]), "public.users.ssn", &ssn, &ctx()),
        "forbid wins"
    );
    assert!(!may_unmask(
        &p,
        &who("dora", &["dba"]),
        "public.payments.card",
        &tags,
        &ctx()
    ));
}

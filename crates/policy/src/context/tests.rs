use super::*;
use crate::load::{action_uid, schema};
use model::facts::{CommandClass, DangerFamily, ObjectRef};
use model::Identity;

fn rich_facts() -> StatementFacts {
    let mut f = StatementFacts::opaque("x", "because");
    f.class = CommandClass::Write;
    f.command = "DELETE".into();
    f.has_where = Some(true);
    f.dangerous.insert(DangerFamily::Sleep);
    f.functions.insert("pg_sleep".into());
    f.tables_read.insert("public.a".into());
    f.tables_written.insert("public.b".into());
    f.drops.insert(ObjectRef {
        kind: "table".into(),
        name: "public.c".into(),
        explicit_schema: false,
    });
    f.session.settings.insert("work_mem".into());
    f.session.weakening_settings.insert("log_statement".into());
    f.disabled_safeguards.insert(ObjectRef {
        kind: "trigger".into(),
        name: "public.b.audit".into(),
        explicit_schema: false,
    });
    f.catalog_writes.insert("pg_catalog.pg_class".into());
    f.unfiltered_merge = true;
    f
}

/// The context decide() builds (without per-request validation) matches the schema, for
/// every statement action, with and without the optional source address.
#[test]
fn context_matches_the_schema() {
    let schema = schema().unwrap_or_else(|e| panic!("{e}"));
    let p = Principal {
        identity: Identity {
            name: "alice".into(),
            kind: IdentityKind::Agent,
            groups: vec!["devs".into()],
        },
    };
    for ip in [
        None,
        Some("10.1.2.3".parse().unwrap_or_else(|e| panic!("{e}"))),
    ] {
        let ctx = RequestContext {
            target: "prod".into(),
            source_ip: ip,
            hour: 13,
            ..RequestContext::default()
        };
        for class in CommandClass::ALL {
            let (who, _) = principal(&p).unwrap_or_else(|e| panic!("{e}"));
            let context = statement(&rich_facts(), &ctx, IdentityKind::Agent, None)
                .unwrap_or_else(|e| panic!("{e}"));
            let action = action_uid(class).unwrap_or_else(|| panic!("no action"));
            let res = resource(&ctx).unwrap_or_else(|e| panic!("{e}"));
            if let Err(e) = cedar_policy::Request::new(who, action, res, context, Some(&schema)) {
                panic!("{class}: {e}");
            }
        }
        // The approve action, with and without a row estimate.
        let groups = vec!["dba".to_owned()];
        for estimated_rows in [None, Some(12), Some(u64::MAX)] {
            let approval = Approval {
                policy_id: "orders-writes",
                approver_groups: &groups,
                quorum: 2,
                in_transaction: true,
                estimated_rows,
            };
            let (who, _) = principal(&p).unwrap_or_else(|e| panic!("{e}"));
            let context = statement(&rich_facts(), &ctx, IdentityKind::Agent, Some(&approval))
                .unwrap_or_else(|e| panic!("{e}"));
            let action = crate::auto::action().unwrap_or_else(|| panic!("no approve action"));
            let res = resource(&ctx).unwrap_or_else(|e| panic!("{e}"));
            if let Err(e) = cedar_policy::Request::new(who, action, res, context, Some(&schema)) {
                panic!("approve: {e}");
            }
        }
    }
}

#[test]
fn temp_only_means_nothing_but_own_temp_tables() {
    let ctx = RequestContext::default();
    let mut f = StatementFacts::default();
    f.temp_tables_created.insert("scratch".into());
    f.tables_written.insert("public.scratch".into());
    assert!(temp_only(&f, &ctx));
    f.tables_written.insert("public.other".into());
    assert!(!temp_only(&f, &ctx));
}

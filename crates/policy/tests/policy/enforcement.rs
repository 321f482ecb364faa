//! The guardrails that keep the server's own enforcement on: weakening settings, disabled
//! safeguards, catalog writes, unfiltered MERGE. Literal facts → exact decisions, the texts a
//! client sees, which forbid is blamed when several match, and how an operator lifts one.

use crate::common::*;
use model::decision::Decision;
use model::facts::{CommandClass as C, ObjectRef, StatementFacts};
use model::IdentityKind;
use policy::{decide, Policies, RequestContext, BUILTIN_POLICIES};

fn setting(command: &str, name: &str, weakens: bool) -> StatementFacts {
    with(stmt(C::Session, command), |f| {
        f.session.settings.insert(name.into());
        if weakens {
            f.session.weakening_settings.insert(name.into());
        }
    })
}

fn safeguard(command: &str, kind: &str, name: &str) -> StatementFacts {
    with(stmt(C::Ddl, command), |f| {
        f.disabled_safeguards.insert(ObjectRef {
            kind: kind.into(),
            name: name.into(),
            explicit_schema: false,
        });
    })
}

fn catalog_write(command: &str, table: &str) -> StatementFacts {
    with(stmt(C::Write, command), |f| {
        f.has_where = Some(true);
        f.tables_written.insert(table.into());
        f.catalog_writes.insert(table.into());
    })
}

fn merge(every_row: bool) -> StatementFacts {
    with(stmt(C::Write, "MERGE"), |f| {
        f.has_where = Some(true);
        f.where_tautology = every_row;
        f.unfiltered_merge = every_row;
    })
}

/// A pack that also permits DDL (so "deny default" does not hide what the forbids do).
fn with_ddl() -> Policies {
    let ddl = r#"@id("ops-ddl")
permit (principal, action in [Gatehouse::Action::"ddl", Gatehouse::Action::"dcl", Gatehouse::Action::"utility"], resource);"#;
    Policies::load(true, &[("ops.cedar".into(), ddl.into())]).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn new_guardrails_decide_literally() {
    let p = with_ddl();
    let cases: Vec<(&str, StatementFacts, &str)> = vec![
        (
            "SET session_replication_role = replica",
            setting("SET", "session_replication_role", true),
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET row_security = off",
            setting("SET", "row_security", true),
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET log_statement = none",
            setting("SET", "log_statement", true),
            "deny builtin.no-weakening-settings",
        ),
        (
            "BEGIN READ WRITE",
            with(setting("BEGIN", "transaction_read_only", true), |f| {
                f.class = C::Transaction
            }),
            "deny builtin.no-weakening-settings",
        ),
        (
            "set_config in a SELECT",
            with(setting("SELECT", "pgaudit.log", true), |f| {
                f.class = C::Read
            }),
            "deny builtin.no-weakening-settings",
        ),
        (
            "SET statement_timeout = 0",
            setting("SET", "statement_timeout", false),
            "allow builtin.permit-session",
        ),
        (
            "RESET session_replication_role",
            setting("RESET", "session_replication_role", false),
            "allow builtin.permit-session",
        ),
        (
            "DISABLE TRIGGER",
            safeguard("ALTER TABLE", "trigger", "public.t.*"),
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DISABLE RLS",
            safeguard("ALTER TABLE", "row level security", "public.t"),
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DROP POLICY",
            safeguard("DROP POLICY", "policy", "public.t.p"),
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "CREATE RULE",
            safeguard("CREATE RULE", "rule", "public.t.r"),
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "DROP EVENT TRIGGER",
            safeguard("DROP EVENT TRIGGER", "event trigger", "e"),
            "deny builtin.no-disabling-safeguards",
        ),
        (
            "ordinary ALTER TABLE",
            stmt(C::Ddl, "ALTER TABLE"),
            "allow ops-ddl",
        ),
        (
            "UPDATE pg_authid",
            catalog_write("UPDATE", "pg_catalog.pg_authid"),
            "deny builtin.no-catalog-writes",
        ),
        (
            "COPY pg_proc FROM STDIN",
            with(catalog_write("COPY", "pg_catalog.pg_proc"), |f| {
                f.class = C::Copy
            }),
            "deny builtin.no-catalog-writes",
        ),
        (
            "SELECT FOR UPDATE on pg_class",
            with(stmt(C::Read, "SELECT"), |f| {
                f.tables_read.insert("pg_catalog.pg_class".into());
            }),
            "allow builtin.permit-read",
        ),
        (
            "MERGE every row",
            merge(true),
            "deny builtin.unfiltered-merge",
        ),
        ("MERGE by key", merge(false), "allow builtin.permit-write"),
    ];
    let mut failures = Vec::new();
    for (name, facts, want) in cases {
        let got = summary(&decide(&p, &alice(), &facts, &req("dev")));
        if got != want {
            failures.push(format!("{name}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn refusals_name_what_they_refuse() {
    let p = with_ddl();
    let both = with(setting("SET", "log_statement", true), |f| {
        f.session.weakening_settings.insert("row_security".into());
    });
    assert_eq!(
        decide(&p, &alice(), &both, &req("dev")),
        Decision::Deny {
            reason: "changing log_statement, row_security is not allowed: it weakens the server's own enforcement or auditing".into(),
            policy_id: "builtin.no-weakening-settings".into(),
            hint: Some("session_replication_role, row_security, read-only transactions, log_* and pgaudit.* stay as administrators configured them (RESET is fine); other settings such as statement_timeout or search_path may be changed".into()),
            policies: vec!["builtin.no-weakening-settings".into()],
        }
    );
    let reason = |f: &StatementFacts| match decide(&p, &alice(), f, &req("dev")) {
        Decision::Deny { reason, hint, .. } => {
            assert!(hint.is_some_and(|h| !h.is_empty()));
            reason
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        reason(&safeguard("ALTER TABLE", "trigger", "public.accounts.*")),
        "ALTER TABLE would turn off or remove a safeguard the server enforces (trigger public.accounts.*)"
    );
    assert_eq!(
        reason(&catalog_write("UPDATE", "pg_catalog.pg_authid")),
        "writing to system catalogs is not allowed (pg_catalog.pg_authid)"
    );
    assert_eq!(
        reason(&merge(true)),
        "MERGE that updates or deletes every row of its target is not allowed"
    );
}

/// When several forbids match, the more specific new one is blamed, except where an
/// existing class already refused the statement (ALTER ROLE/DATABASE … SET, TRUNCATE).
#[test]
fn blame_when_several_match() {
    let p = with_ddl();
    let alter_role = with(setting("ALTER ROLE", "log_statement", true), |f| {
        f.class = C::Dcl;
        f.privileges = true;
        f.dangerous.insert(model::facts::DangerFamily::Settings);
    });
    let alter_database = with(setting("ALTER DATABASE", "row_security", true), |f| {
        f.class = C::Ddl;
        f.dangerous.insert(model::facts::DangerFamily::Settings);
    });
    let truncate_catalog = with(
        catalog_write("TRUNCATE TABLE", "pg_catalog.pg_class"),
        |f| {
            f.class = C::Ddl;
            f.truncated.insert("pg_catalog.pg_class".into());
        },
    );
    let delete_catalog = with(catalog_write("DELETE", "pg_catalog.pg_class"), |f| {
        f.has_where = Some(false);
    });
    let drop_trigger = with(safeguard("DROP TRIGGER", "trigger", "public.t.a"), |f| {
        f.drops.insert(ObjectRef {
            kind: "trigger".into(),
            name: "t.a".into(),
            explicit_schema: true,
        });
    });
    let cases = [
        (alter_role, "deny builtin.no-privileges"),
        (alter_database, "deny builtin.no-server-settings"),
        (truncate_catalog, "deny builtin.no-truncate"),
        (delete_catalog, "deny builtin.no-catalog-writes"),
        (merge(true), "deny builtin.unfiltered-merge"),
        (drop_trigger, "deny builtin.no-disabling-safeguards"),
    ];
    for (facts, want) in cases {
        assert_eq!(
            summary(&decide(&p, &alice(), &facts, &req("dev"))),
            want,
            "{}",
            facts.command
        );
    }
}

/// A permit never lifts a built-in forbid; an operator lifts one by turning the pack off and
/// loading a copy in which that forbid is narrowed.
#[test]
fn operators_lift_a_class_with_an_edited_copy_of_the_pack() {
    let dba = who(IdentityKind::Human, &["dba"]);
    let disable = safeguard("ALTER TABLE", "trigger", "public.t.*");
    let weaken = setting("SET", "session_replication_role", true);
    let permit = r#"@id("dba-everything")
permit (principal in Gatehouse::Group::"dba", action, resource);"#;
    let on_top = Policies::load(true, &[("dba.cedar".into(), permit.into())])
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        summary(&decide(&on_top, &dba, &disable, &req("dev"))),
        "deny builtin.no-disabling-safeguards"
    );

    let narrowed = BUILTIN_POLICIES.replace(
        "when { !context.disabled_safeguards.isEmpty() };",
        "when { !context.disabled_safeguards.isEmpty() }\nunless { principal in Gatehouse::Group::\"dba\" };",
    );
    assert_ne!(narrowed, BUILTIN_POLICIES, "the forbid's text moved");
    let sources = [
        ("pack.cedar".to_owned(), narrowed),
        ("dba.cedar".to_owned(), permit.to_owned()),
    ];
    let own = Policies::load(false, &sources).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        summary(&decide(&own, &dba, &disable, &req("dev"))),
        "allow dba-everything"
    );
    // Only that class, only for them.
    assert_eq!(
        summary(&decide(&own, &dba, &weaken, &req("dev"))),
        "deny builtin.no-weakening-settings"
    );
    assert_eq!(
        summary(&decide(&own, &alice(), &disable, &req("dev"))),
        "deny builtin.no-disabling-safeguards"
    );
    let ctx = RequestContext {
        hour: 3,
        ..req("prod")
    };
    assert!(decide(&own, &dba, &disable, &ctx).is_allow());
}

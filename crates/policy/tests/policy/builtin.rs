//! The built-in pack and the empty policy set: literal facts → exact decisions.

use crate::common::*;
use model::decision::Decision;
use model::facts::{CommandClass as C, DangerFamily as D, StatementFacts};
use policy::{decide, Policies, RequestContext};

#[test]
fn builtin_pack_decisions() {
    let p = builtin();
    let unfiltered = |taut: bool| {
        with(stmt(C::Write, "DELETE"), |f| {
            f.has_where = Some(taut);
            f.where_tautology = taut;
        })
    };
    let cases: Vec<(&str, StatementFacts, RequestContext, &str)> = vec![
        (
            "select",
            stmt(C::Read, "SELECT"),
            req("dev"),
            "allow builtin.permit-read",
        ),
        (
            "insert",
            stmt(C::Write, "INSERT"),
            req("dev"),
            "allow builtin.permit-write",
        ),
        (
            "filtered delete",
            with(stmt(C::Write, "DELETE"), |f| f.has_where = Some(true)),
            req("dev"),
            "allow builtin.permit-write",
        ),
        (
            "delete without where",
            unfiltered(false),
            req("dev"),
            "deny builtin.unfiltered-write",
        ),
        (
            "delete where 1=1",
            unfiltered(true),
            req("dev"),
            "deny builtin.unfiltered-write",
        ),
        (
            "begin",
            stmt(C::Transaction, "BEGIN"),
            req("dev"),
            "allow builtin.permit-transaction",
        ),
        (
            "set timeout",
            with(stmt(C::Session, "SET"), |f| {
                f.session.settings.insert("statement_timeout".into());
            }),
            req("dev"),
            "allow builtin.permit-session",
        ),
        (
            "copy stdin",
            stmt(C::Copy, "COPY"),
            req("dev"),
            "allow builtin.permit-copy",
        ),
        (
            "create table",
            stmt(C::Ddl, "CREATE TABLE"),
            req("dev"),
            "deny default",
        ),
        (
            "create temp table",
            with(stmt(C::Ddl, "CREATE TABLE"), |f| {
                f.temp_tables_created.insert("t".into());
                f.tables_written.insert("public.t".into());
            }),
            req("dev"),
            "allow builtin.permit-session-temp-tables",
        ),
        (
            "drop table",
            drop_of("table", "public.users"),
            req("dev"),
            "deny builtin.no-drop",
        ),
        (
            "drop own temp table",
            drop_of("table", "public.t"),
            RequestContext {
                drops_only_session_temp: true,
                ..req("dev")
            },
            "allow builtin.permit-session-temp-tables",
        ),
        (
            "drop schema",
            drop_of("schema", "app"),
            req("dev"),
            "deny builtin.no-drop",
        ),
        (
            "drop database",
            drop_of("database", "prod"),
            req("dev"),
            "deny builtin.no-drop",
        ),
        (
            "truncate",
            with(stmt(C::Ddl, "TRUNCATE TABLE"), |f| {
                f.truncated.insert("public.t".into());
            }),
            req("dev"),
            "deny builtin.no-truncate",
        ),
        (
            "alter drop column",
            with(drop_of("column", "public.t.c"), |f| {
                f.command = "ALTER TABLE".into()
            }),
            req("dev"),
            "deny builtin.no-alter-drop",
        ),
        (
            "grant",
            with(stmt(C::Dcl, "GRANT"), |f| f.privileges = true),
            req("dev"),
            "deny builtin.no-privileges",
        ),
        (
            "set role",
            with(stmt(C::Session, "SET"), |f| f.session.role_switch = true),
            req("dev"),
            "deny builtin.no-role-switch",
        ),
        (
            "gatehouse setting",
            with(stmt(C::Session, "SET"), |f| {
                f.session
                    .gatehouse_settings
                    .insert("gatehouse.identity".into());
            }),
            req("dev"),
            "deny builtin.no-gatehouse-settings",
        ),
        (
            "alter system",
            with(stmt(C::Utility, "ALTER SYSTEM"), |f| f.alter_system = true),
            req("dev"),
            "deny builtin.no-server-settings",
        ),
        (
            "pg_reload_conf",
            danger(C::Read, "SELECT", D::Settings),
            req("dev"),
            "deny builtin.no-server-settings",
        ),
        (
            "pg_read_file",
            danger(C::Read, "SELECT", D::ServerFiles),
            req("dev"),
            "deny builtin.no-server-files",
        ),
        (
            "copy program",
            danger(C::Copy, "COPY", D::Programs),
            req("dev"),
            "deny builtin.no-programs",
        ),
        (
            "dblink",
            danger(C::Read, "SELECT", D::CrossDatabase),
            req("dev"),
            "deny builtin.no-cross-database",
        ),
        (
            "terminate backend",
            danger(C::Read, "SELECT", D::Admin),
            req("dev"),
            "deny builtin.no-admin-functions",
        ),
        (
            "pg_sleep is allowed by default",
            danger(C::Read, "SELECT", D::Sleep),
            req("dev"),
            "allow builtin.permit-read",
        ),
        (
            "load",
            with(stmt(C::Utility, "LOAD"), |f| f.load = true),
            req("dev"),
            "deny builtin.no-load",
        ),
        (
            "untrusted language",
            with(stmt(C::Ddl, "CREATE FUNCTION"), |f| {
                f.untrusted_language = true
            }),
            req("dev"),
            "deny builtin.no-untrusted-language",
        ),
        (
            "opaque read",
            with(stmt(C::Read, "SELECT"), |f| f.opaque = Some("x".into())),
            req("dev"),
            "deny builtin.no-opaque",
        ),
        (
            "parse error",
            StatementFacts::opaque("SELEC", "does not parse"),
            req("dev"),
            "deny builtin.no-opaque",
        ),
        (
            "do block",
            stmt(C::CallDo, "DO"),
            req("dev"),
            "deny default",
        ),
        (
            "vacuum",
            stmt(C::Utility, "VACUUM"),
            req("dev"),
            "deny default",
        ),
    ];
    let mut failures = Vec::new();
    for (name, facts, ctx, want) in cases {
        let got = summary(&decide(&p, &alice(), &facts, &ctx));
        if got != want {
            failures.push(format!("{name}: want {want}, got {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn denials_carry_reason_hint_and_policy() {
    let p = builtin();
    let d = decide(
        &p,
        &alice(),
        &stmt(C::Write, "DELETE").clone_with_where(false),
        &req("dev"),
    );
    assert_eq!(
        d,
        Decision::Deny {
            reason: "UPDATE or DELETE without an effective WHERE clause is not allowed".into(),
            policy_id: "builtin.unfiltered-write".into(),
            hint: Some("add a WHERE clause that selects the rows to change (a condition that is always true does not count)".into()),
            policies: vec!["builtin.unfiltered-write".into()],
        }
    );
    let opaque = StatementFacts::opaque(
        "DO $$ … $$",
        "PL/pgSQL runs a dynamically built string (EXECUTE)",
    );
    match decide(&p, &alice(), &opaque, &req("dev")) {
        Decision::Deny { reason, .. } => assert_eq!(
            reason,
            "statement not understood: PL/pgSQL runs a dynamically built string (EXECUTE)"
        ),
        other => panic!("{other:?}"),
    }
    match decide(&p, &alice(), &drop_of("table", "public.users"), &req("dev")) {
        Decision::Deny { reason, .. } => assert_eq!(reason, "DROP TABLE is not allowed"),
        other => panic!("{other:?}"),
    }
}

trait WithWhere {
    fn clone_with_where(&self, w: bool) -> StatementFacts;
}

impl WithWhere for StatementFacts {
    fn clone_with_where(&self, w: bool) -> StatementFacts {
        let mut f = self.clone();
        f.has_where = Some(w);
        f
    }
}

#[test]
fn empty_policy_set_denies_everything() {
    let p = Policies::load(false, &[]).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(p.is_empty());
    for class in C::ALL {
        let d = decide(&p, &alice(), &stmt(class, "X"), &req("dev"));
        assert_eq!(
            d,
            Decision::Deny {
                reason: "no policy permits this statement".into(),
                policy_id: "default".into(),
                hint: Some(
                    "no policy permits this kind of statement for you; ask an administrator".into()
                ),
                policies: vec![],
            },
            "{class}"
        );
    }
}

//! The upstream session carries the identity (`gatehouse.identity`, `application_name`), and
//! a client cannot forge or change it.

use crate::harness::{connect_err, db_error, upstream, Gatehouse};

#[tokio::test]
async fn identity_is_visible_upstream() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("report-bot", "agent", &["analysts"]).await;
    let mut cfg = gh.pg_config("report-bot", &token);
    cfg.application_name("nightly-report");
    let c = crate::harness::connect(cfg).await;

    let row = c
        .query_one(
            "SELECT current_setting('gatehouse.identity'), \
                    current_setting('gatehouse.identity_kind'), \
                    current_setting('application_name'), \
                    pg_backend_pid(), current_database(), current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "report-bot");
    assert_eq!(row.get::<_, &str>(1), "agent");
    let app: &str = row.get(2);
    assert!(app.starts_with("gatehouse:report-bot"), "{app}");
    assert!(
        app.ends_with("nightly-report"),
        "the client's name is kept: {app}"
    );
    let pid: i32 = row.get(3);
    // The upstream database and role are the target's, not the client's.
    assert_eq!(row.get::<_, &str>(4), gh.db.name);
    assert_eq!(row.get::<_, &str>(5), upstream().user);

    // The client's view of ParameterStatus-less settings agrees with the server's own view
    // of the session, seen from a direct connection (what a DBA or pgaudit would see).
    let direct = upstream().connect("postgres").await;
    let r = direct
        .query_one(
            "SELECT application_name, datname FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap();
    let seen: &str = r.get(0);
    assert!(
        seen.starts_with("gatehouse:report-bot"),
        "pg_stat_activity shows {seen:?}"
    );
    assert_eq!(r.get::<_, &str>(1), gh.db.name);

    // Without a client application_name the prefix is the whole name.
    let c2 = gh.connect("report-bot", &token).await;
    let app: String = c2
        .query_one("SHOW application_name", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(app, "gatehouse:report-bot");
}

#[tokio::test]
async fn client_cannot_set_gatehouse_settings_at_startup() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    for options in [
        "-c gatehouse.identity=eve",
        "--gatehouse.identity=eve",
        "-c GATEHOUSE.IDENTITY=eve",
        "-c role=postgres",
    ] {
        let mut cfg = gh.pg_config("alice", &token);
        cfg.options(options);
        let e = connect_err(cfg).await;
        let (code, message) = db_error(&e);
        assert_eq!(code, "42501", "options {options:?}: {message}");
    }
    // Each refusal is on record with its SQLSTATE.
    gh.wait_events("4 refused startups", |evs| {
        evs.iter()
            .filter(|e| e["outcome"]["sqlstate"] == "42501")
            .count()
            >= 4
    })
    .await;
    // A harmless setting passes.
    let mut cfg = gh.pg_config("alice", &token);
    cfg.options("-c statement_timeout=5000");
    let c = crate::harness::connect(cfg).await;
    let v: String = c
        .query_one("SHOW statement_timeout", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(v, "5s");
    let who: String = c
        .query_one("SELECT current_setting('gatehouse.identity')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(who, "alice");
}

/// Issue §4: "A client cannot change `gatehouse.*` settings." Through SQL (SET, set_config,
/// RESET ALL) the setting must stay the authenticated identity, or the statement be refused.
#[tokio::test]
async fn client_cannot_change_gatehouse_settings_with_sql() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    for attempt in [
        "SET gatehouse.identity = 'eve'",
        "SET SESSION gatehouse.identity TO 'eve'",
        "SELECT set_config('gatehouse.identity', 'eve', false)",
        "RESET gatehouse.identity",
        "RESET ALL",
    ] {
        // Refused (an error) or without effect: either way the identity must not change.
        let _ = c.batch_execute(attempt).await;
        let who: Option<String> = c
            .query_one("SELECT current_setting('gatehouse.identity', true)", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            who.as_deref(),
            Some("alice"),
            "after {attempt:?} the upstream identity is {who:?}"
        );
    }
}

/// `model::AuditKind::Refused` is documented for "forbidden startup options", as it is used
/// for unknown targets: an operator filtering on `refused` must find these too.
#[tokio::test]
async fn forbidden_startup_options_are_audited_as_refused() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let mut cfg = gh.pg_config("alice", &token);
    cfg.options("-c gatehouse.identity=eve");
    assert_eq!(db_error(&connect_err(cfg).await).0, "42501");
    let events = gh
        .wait_events("disconnect", |evs| {
            evs.iter().any(|e| e["kind"] == "disconnect")
        })
        .await;
    let refused: Vec<_> = events.iter().filter(|e| e["kind"] == "refused").collect();
    assert_eq!(refused.len(), 1, "{events:#?}");
    assert_eq!(refused[0]["outcome"]["sqlstate"], "42501");
}

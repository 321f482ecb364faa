//! Red team on name resolution: a statement must be decided on the relation the server will
//! use, whatever the search path, spelling or session history. Every test asserts the SECURE
//! behaviour; a failing one is a finding, kept `#[ignore = "finding: ..."]`.
//!
//! Findings (against 566275f), each writing public.orders past a forbid on it, or dropping a
//! permanent table past the built-in no-drop:
//! - the names asked of the server, and the path facts use, are those from before the query
//!   string runs: a `SET search_path` or `set_config('search_path', …)` earlier in the same
//!   string (or the same unsynced batch) moves `orders` back to public.orders after the check;
//! - the search path is probed again only after statements that may change the setting, not
//!   after DDL: a schema renamed (or created) into the path, in this session or another,
//!   leaves a cached one-schema path that is never questioned;
//! - within one string, the session's temporary tables are not followed through DISCARD
//!   TEMP, ALTER TABLE … RENAME or a SET moving pg_temp after public: the later DROP of a
//!   permanent table of the same name is decided as the DROP of the session's own.
//!
//! All fixed: a string (or batch) in which something may change what names mean before a
//! later statement that names relations is refused, and so is any statement that names
//! relations while the search path is unconfirmed; ALTER/DROP DDL and DISCARD make the path be
//! asked again; a raw path naming several schemas has every name asked of the server; within
//! a string, DISCARD, renames, path changes and code make the temporary tables unknown.
//!
//! Held from the start: role switches (SET ROLE, set_config('role'), SET SESSION AUTHORIZATION) are refused,
//! so `$user`/USAGE changes cannot move the path unseen that way; across separate Queries, and
//! in an unsynced batch, a renamed or discarded temporary table is no longer counted as the
//! session's own (the DROP is refused); a temporary table cannot be moved out by SET SCHEMA.

#[allow(unused_imports)]
use super::*;

/// Writes to public.orders are forbidden outright (no approval: a refusal is immediate).
const FROZEN: &str = r#"
@id("orders-frozen")
@reason("public.orders is frozen")
forbid(principal, action, resource)
when { context.tables_written.contains("public.orders") };
"#;

/// The suite's setup, an `app` schema (empty unless `extra` fills it), and `FROZEN`.
async fn start_frozen(extra: &str) -> (Gatehouse, String) {
    let gh = Gatehouse::start_with(Options {
        setup_sql: format!("{SETUP}\nCREATE SCHEMA app;\n{extra}"),
        policies: FROZEN.into(),
        ..Options::default()
    })
    .await;
    let token = gh.issue("alice", "human", &["analysts"]).await;
    (gh, token)
}

/// public.orders as the database has it (checked directly).
async fn public_orders(gh: &Gatehouse) -> String {
    direct(gh)
        .await
        .query_one(
            "SELECT coalesce(string_agg(id || ':' || total, ',' ORDER BY id), '') FROM public.orders",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

const AT_START: &str = "10:500,11:700";

/// Runs each statement through the proxy, asserting none fails.
async fn run_all(c: &mut RawPg, sqls: &[&str]) {
    for sql in sqls {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
}

/// Sends `sql` as one Query; asserts public.orders did not change.
async fn attempt(gh: &Gatehouse, c: &mut RawPg, sql: &str) {
    let r = c.simple(sql).await;
    assert_eq!(
        public_orders(gh).await,
        AT_START,
        "public.orders changed through `{sql}`: {}",
        r.describe()
    );
}

const UPDATE: &str = "UPDATE orders SET total = 0 WHERE id > 0";

#[tokio::test]
async fn the_control_a_plain_update_is_refused() {
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    attempt(&gh, &mut c, UPDATE).await;
    run_all(&mut c, &["SET search_path = app, public"]).await;
    attempt(&gh, &mut c, UPDATE).await;
}

#[tokio::test]
async fn a_set_earlier_in_the_same_string_is_followed() {
    // The path is [app, public] with app.orders existing: the server is asked, says app.
    let (gh, token) =
        start_frozen("CREATE TABLE app.orders (id int, user_id int, total int);").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(&mut c, &["SET search_path = app, public", "SELECT 1"]).await;
    attempt(&gh, &mut c, &format!("SET search_path = public; {UPDATE}")).await;
}

#[tokio::test]
async fn set_config_earlier_in_the_same_string_is_followed() {
    let (gh, token) =
        start_frozen("CREATE TABLE app.orders (id int, user_id int, total int);").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(&mut c, &["SET search_path = app, public", "SELECT 1"]).await;
    attempt(
        &gh,
        &mut c,
        &format!("SELECT pg_catalog.set_config('search_path', 'public', false); {UPDATE}"),
    )
    .await;
}

#[tokio::test]
async fn a_path_widened_earlier_in_the_same_string_is_followed() {
    // One usable schema known (app, without orders); the string adds public before the write.
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(&mut c, &["SET search_path = app", "SELECT 1"]).await;
    attempt(
        &gh,
        &mut c,
        &format!("SET search_path = app, public; {UPDATE}"),
    )
    .await;
    attempt(
        &gh,
        &mut c,
        &format!("SELECT pg_catalog.set_config('search_path', 'app, public', false); {UPDATE}"),
    )
    .await;
}

#[tokio::test]
async fn a_path_widened_earlier_in_the_same_batch_is_followed() {
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(&mut c, &["SET search_path = app", "SELECT 1"]).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse(
                "",
                "SELECT pg_catalog.set_config('search_path', 'app, public', false)",
            ),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::parse("", UPDATE),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_eq!(public_orders(&gh).await, AT_START, "{}", r.describe());
    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "SET search_path = app, public"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::parse("", UPDATE),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert_eq!(public_orders(&gh).await, AT_START, "{}", r.describe());
}

#[tokio::test]
async fn a_schema_renamed_back_after_the_probe_is_seen() {
    // public hidden while the path is probed (only app usable), then renamed back by DDL,
    // which does not make the path be asked again.
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(
        &mut c,
        &[
            "ALTER SCHEMA public RENAME TO hidden",
            "SET search_path = app, public",
            "SELECT 1",
            "ALTER SCHEMA hidden RENAME TO public",
        ],
    )
    .await;
    attempt(&gh, &mut c, UPDATE).await;
}

#[tokio::test]
async fn a_schema_renamed_back_by_another_session_is_seen() {
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    let admin = direct(&gh).await;
    admin
        .batch_execute("ALTER SCHEMA public RENAME TO hidden")
        .await
        .unwrap();
    run_all(&mut c, &["SET search_path = app, public", "SELECT 1"]).await;
    admin
        .batch_execute("ALTER SCHEMA hidden RENAME TO public")
        .await
        .unwrap();
    attempt(&gh, &mut c, UPDATE).await;
}

#[tokio::test]
async fn a_role_switch_cannot_change_the_path_unseen() {
    // As role `r` (no USAGE on public in this database) the path would be only app; a role
    // switched back brings public back without touching search_path. Switching roles is
    // refused, by SET and by set_config alike.
    let role = format!("gh_names_{}", std::process::id());
    let (gh, token) = start_frozen(&format!(
        "DO $$ BEGIN CREATE ROLE {role} NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$;
         REVOKE USAGE ON SCHEMA public FROM PUBLIC;
         GRANT USAGE ON SCHEMA app TO {role};"
    ))
    .await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    for switch in [
        format!("SET ROLE {role}"),
        format!("SELECT pg_catalog.set_config('role', '{role}', false)"),
        format!("SET SESSION AUTHORIZATION {role}"),
    ] {
        let r = c.simple(&switch).await;
        assert!(r.sqlstate().is_some(), "{switch}: {}", r.describe());
    }
    run_all(&mut c, &["SET search_path = app, public", "SELECT 1"]).await;
    let _ = c.simple("RESET ROLE").await;
    attempt(&gh, &mut c, UPDATE).await;
}

/// public.pets exists (checked directly).
async fn pets_exist(gh: &Gatehouse) -> bool {
    direct(gh)
        .await
        .query_one("SELECT to_regclass('public.pets') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0)
}

/// A session with a temporary `pets` confirmed by the probe, then `sql` as one Query:
/// public.pets must survive it (the built-in pack forbids dropping permanent tables).
async fn drop_attempt(sql: &str) {
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(&mut c, &["CREATE TEMP TABLE pets (id int)", "SELECT 1"]).await;
    let r = c.simple(sql).await;
    assert!(
        pets_exist(&gh).await,
        "public.pets dropped by `{sql}`: {}",
        r.describe()
    );
}

#[tokio::test]
async fn a_temporary_table_dropped_by_discard_earlier_in_the_string_is_gone() {
    drop_attempt("DISCARD TEMP; DROP TABLE pets").await;
}

#[tokio::test]
async fn a_temporary_table_renamed_earlier_in_the_string_is_gone() {
    drop_attempt("ALTER TABLE pets RENAME TO gone; DROP TABLE pets").await;
}

#[tokio::test]
async fn pg_temp_moved_after_public_earlier_in_the_string_is_followed() {
    drop_attempt("SET search_path = public, pg_temp; DROP TABLE pets").await;
}

#[tokio::test]
async fn the_control_a_temporary_table_may_be_dropped_a_permanent_one_not() {
    drop_attempt("DROP TABLE pets; DROP TABLE pets").await;
}

#[tokio::test]
async fn a_temporary_table_moved_out_by_set_schema_is_gone() {
    drop_attempt("ALTER TABLE pets SET SCHEMA app; DROP TABLE pets").await;
}

#[tokio::test]
async fn separate_queries_renaming_then_dropping_a_temporary_table_are_followed() {
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(
        &mut c,
        &[
            "CREATE TEMP TABLE pets (id int)",
            "SELECT 1",
            "ALTER TABLE pets RENAME TO gone",
        ],
    )
    .await;
    let r = c.simple("DROP TABLE pets").await;
    assert!(pets_exist(&gh).await, "{}", r.describe());
}

#[tokio::test]
async fn discard_temp_then_drop_in_one_batch_is_followed() {
    let (gh, token) = start_frozen("").await;
    let mut c = RawPg::login(gh.port, "alice", &token).await;
    run_all(&mut c, &["CREATE TEMP TABLE pets (id int)", "SELECT 1"]).await;
    let r = ext(
        &mut c,
        &[
            rawpg::parse("", "DISCARD TEMP"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::parse("", "DROP TABLE pets"),
            rawpg::bind("", "", &[], &[]),
            rawpg::execute("", 0),
            rawpg::sync(),
        ],
        1,
    )
    .await;
    assert!(pets_exist(&gh).await, "{}", r.describe());
}

//! Third red-team round on approvals: the rows a held COMMIT shows, parameters decoded for
//! approvers, prepared statements decided again at Bind, and commit holds that end only on
//! the server's idle report. Every test asserts the SECURE behaviour: a failing test is a
//! finding (kept `#[ignore = "finding: ..."]` until the product is fixed).
//!
//! Findings when written (against 0dee133):
//! - changed_rows masks only the configured `schema.table.column` names: a write to a
//!   partition (or inheritance child) of a table with a sensitive column shows that column in
//!   clear, to the approver and to the requester (who may read their own request); so does a
//!   write through a view that renames the column (and exposes `xmin`);
//! - a prepared statement is decided again only when the search path, temporary objects, the
//!   catalog snapshot or the policies changed: renaming (or moving) the table it resolved to
//!   makes the server re-analyse it onto public.orders at Bind, and it runs unapproved
//!   (autocommit and inside a transaction block, where the catalog loader cannot see the DDL);
//! - (low) a binary bytea parameter is shown as hex, past the value detectors.
//! - (found while fixing the above, and the most serious) analysis resolves an unqualified
//!   name to the first usable schema of the search path, not to the first that has it:
//!   `SET search_path = information_schema, public` made `UPDATE orders …` a write to
//!   `information_schema.orders`, and every policy on `public.orders` was passed by.
//!
//! All fixed: with several usable schemas in the path, unqualified names are resolved by the
//! server in the session for each statement (`guard::names`), and any statement that may
//! change relations makes prepared statements be decided again; the rows a held COMMIT shows
//! are read from tables only (not views) and masked by column name; bytea values are shown
//! as their text (through the detectors) or their size.

#[allow(unused_imports)]
use super::*;
use bytes::BufMut;

/// A commit-mode review of writes to any of `tables`.
fn commit_policy(tables: &[&str]) -> String {
    let set = tables
        .iter()
        .map(|t| format!("\"{t}\""))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        r#"
@id("commit-review")
@reason("these changes are reviewed before they commit")
@approval("dba")
@approval_mode("commit")
forbid(principal, action, resource)
when {{ context.tables_written.containsAny([{set}]) }};
"#
    )
}

/// The suite's setup plus `extra`, `policies`, and `sensitive` columns.
async fn start_sensitive(extra: &str, policies: &str, sensitive: &[&str]) -> Gatehouse {
    let cols = sensitive
        .iter()
        .map(|c| format!("\"{c}\""))
        .collect::<Vec<_>>()
        .join(", ");
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{extra}"),
        policies: policies.into(),
        extra_toml: format!(
            "[approvals]\ntimeout_secs = 30\nin_transaction_timeout_secs = 30\n\n[[sensitive]]\ntarget = \"app\"\ncolumns = [{cols}]\n"
        ),
    })
    .await
}

/// Runs each statement on `c`, asserting none fails.
async fn run_all(c: &mut RawPg, sqls: &[&str]) {
    for sql in sqls {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
}

/// Sends COMMIT (and `behind`, pipelined in the same write); the held request as an approver
/// sees it.
async fn held_commit(
    gh: &Gatehouse,
    c: &mut RawPg,
    token: &str,
    behind: &[&str],
) -> (String, Value) {
    let mut msgs = vec![rawpg::query("COMMIT")];
    msgs.extend(behind.iter().map(|s| rawpg::query(s)));
    c.send(&msgs).await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("COMMIT not held: {}", r.describe()));
    let (status, req) = show(gh, token, &id).await;
    assert_eq!(status, 200, "{req}");
    (id, req)
}

/// Parse with declared parameter types.
fn typed_parse(name: &str, sql: &str, oids: &[u32]) -> BytesMut {
    let mut b = BytesMut::new();
    postgres_protocol::message::frontend::parse(name, sql, oids.iter().copied(), &mut b)
        .unwrap_or_else(|e| panic!("{e}"));
    b
}

/// Bind with every parameter in binary format.
fn binary_bind(portal: &str, statement: &str, params: &[&[u8]]) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_slice(portal.as_bytes());
    body.put_u8(0);
    body.put_slice(statement.as_bytes());
    body.put_u8(0);
    body.put_i16(1);
    body.put_i16(1); // all binary
    body.put_i16(params.len() as i16);
    for p in params {
        body.put_i32(p.len() as i32);
        body.put_slice(p);
    }
    body.put_i16(0);
    raw::message(b'B', &body)
}

// =============================================================================================
// Sensitive values in the rows a held COMMIT shows
// =============================================================================================

const PEOPLE: &str = "
CREATE TABLE people (id int, name text, ssn text) PARTITION BY RANGE (id);
CREATE TABLE people_p1 PARTITION OF people FOR VALUES FROM (0) TO (1000);
INSERT INTO people VALUES (1, 'ann', 'PII-SSN-7Q4ZK');
";

/// `public.people.ssn` is sensitive; the proxy masks it in every partition when read. A
/// transaction that updates a partition directly (without touching the secret) gets the
/// row's ssn shown by the held COMMIT's `changed_rows` (the peek reads `people_p1`, and only
/// the configured names are masked there) — to the approver and to the requester, who may
/// read their own request.
#[tokio::test]
async fn changed_rows_mask_the_sensitive_column_of_a_partition() {
    let gh = start_sensitive(
        PEOPLE,
        &commit_policy(&["public.people", "public.people_p1"]),
        &["public.people.ssn"],
    )
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    // Read directly, the partition's ssn is not given to alice.
    let r = c.simple("SELECT ssn FROM people_p1").await;
    assert!(
        !r.describe().contains("PII-SSN-7Q4ZK"),
        "read in clear: {}",
        r.describe()
    );
    run_all(
        &mut c,
        &["BEGIN", "UPDATE people_p1 SET name = 'anne' WHERE id = 1"],
    )
    .await;
    let (id, req) = held_commit(&gh, &mut c, &who.bob, &[]).await;
    let (_, own) = show(&gh, &who.alice, &id).await;
    let _ = vote(&gh, &who.bob, &id, "deny", "test").await;
    let _ = c.read_ready(1).await;
    let approver = req.to_string().contains("PII-SSN-7Q4ZK");
    let requester = own.to_string().contains("PII-SSN-7Q4ZK");
    assert!(
        !approver && !requester,
        "the ssn in clear (to the approver: {approver}, to the requester: {requester}): {}",
        own["changed_rows"]
    );
}

const STAFF: &str = "
CREATE TABLE staff (id int PRIMARY KEY, name text, salary_note text);
INSERT INTO staff VALUES (1, 'ann', 'PII-SALARY-9X2');
CREATE VIEW staff_v AS SELECT s.id, s.name, s.salary_note AS note, s.xmin AS xmin FROM staff s;
";

/// A write through an updatable view whose columns rename a sensitive one (and happen to
/// expose `xmin`): the peek reads the view, and masks by the view's column names.
#[tokio::test]
async fn changed_rows_of_a_view_mask_a_renamed_sensitive_column() {
    let gh = start_sensitive(
        STAFF,
        &commit_policy(&["public.staff", "public.staff_v"]),
        &["public.staff.salary_note"],
    )
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c.simple("SELECT note FROM staff_v").await;
    assert!(
        !r.describe().contains("PII-SALARY-9X2"),
        "read in clear: {}",
        r.describe()
    );
    run_all(
        &mut c,
        &["BEGIN", "UPDATE staff_v SET name = 'anne' WHERE id = 1"],
    )
    .await;
    let (id, req) = held_commit(&gh, &mut c, &who.bob, &[]).await;
    let _ = vote(&gh, &who.bob, &id, "deny", "test").await;
    let _ = c.read_ready(1).await;
    assert!(
        !req.to_string().contains("PII-SALARY-9X2"),
        "the approver sees the salary: {}",
        req["changed_rows"]
    );
}

// =============================================================================================
// The hidden strings run nothing the session chose, and leave the session as it was
// =============================================================================================

const SHADOWS: &str = "
CREATE SEQUENCE shadow_calls;
CREATE FUNCTION public.txid_current() RETURNS bigint LANGUAGE sql AS $$ SELECT nextval('public.shadow_calls') $$;
CREATE FUNCTION public.shadow_mod(bigint, bigint) RETURNS bigint LANGUAGE sql AS $$ SELECT nextval('public.shadow_calls') $$;
CREATE OPERATOR public.% (leftarg = bigint, rightarg = bigint, function = public.shadow_mod);
CREATE FUNCTION public.shadow_eq(xid, xid) RETURNS boolean LANGUAGE sql AS $$ SELECT nextval('public.shadow_calls') > 0 $$;
CREATE OPERATOR public.= (leftarg = xid, rightarg = xid, function = public.shadow_eq);
";

/// Functions and operators named like the ones of the hidden query, in a schema the session
/// puts before pg_catalog: never called (a sequence is not rolled back with the savepoint),
/// and the rows shown are the transaction's own.
#[tokio::test]
async fn the_peek_calls_nothing_the_search_path_shadows() {
    let gh = start_sensitive(
        SHADOWS,
        &commit_policy(&["public.notes"]),
        &["public.orders.amount"],
    )
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(
        &mut c,
        &[
            "SET search_path = public, pg_catalog",
            "BEGIN",
            "INSERT INTO notes VALUES (5, 'five')",
        ],
    )
    .await;
    let (id, req) = held_commit(&gh, &mut c, &who.bob, &[]).await;
    assert_eq!(
        req["changed_rows"],
        serde_json::json!([{"table": "public.notes", "columns": ["id", "body"], "rows": [["5", "five"]]}]),
        "{req}"
    );
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "fine").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["COMMIT"], "{}", r.describe());
    assert_eq!(
        direct_one(&gh, "SELECT is_called::text FROM shadow_calls").await,
        "false",
        "a shadowing function ran in the hidden query"
    );
    assert_eq!(count(&gh, "notes").await, 1);
}

/// The client's own settings and savepoints survive the peek, and a query it pipelined
/// behind the COMMIT is answered after it, with nothing of Gatehouse's strings in between.
#[tokio::test]
async fn the_peek_leaves_settings_and_pipelined_queries_alone() {
    let gh = start_sensitive(
        "",
        &commit_policy(&["public.notes"]),
        &["public.orders.amount"],
    )
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(
        &mut c,
        &[
            "SET statement_timeout = '7s'",
            "BEGIN",
            "SET LOCAL lock_timeout = '3s'",
            "SET application_name = 'mine'",
            "SAVEPOINT gatehouse_peek_000000000000",
            "INSERT INTO notes VALUES (1, 'one')",
        ],
    )
    .await;
    let (id, _) = held_commit(
        &gh,
        &mut c,
        &who.bob,
        &["SHOW statement_timeout", "SHOW application_name"],
    )
    .await;
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "fine").await;
    assert_eq!(status, 200);
    let r = c.read_ready(3).await;
    assert_eq!(
        command_tags(&r),
        ["COMMIT", "SHOW", "SHOW"],
        "{}",
        r.describe()
    );
    assert_eq!(r.cells(), ["7s", "mine"], "{}", r.describe());
    assert_eq!(count(&gh, "notes").await, 1);
}

/// A peek that fails (a view without `xmin`, which the write went through) leaves the
/// transaction usable: the approver is told why, and approval commits everything.
#[tokio::test]
async fn a_failed_peek_leaves_the_transaction_usable() {
    let gh = start_sensitive(
        "CREATE VIEW notes_v AS SELECT id, body FROM notes;",
        &commit_policy(&["public.notes_v", "public.notes"]),
        &["public.orders.amount"],
    )
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(
        &mut c,
        &["BEGIN", "INSERT INTO notes_v VALUES (3, 'three')"],
    )
    .await;
    let (id, req) = held_commit(&gh, &mut c, &who.bob, &["SELECT count(*) FROM notes"]).await;
    assert!(req["changed_rows"][0]["unavailable"].is_string(), "{req}");
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "fine").await;
    assert_eq!(status, 200);
    let r = c.read_ready(2).await;
    assert_eq!(command_tags(&r), ["COMMIT", "SELECT 1"], "{}", r.describe());
    assert_eq!(r.cells(), ["1"], "{}", r.describe());
    assert_eq!(count(&gh, "notes").await, 1);
}

// =============================================================================================
// Prepared statements decided again at Bind
// =============================================================================================

const SCRATCH: &str = "
CREATE SCHEMA scratch;
CREATE TABLE scratch.orders (id int PRIMARY KEY, amount int);
INSERT INTO scratch.orders VALUES (1, 1), (2, 2), (3, 3);
CREATE SCHEMA elsewhere;
";

/// Parsed while `orders` meant scratch.orders (no approval needed), then scratch.orders is
/// renamed away (search path and policies unchanged): the server re-analyses the statement at
/// Bind and it writes public.orders. It must be held (or refused), not run.
#[tokio::test]
async fn a_prepared_write_retargeted_by_a_rename_is_decided_again() {
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{SCRATCH}"),
        policies: POLICIES.into(),
        extra_toml: "[approvals]\ntimeout_secs = 30\n".into(),
    })
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(&mut c, &["SET search_path = scratch, public"]).await;
    c.send(&[
        rawpg::parse("s", "UPDATE orders SET amount = 0 WHERE id > 0"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    run_all(&mut c, &["ALTER TABLE scratch.orders RENAME TO orders_old"]).await;
    c.send(&[
        rawpg::bind("p", "s", &[], &[]),
        rawpg::execute("p", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        deny_if_pending(&gh, &who.bob, &id).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed unapproved: {}",
        r.describe()
    );
}

/// The same inside a transaction block, where the rename is not even visible to Gatehouse's
/// catalog loader.
#[tokio::test]
async fn a_prepared_write_retargeted_in_a_transaction_is_decided_again() {
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{SCRATCH}"),
        policies: POLICIES.into(),
        extra_toml: "[approvals]\ntimeout_secs = 30\n".into(),
    })
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(&mut c, &["SET search_path = scratch, public", "BEGIN"]).await;
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id > 0"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    run_all(&mut c, &["ALTER TABLE scratch.orders SET SCHEMA elsewhere"]).await;
    c.send(&[
        rawpg::bind("p", "s", &[], &[]),
        rawpg::execute("p", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        deny_if_pending(&gh, &who.bob, &id).await;
    }
    let _ = c.simple("COMMIT").await;
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed unapproved: {}",
        r.describe()
    );
}

// =============================================================================================
// Parameters shown to approvers
// =============================================================================================

/// A value the detectors mask when it comes as text is masked too when it comes binary,
/// whatever type carries it (text, json, bytea).
#[tokio::test]
async fn binary_parameters_go_through_the_detectors() {
    let policy = r#"
@id("notes-writes")
@reason("notes need a DBA")
@approval("dba")
forbid(principal, action, resource)
when { context.tables_written.contains("public.notes") };
"#;
    let gh = start_sensitive("", policy, &["public.orders.amount"]).await;
    let who = cast(&gh).await;
    let email = "victim.person@example.com";
    let hex: String = email.bytes().map(|b| format!("{b:02x}")).collect();
    let json = format!("\"{email}\"");
    for (oid, sql, value) in [
        (25u32, "INSERT INTO notes VALUES (1, $1)", email),
        (114, "INSERT INTO notes VALUES (1, $1::text)", json.as_str()),
        (
            17,
            "INSERT INTO notes VALUES (1, convert_from($1, 'UTF8'))",
            email,
        ),
    ] {
        let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
        c.send(&[
            typed_parse("s", sql, &[oid]),
            binary_bind("p", "s", &[value.as_bytes()]),
            rawpg::execute("p", 0),
            rawpg::sync(),
        ])
        .await;
        let r = c.read_until_tag(b'N').await;
        let id = hold_id(&r).unwrap_or_else(|| panic!("{sql}: not held: {}", r.describe()));
        let (_, req) = show(&gh, &who.bob, &id).await;
        let _ = vote(&gh, &who.bob, &id, "deny", "test").await;
        let _ = c.read_ready(1).await;
        let shown = req.to_string();
        assert!(
            !shown.contains(email) && !shown.contains(&hex),
            "oid {oid}: the e-mail reaches the approver: {}",
            req["params"]
        );
    }
}

/// The same retargeting with a plain query string: the rename happens in the session, then an
/// unqualified write names the protected table. It must be held, not run.
#[tokio::test]
async fn a_query_retargeted_by_a_rename_is_held() {
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{SCRATCH}"),
        policies: POLICIES.into(),
        extra_toml: "[approvals]\ntimeout_secs = 2\n".into(),
    })
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(
        &mut c,
        &[
            "SET search_path = scratch, public",
            "UPDATE orders SET amount = 1 WHERE id > 0",
            "ALTER TABLE scratch.orders RENAME TO orders_old",
        ],
    )
    .await;
    c.send(&[rawpg::query("UPDATE orders SET amount = 0 WHERE id > 0")])
        .await;
    let r = c.read_ready(1).await;
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed unapproved: {}",
        r.describe()
    );
}

/// A schema earlier in the search path that has no such table: the server finds
/// public.orders; so must the decision.
#[tokio::test]
async fn an_earlier_schema_without_the_table_does_not_hide_it() {
    let gh = start(2).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    run_all(&mut c, &["SET search_path = information_schema, public"]).await;
    c.send(&[rawpg::query("UPDATE orders SET amount = 0 WHERE id > 0")])
        .await;
    let r = c.read_ready(1).await;
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed unapproved: {}",
        r.describe()
    );
}

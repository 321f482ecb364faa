//! Prepared statements decided again when the server would re-analyse them (search path,
//! temporary tables, a policy reload).

use super::*;

// =============================================================================================
// A prepared statement decided once, run later under other circumstances
// =============================================================================================

/// A named statement parsed while `orders` means `scratch.orders` (no approval needed), then
/// the search path changed: the server re-analyses it at Bind against `public.orders`.
#[tokio::test]
async fn prepared_statement_reanalysed_under_new_search_path_is_held() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c.simple("SET search_path = scratch").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id = 1"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    let r = c.simple("SET search_path = public").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::bind("", "s", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed without approval: {}",
        r.describe()
    );
}

/// Same with a temporary table shadowing `orders`, dropped after the Parse.
#[tokio::test]
async fn prepared_statement_reanalysed_after_temp_table_dropped_is_held() {
    let gh = start_grants(POLICIES).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    let r = c
        .simple("CREATE TEMP TABLE orders (id int, amount int)")
        .await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id = 1"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    let r = c.simple("DROP TABLE pg_temp.orders").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    c.send(&[
        rawpg::bind("", "s", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "public.orders changed without approval: {}",
        r.describe()
    );
}

/// A statement parsed before a policy reload that makes it need approval: its Execute after
/// the reload must wait for approval.
#[tokio::test]
async fn statement_parsed_before_reload_is_held_after_it() {
    let gh = start_grants("").await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    c.send(&[
        rawpg::parse("s", "DELETE FROM orders WHERE id = 1"),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    // The harness wrote the suite's permits and then our (empty) extra text.
    let path = gh.dir.path().join("test-permits.cedar");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let before = gh.log().matches("policies reloaded").count();
    std::fs::write(&path, format!("{text}\n{POLICIES}")).unwrap_or_else(|e| panic!("{e}"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while gh.log().matches("policies reloaded").count() == before {
        assert!(tokio::time::Instant::now() < deadline, "{}", gh.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A new statement needs approval now.
    c.send(&[rawpg::query("DELETE FROM orders WHERE id = 3")])
        .await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("reload not in force: {}", r.describe()));
    let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
    let _ = c.read_ready(1).await;
    // The old one too.
    c.send(&[
        rawpg::bind("", "s", &[], &[]),
        rawpg::execute("", 0),
        rawpg::sync(),
    ])
    .await;
    let r = c.read_ready(1).await;
    if let Some(id) = hold_id(&r) {
        let _ = vote(&gh, &who.bob, &id, "deny", "no").await;
        let _ = c.read_ready(1).await;
    }
    assert_eq!(
        orders_state(&gh).await,
        ORDERS_AT_START,
        "ran without approval: {}",
        r.describe()
    );
}

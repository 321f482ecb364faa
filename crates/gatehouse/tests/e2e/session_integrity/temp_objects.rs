//! A temporary table that shadows a real one: the session may drop its own temporary table,
//! but once it is gone (dropped, rolled back, discarded, dropped at commit, never created, or
//! another session's) `DROP TABLE orders` means public.orders again and the built-in pack
//! must refuse it. Each case checks directly on the database that public.orders survived.

use super::{
    assert_all_passed, assert_ok, assert_orders_intact, assert_refused, attempt, events_until, raw,
    run_all, start, statements_containing,
};
use std::time::Duration;

#[tokio::test]
async fn temp_table_dropped_twice_cannot_drop_the_real_one() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "CREATE TEMP TABLE",
        &c.simple("CREATE TEMP TABLE orders (id int)").await,
    );
    // Our own temporary table: allowed.
    assert_ok("first DROP", &c.simple("DROP TABLE orders").await);
    let r = c.simple("DROP TABLE orders").await;
    assert_orders_intact(&gh, "second DROP TABLE orders").await;
    assert_refused("second DROP TABLE orders", &r);
    // The audit trail has both: the allowed drop of our own table and the refused one.
    let events = events_until(&gh, Duration::from_secs(5), |evs| {
        statements_containing(evs, "DROP TABLE orders").len() >= 2
    })
    .await;
    let decisions: Vec<&serde_json::Value> = statements_containing(&events, "DROP TABLE orders")
        .iter()
        .map(|e| &e["decision"])
        .collect();
    assert_eq!(decisions, vec!["allow", "deny"], "{events:#?}");
}

#[tokio::test]
async fn temp_table_created_in_a_rolled_back_transaction_does_not_license_a_drop() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    run_all(
        &mut c,
        &["BEGIN", "CREATE TEMP TABLE orders (id int)", "ROLLBACK"],
    )
    .await;
    let r = c.simple("DROP TABLE orders").await;
    assert_orders_intact(&gh, "DROP after a rolled-back CREATE TEMP").await;
    assert_refused("DROP after a rolled-back CREATE TEMP", &r);
}

#[tokio::test]
async fn temp_table_dropped_twice_in_one_string_is_refused() {
    let (gh, token) = start().await;
    let mut c = raw(&gh, &token).await;
    assert_ok(
        "CREATE TEMP TABLE",
        &c.simple("CREATE TEMP TABLE orders (id int)").await,
    );
    let r = c.simple("DROP TABLE orders; DROP TABLE orders").await;
    assert_orders_intact(&gh, "DROP TABLE orders; DROP TABLE orders").await;
    assert_refused("DROP TABLE orders; DROP TABLE orders", &r);
}

#[tokio::test]
async fn temp_table_gone_by_other_means_does_not_license_a_drop() {
    let (gh, token) = start().await;
    let (gh, token) = (&gh, token.as_str());
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "DISCARD TEMP",
            &["CREATE TEMP TABLE orders (id int)", "DISCARD TEMP"],
            "DROP TABLE orders",
        ),
        (
            "ON COMMIT DROP",
            &[
                "BEGIN",
                "CREATE TEMP TABLE orders (id int) ON COMMIT DROP",
                "COMMIT",
            ],
            "DROP TABLE orders",
        ),
        (
            "ROLLBACK TO SAVEPOINT",
            &[
                "BEGIN",
                "SAVEPOINT a",
                "CREATE TEMP TABLE orders (id int)",
                "ROLLBACK TO SAVEPOINT a",
                "COMMIT",
            ],
            "DROP TABLE orders",
        ),
        (
            "error later in the same string",
            &["CREATE TEMP TABLE orders (id int); SELECT 1/0"],
            "DROP TABLE orders",
        ),
        (
            "CREATE TEMP in an aborted transaction",
            &[
                "BEGIN",
                "SELECT 1/0",
                "CREATE TEMP TABLE orders (id int)",
                "ROLLBACK",
            ],
            "DROP TABLE orders",
        ),
        (
            "qualified name next to a temp table",
            &["CREATE TEMP TABLE orders (id int)"],
            "DROP TABLE public.orders",
        ),
    ];
    let mut failures = Vec::new();
    for (what, steps, drop) in cases {
        failures.push(
            attempt(what, async {
                let mut c = raw(gh, token).await;
                run_all(&mut c, steps).await;
                let r = c.simple(drop).await;
                assert_orders_intact(gh, drop).await;
                assert_refused(drop, &r);
            })
            .await,
        );
    }
    // Another session's temporary table is not ours; the session that made it may drop it.
    failures.push(
        attempt("another session's temp table", async {
            let mut a = raw(gh, token).await;
            assert_ok(
                "CREATE TEMP TABLE (session a)",
                &a.simple("CREATE TEMP TABLE orders (id int)").await,
            );
            let mut b = raw(gh, token).await;
            let r = b.simple("DROP TABLE orders").await;
            assert_orders_intact(gh, "DROP TABLE orders (session b)").await;
            assert_refused("DROP TABLE orders (session b)", &r);
            assert_ok(
                "session a drops its own",
                &a.simple("DROP TABLE orders").await,
            );
            assert_orders_intact(gh, "session a dropped its own temp table").await;
        })
        .await,
    );
    assert_all_passed(failures);
}

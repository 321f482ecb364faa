//! Golden predicate columns: the side channels (filter, join, group, order, window, limit)
//! through which a query learns about values it does not return.

#[path = "lineage_common.rs"]
mod common;

use common::check_preds;

#[test]
fn where_join_group_having_order() {
    check_preds(&[
        ("SELECT id FROM users WHERE ssn LIKE '1%'", &["users.ssn"]),
        ("SELECT id FROM users WHERE id = 1", &["users.id"]),
        (
            "SELECT u.id FROM users u JOIN orders o ON o.user_id = u.id AND o.card > '4'",
            &["orders.card", "orders.user_id", "users.id"],
        ),
        (
            "SELECT title FROM users JOIN orgs USING (org_id)",
            &["orgs.org_id", "users.org_id"],
        ),
        (
            "SELECT title FROM users NATURAL JOIN orgs",
            &["orgs.org_id", "users.org_id"],
        ),
        (
            "SELECT count(*) FROM users GROUP BY email",
            &["users.email"],
        ),
        (
            "SELECT count(*) FROM users GROUP BY ROLLUP (org_id, phone)",
            &["users.org_id", "users.phone"],
        ),
        (
            "SELECT org_id FROM users GROUP BY 1 HAVING min(ssn) < '2'",
            &["users.org_id", "users.ssn"],
        ),
        ("SELECT id FROM users ORDER BY phone DESC", &["users.phone"]),
        (
            "SELECT id FROM users LIMIT (SELECT count(*) FROM orders WHERE card = 'x')",
            &["orders.card"],
        ),
        ("SELECT DISTINCT ON (email) id FROM users", &["users.email"]),
        ("SELECT DISTINCT email FROM users", &[]),
    ]);
}

#[test]
fn ordinals_and_output_names_use_the_outputs_sources() {
    check_preds(&[
        (
            "SELECT id, lower(email) FROM users ORDER BY 2",
            &["users.email"],
        ),
        ("SELECT id, ssn AS s FROM users ORDER BY s", &["users.ssn"]),
        (
            "SELECT lower(email) AS k, count(*) FROM users GROUP BY k",
            &["users.email"],
        ),
        // GROUP BY prefers an input column over an output of the same name.
        (
            "SELECT phone AS email FROM users GROUP BY email",
            &["users.email"],
        ),
        // ORDER BY prefers the output name.
        (
            "SELECT phone AS email FROM users ORDER BY email",
            &["users.phone"],
        ),
        (
            "SELECT email FROM users UNION SELECT phone FROM users ORDER BY 1",
            &["users.email", "users.phone"],
        ),
        (
            "SELECT email AS e FROM users UNION SELECT phone FROM users ORDER BY e",
            &["users.email", "users.phone"],
        ),
    ]);
}

#[test]
fn windows_aggregates_and_subqueries() {
    check_preds(&[
        (
            "SELECT rank() OVER (PARTITION BY org_id ORDER BY ssn) FROM users",
            &["users.org_id", "users.ssn"],
        ),
        (
            "SELECT sum(total) OVER w FROM orders WINDOW w AS (ORDER BY card)",
            &["orders.card"],
        ),
        (
            "SELECT count(*) FILTER (WHERE ssn > '5') FROM users",
            &["users.ssn"],
        ),
        (
            "SELECT string_agg(name, ',' ORDER BY phone) FROM users",
            &["users.phone"],
        ),
        (
            "SELECT id FROM users WHERE id IN (SELECT user_id FROM orders WHERE card LIKE '4%')",
            &["orders.card", "orders.user_id", "users.id"],
        ),
        (
            "SELECT id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id)",
            &["orders.user_id", "users.id"],
        ),
        (
            "SELECT (SELECT 1 FROM orders WHERE card = u.ssn) FROM users u",
            &["orders.card", "users.ssn"],
        ),
        (
            "WITH x AS (SELECT email FROM users WHERE ssn = '1') SELECT * FROM x",
            &["users.ssn"],
        ),
        (
            "SELECT id FROM users WHERE users::text LIKE '%@%'",
            common_users_all(),
        ),
    ]);
}

fn common_users_all() -> &'static [&'static str] {
    &[
        "users.email",
        "users.id",
        "users.manager_id",
        "users.name",
        "users.org_id",
        "users.phone",
        "users.ssn",
    ]
}

#[test]
fn writes_have_predicates_too() {
    check_preds(&[
        (
            "UPDATE users SET name = 'x' WHERE ssn = '1'",
            &["users.ssn"],
        ),
        (
            "DELETE FROM orders USING users u WHERE u.id = orders.user_id AND u.email = 'a'",
            &["orders.user_id", "users.email", "users.id"],
        ),
        (
            "MERGE INTO orgs t USING users s ON t.org_id = s.org_id \
             WHEN MATCHED AND s.ssn = '1' THEN DELETE",
            &["orgs.org_id", "users.org_id", "users.ssn"],
        ),
        (
            "EXPLAIN ANALYZE SELECT id FROM users WHERE ssn = '1'",
            &["users.ssn"],
        ),
        (
            "COPY (SELECT id FROM users WHERE email = 'x') TO STDOUT",
            &["users.email"],
        ),
    ]);
}

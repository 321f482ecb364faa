//! Golden lineage of SELECT constructs: aliases, expressions, casts, functions, CASE,
//! COALESCE, aggregates, window functions, subqueries, CTEs and set operations.

#[path = "lineage_common.rs"]
mod common;

use common::{check, K::*};

#[test]
fn plain_columns_and_aliases_are_direct() {
    check(&[
        (
            "SELECT id, email FROM users WHERE id = 1",
            &[
                ("id", &["users.id"], Direct),
                ("email", &["users.email"], Direct),
            ],
        ),
        (
            "SELECT email AS e FROM users",
            &[("e", &["users.email"], Direct)],
        ),
        (
            "SELECT u.email FROM users u",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "SELECT users.email, public.users.phone FROM public.users",
            &[
                ("email", &["users.email"], Direct),
                ("phone", &["users.phone"], Direct),
            ],
        ),
        (
            "SELECT x.a FROM users AS x(a, b)",
            &[("a", &["users.id"], Direct)],
        ),
        (
            "SELECT 1, 'x' AS k",
            &[("?column?", &[], Derived), ("k", &[], Derived)],
        ),
    ]);
}

#[test]
fn casts_keep_a_column_direct() {
    check(&[
        (
            "SELECT email::text FROM users",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "SELECT CAST(ssn AS varchar) FROM users",
            &[("ssn", &["users.ssn"], Direct)],
        ),
        (
            "SELECT email COLLATE \"C\" FROM users",
            &[("email", &["users.email"], Direct)],
        ),
        // A type modifier truncates and bytea shows hex: a value mask cannot follow.
        (
            "SELECT email::varchar(3) FROM users",
            &[("email", &["users.email"], Derived)],
        ),
        (
            "SELECT email::bytea FROM users",
            &[("email", &["users.email"], Derived)],
        ),
        ("SELECT '5'::int", &[("int4", &[], Derived)]),
    ]);
}

#[test]
fn expressions_and_functions_derive() {
    check(&[
        (
            "SELECT lower(email) FROM users",
            &[("lower", &["users.email"], Derived)],
        ),
        (
            "SELECT email || '' FROM users",
            &[("?column?", &["users.email"], Derived)],
        ),
        (
            "SELECT name || ' <' || email || '>' AS who FROM users",
            &[("who", &["users.email", "users.name"], Derived)],
        ),
        (
            "SELECT substring(ssn from 1 for 3), left(phone, 2) FROM users",
            &[
                ("substring", &["users.ssn"], Derived),
                ("left", &["users.phone"], Derived),
            ],
        ),
        (
            "SELECT email = 'a@b.c' FROM users",
            &[("?column?", &["users.email"], Derived)],
        ),
        (
            "SELECT ssn IS NULL FROM users",
            &[("?column?", &["users.ssn"], Derived)],
        ),
        (
            // A CASE is named after its ELSE branch when that has a name of its own.
            "SELECT CASE WHEN ssn LIKE '1%' THEN email ELSE phone END FROM users",
            &[(
                "phone",
                &["users.email", "users.phone", "users.ssn"],
                Derived,
            )],
        ),
        (
            "SELECT CASE WHEN ssn LIKE '1%' THEN email END, \
             CASE WHEN true THEN 1 ELSE 2::int END FROM users",
            &[
                ("case", &["users.email", "users.ssn"], Derived),
                ("case", &[], Derived),
            ],
        ),
        (
            "SELECT COALESCE(email, phone), NULLIF(name, ''), GREATEST(id, manager_id) FROM users",
            &[
                ("coalesce", &["users.email", "users.phone"], Derived),
                ("nullif", &["users.name"], Derived),
                ("greatest", &["users.id", "users.manager_id"], Derived),
            ],
        ),
        (
            "SELECT ARRAY[email, phone], (ARRAY[ssn])[1] FROM users",
            &[
                ("array", &["users.email", "users.phone"], Derived),
                ("array", &["users.ssn"], Derived),
            ],
        ),
        (
            "SELECT json_build_object('e', email), JSON_OBJECT('p': phone) FROM users",
            &[
                ("json_build_object", &["users.email"], Derived),
                ("json_object", &["users.phone"], Derived),
            ],
        ),
        (
            "SELECT email IN ('a', 'b') FROM users",
            &[("?column?", &["users.email"], Derived)],
        ),
        (
            "SELECT id BETWEEN 1 AND 5 FROM users",
            &[("?column?", &["users.id"], Derived)],
        ),
        (
            "SELECT current_user, now()",
            &[("current_user", &[], Derived), ("now", &[], Derived)],
        ),
    ]);
}

#[test]
fn aggregates_and_window_functions_derive() {
    check(&[
        (
            "SELECT max(email) FROM users",
            &[("max", &["users.email"], Derived)],
        ),
        (
            "SELECT string_agg(email, ',') FROM users",
            &[("string_agg", &["users.email"], Derived)],
        ),
        (
            "SELECT count(email) FROM users",
            &[("count", &["users.email"], Derived)],
        ),
        ("SELECT count(*) FROM users", &[("count", &[], Derived)]),
        (
            "SELECT mode() WITHIN GROUP (ORDER BY ssn) FROM users",
            &[("mode", &["users.ssn"], Derived)],
        ),
        (
            "SELECT lag(email) OVER (ORDER BY id), row_number() OVER w FROM users \
             WINDOW w AS (PARTITION BY org_id)",
            &[
                ("lag", &["users.email"], Derived),
                ("row_number", &[], Derived),
            ],
        ),
        (
            "SELECT org_id, count(*) FROM users GROUP BY org_id HAVING max(ssn) > '5'",
            &[
                ("org_id", &["users.org_id"], Direct),
                ("count", &[], Derived),
            ],
        ),
    ]);
}

#[test]
fn scalar_and_other_subqueries_in_the_target_list() {
    check(&[
        (
            "SELECT (SELECT email FROM users u2 WHERE u2.id = o.user_id) FROM orders o",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "SELECT (SELECT max(card) FROM orders WHERE user_id = u.id) AS c FROM users u",
            &[("c", &["orders.card"], Derived)],
        ),
        (
            "SELECT (SELECT u.email) FROM users u",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "SELECT ARRAY(SELECT phone FROM users) AS phones",
            &[("phones", &["users.phone"], Derived)],
        ),
        (
            "SELECT EXISTS (SELECT 1 FROM users WHERE ssn = '1') AS e",
            &[("e", &[], Derived)],
        ),
        (
            "SELECT id IN (SELECT user_id FROM orders) FROM users",
            &[("?column?", &["orders.user_id", "users.id"], Derived)],
        ),
        // Names as the server gives them (checked against PostgreSQL 15): a subquery's
        // name is strong even when it is `?column?`, so a cast does not rename it; a cast
        // over a cast is named after the outer type; a set operation after its first arm.
        (
            "SELECT (SELECT 1)::int, '1'::regclass::oid, \
             (SELECT email FROM users UNION ALL SELECT phone FROM users)",
            &[
                ("?column?", &[], Derived),
                ("oid", &[], Derived),
                ("email", &["users.email", "users.phone"], Direct),
            ],
        ),
    ]);
}

#[test]
fn subqueries_in_from_and_lateral() {
    check(&[
        (
            "SELECT s.e FROM (SELECT email AS e FROM users) s",
            &[("e", &["users.email"], Direct)],
        ),
        (
            "SELECT lower FROM (SELECT lower(email) FROM users) s",
            &[("lower", &["users.email"], Derived)],
        ),
        (
            "SELECT t.x FROM (SELECT email, phone FROM users) AS t(x)",
            &[("x", &["users.email"], Direct)],
        ),
        (
            "SELECT u.id, l.card FROM users u, LATERAL (SELECT card FROM orders o \
             WHERE o.user_id = u.id LIMIT 1) l",
            &[
                ("id", &["users.id"], Direct),
                ("card", &["orders.card"], Direct),
            ],
        ),
        (
            "SELECT l.m FROM users u CROSS JOIN LATERAL (SELECT u.email AS m) l",
            &[("m", &["users.email"], Direct)],
        ),
    ]);
}

#[test]
fn ctes_plain_and_recursive() {
    check(&[
        (
            "WITH e AS (SELECT email FROM users) SELECT email FROM e",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "WITH e(x) AS (SELECT email, phone FROM users) SELECT x, phone FROM e",
            &[
                ("x", &["users.email"], Direct),
                ("phone", &["users.phone"], Direct),
            ],
        ),
        (
            "WITH a AS (SELECT ssn FROM users), b AS (SELECT lower(ssn) AS s FROM a) \
             SELECT s FROM b",
            &[("s", &["users.ssn"], Derived)],
        ),
        // The anchor passes email through; the step carries manager chains: union of both.
        (
            "WITH RECURSIVE chain(id, who) AS (SELECT id, email FROM users WHERE id = 1 \
             UNION ALL SELECT u.id, c.who || '>' || u.phone FROM users u \
             JOIN chain c ON u.manager_id = c.id) SELECT who FROM chain",
            &[("who", &["users.email", "users.phone"], Derived)],
        ),
        (
            "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM users UNION \
             SELECT n + 1, e FROM r WHERE n < 3) SELECT n, e FROM r",
            &[("n", &[], Derived), ("e", &["users.email"], Direct)],
        ),
        // Inside a CTE of the same name, `users` is the table.
        (
            "WITH users AS (SELECT ssn AS email FROM users) SELECT email FROM users",
            &[("email", &["users.ssn"], Direct)],
        ),
    ]);
}

#[test]
fn set_operations_union_sources_position_wise() {
    check(&[
        (
            "SELECT email FROM users UNION SELECT card FROM orders",
            &[("email", &["orders.card", "users.email"], Direct)],
        ),
        (
            "SELECT email, 1 FROM users INTERSECT SELECT phone, id FROM users",
            &[
                ("email", &["users.email", "users.phone"], Direct),
                ("?column?", &["users.id"], Direct),
            ],
        ),
        (
            "SELECT email FROM users EXCEPT SELECT lower(phone) FROM users",
            &[("email", &["users.email", "users.phone"], Derived)],
        ),
        (
            "SELECT email FROM users UNION ALL SELECT NULL ORDER BY 1",
            &[("email", &["users.email"], Direct)],
        ),
    ]);
}

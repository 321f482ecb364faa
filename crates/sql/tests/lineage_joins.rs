//! Golden lineage of joins (ON, USING, NATURAL, aliased joins, USING aliases) and `*` / `t.*`
//! expansion through the catalog.

#[path = "lineage_common.rs"]
mod common;

use common::{check, K::*};

#[test]
fn joins_on_using_natural() {
    check(&[
        (
            "SELECT u.email, o.card FROM users u JOIN orders o ON o.user_id = u.id",
            &[
                ("email", &["users.email"], Direct),
                ("card", &["orders.card"], Direct),
            ],
        ),
        (
            "SELECT org_id, title FROM users JOIN orgs USING (org_id)",
            &[
                ("org_id", &["users.org_id"], Direct),
                ("title", &["orgs.title"], Direct),
            ],
        ),
        (
            "SELECT org_id FROM users RIGHT JOIN orgs USING (org_id)",
            &[("org_id", &["orgs.org_id"], Direct)],
        ),
        (
            "SELECT org_id FROM users FULL JOIN orgs USING (org_id)",
            &[("org_id", &["orgs.org_id", "users.org_id"], Derived)],
        ),
        (
            "SELECT * FROM orgs NATURAL JOIN (SELECT org_id, email FROM users) s",
            &[
                ("org_id", &["orgs.org_id"], Direct),
                ("title", &["orgs.title"], Direct),
                ("email", &["users.email"], Direct),
            ],
        ),
        (
            "SELECT j.title FROM (users JOIN orgs USING (org_id)) AS j",
            &[("title", &["orgs.title"], Direct)],
        ),
        (
            "SELECT x.org_id FROM users JOIN orgs USING (org_id) AS x",
            &[("org_id", &["users.org_id"], Direct)],
        ),
        (
            "SELECT a.email, b.email FROM users a LEFT JOIN users b ON a.manager_id = b.id",
            &[
                ("email", &["users.email"], Direct),
                ("email", &["users.email"], Direct),
            ],
        ),
    ]);
}

#[test]
fn star_expansion_through_the_catalog() {
    check(&[
        (
            "SELECT * FROM orders",
            &[
                ("id", &["orders.id"], Direct),
                ("user_id", &["orders.user_id"], Direct),
                ("total", &["orders.total"], Direct),
                ("card", &["orders.card"], Direct),
            ],
        ),
        (
            "SELECT o.*, u.email FROM orders o JOIN users u ON u.id = o.user_id",
            &[
                ("id", &["orders.id"], Direct),
                ("user_id", &["orders.user_id"], Direct),
                ("total", &["orders.total"], Direct),
                ("card", &["orders.card"], Direct),
                ("email", &["users.email"], Direct),
            ],
        ),
        (
            "SELECT * FROM users JOIN orgs USING (org_id) LIMIT 0",
            &[
                ("org_id", &["users.org_id"], Direct),
                ("id", &["users.id"], Direct),
                ("email", &["users.email"], Direct),
                ("phone", &["users.phone"], Direct),
                ("name", &["users.name"], Direct),
                ("ssn", &["users.ssn"], Direct),
                ("manager_id", &["users.manager_id"], Direct),
                ("title", &["orgs.title"], Direct),
            ],
        ),
        (
            "SELECT (u).* FROM (SELECT id, email FROM users) u",
            &[
                ("id", &["users.id"], Direct),
                ("email", &["users.email"], Direct),
            ],
        ),
        (
            "TABLE orgs",
            &[
                ("org_id", &["orgs.org_id"], Direct),
                ("title", &["orgs.title"], Direct),
            ],
        ),
    ]);
}

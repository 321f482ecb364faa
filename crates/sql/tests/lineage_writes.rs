//! Golden lineage of writes and other statements: RETURNING, `written_from` of
//! INSERT/UPDATE/MERGE/CREATE TABLE AS/DDL, COPY, EXPLAIN, DECLARE/PREPARE, and the
//! statements that must be refused.

#[path = "lineage_common.rs"]
mod common;

use common::{check, check_unsupported, run, written, K::*};

fn w(target: &str, sources: &[&str]) -> (String, Vec<String>) {
    (
        target.to_string(),
        sources.iter().map(|s| s.to_string()).collect(),
    )
}

#[test]
fn returning_of_insert_update_delete() {
    check(&[
        (
            "DELETE FROM users WHERE id = 1 RETURNING email, lower(phone)",
            &[
                ("email", &["users.email"], Direct),
                ("lower", &["users.phone"], Derived),
            ],
        ),
        (
            "UPDATE users SET name = ssn WHERE id = 1 RETURNING name, id",
            &[
                ("name", &["users.name", "users.ssn"], Direct),
                ("id", &["users.id"], Direct),
            ],
        ),
        (
            "UPDATE users SET name = upper(email) RETURNING name",
            &[("name", &["users.email", "users.name"], Derived)],
        ),
        (
            "INSERT INTO notes (id, body) SELECT id, email FROM users RETURNING body",
            &[("body", &["notes.body", "users.email"], Direct)],
        ),
        (
            "INSERT INTO notes VALUES (1, 'x') RETURNING *",
            &[
                ("id", &["notes.id"], Direct),
                ("body", &["notes.body"], Direct),
            ],
        ),
        (
            "UPDATE orders o SET total = 0 FROM users u WHERE u.id = o.user_id RETURNING u.ssn",
            &[("ssn", &["users.ssn"], Direct)],
        ),
        (
            "WITH d AS (DELETE FROM users RETURNING email) SELECT lower(email) FROM d",
            &[("lower", &["users.email"], Derived)],
        ),
    ]);
    assert!(run("INSERT INTO notes VALUES (1, 'x')").outputs.is_empty());
}

#[test]
fn writes_record_where_values_land() {
    assert_eq!(
        written("INSERT INTO notes (body) SELECT email FROM users"),
        [w("notes.body", &["users.email"])]
    );
    assert_eq!(
        written("INSERT INTO notes SELECT id, phone || ssn FROM users"),
        [
            w("notes.id", &["users.id"]),
            w("notes.body", &["users.phone", "users.ssn"])
        ]
    );
    assert_eq!(written("INSERT INTO notes VALUES (1, 'x')"), []);
    assert_eq!(
        written("UPDATE users SET name = email, phone = NULL"),
        [w("users.name", &["users.email"])]
    );
    assert_eq!(
        written("UPDATE users SET (name, phone) = (SELECT title, 'x' FROM orgs LIMIT 1)"),
        [w("users.name", &["orgs.title"])]
    );
    assert_eq!(
        written(
            "INSERT INTO notes (id, body) SELECT id, name FROM users \
             ON CONFLICT (id) DO UPDATE SET body = excluded.body || notes.body"
        ),
        [
            w("notes.id", &["users.id"]),
            w("notes.body", &["users.name"]),
            w("notes.body", &["notes.body", "users.name"])
        ]
    );
    assert_eq!(
        written(
            "MERGE INTO notes n USING users u ON n.id = u.id \
             WHEN MATCHED THEN UPDATE SET body = u.ssn \
             WHEN NOT MATCHED THEN INSERT (id, body) VALUES (u.id, u.email)"
        ),
        [
            w("notes.body", &["users.ssn"]),
            w("notes.id", &["users.id"]),
            w("notes.body", &["users.email"])
        ]
    );
    // Writes into a view land in the base table column.
    assert_eq!(
        written("UPDATE user_emails SET email = (SELECT token FROM app.secrets LIMIT 1)"),
        [w("users.email", &["app.secrets.token"])]
    );
    check_unsupported(&["UPDATE contact_book SET email_up = 'x'"]);
}

#[test]
fn create_table_as_and_select_into_write_their_columns() {
    assert_eq!(
        written("CREATE TABLE copy AS SELECT id, lower(email) AS e FROM users"),
        [w("copy.id", &["users.id"]), w("copy.e", &["users.email"])]
    );
    assert_eq!(
        written("SELECT ssn INTO TEMP t2 FROM users"),
        [w("pg_temp.t2.ssn", &["users.ssn"])]
    );
    assert_eq!(
        written("CREATE MATERIALIZED VIEW app.m (a) AS SELECT phone FROM users"),
        [w("app.m.a", &["users.phone"])]
    );
    assert!(run("CREATE TABLE copy AS SELECT email FROM users")
        .outputs
        .is_empty());
    assert_eq!(
        written("REFRESH MATERIALIZED VIEW mv_emails"),
        [
            w("mv_emails.id", &["users.id"]),
            w("mv_emails.email", &["users.email"])
        ]
    );
}

#[test]
fn ddl_that_rewrites_rows_from_other_columns() {
    assert_eq!(
        written("ALTER TABLE users ALTER COLUMN name TYPE text USING email"),
        [w("users.name", &["users.email"])]
    );
    assert_eq!(
        written("ALTER TABLE users ADD COLUMN e2 text GENERATED ALWAYS AS (lower(email)) STORED"),
        [w("users.e2", &["users.email"])]
    );
    assert_eq!(
        written("CREATE TABLE t (a text, b text GENERATED ALWAYS AS (upper(a)) STORED)"),
        [w("t.b", &["t.a"])]
    );
    assert_eq!(written("ALTER TABLE users ADD COLUMN z int DEFAULT 0"), []);
}

#[test]
fn copy_to_stdout() {
    check(&[
        (
            "COPY (SELECT email, lower(phone) FROM users) TO STDOUT",
            &[
                ("email", &["users.email"], Direct),
                ("lower", &["users.phone"], Derived),
            ],
        ),
        (
            "COPY orgs TO STDOUT WITH (FORMAT csv)",
            &[
                ("org_id", &["orgs.org_id"], Direct),
                ("title", &["orgs.title"], Direct),
            ],
        ),
        (
            "COPY users (ssn) TO STDOUT",
            &[("ssn", &["users.ssn"], Direct)],
        ),
        (
            "COPY (UPDATE users SET name = 'x' RETURNING email) TO STDOUT",
            &[("email", &["users.email"], Direct)],
        ),
        ("COPY users FROM STDIN", &[]),
    ]);
    check_unsupported(&[
        "COPY users TO '/tmp/x'",
        "COPY (SELECT 1) TO PROGRAM 'cat'",
        "COPY users (nope) TO STDOUT",
    ]);
}

#[test]
fn explain_declare_prepare_show_and_other_statements() {
    check(&[
        (
            "EXPLAIN SELECT ssn FROM users",
            &[("QUERY PLAN", &[], Derived)],
        ),
        (
            "DECLARE c CURSOR FOR SELECT email FROM users",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "PREPARE p(int) AS SELECT phone FROM users WHERE id = $1",
            &[("phone", &["users.phone"], Direct)],
        ),
        ("SHOW search_path", &[("search_path", &[], Derived)]),
        ("BEGIN", &[]),
        ("SET search_path = app", &[]),
        ("CREATE INDEX ON users (email)", &[]),
        ("CREATE VIEW v AS SELECT ssn FROM users", &[]),
        ("GRANT SELECT ON users TO bob", &[]),
        ("MOVE 5 IN c", &[]),
    ]);
    // Plain EXPLAIN plans writes without doing them; ANALYZE does them.
    assert_eq!(
        written("EXPLAIN INSERT INTO notes (body) SELECT email FROM users"),
        []
    );
    assert_eq!(
        written("EXPLAIN (ANALYZE) INSERT INTO notes (body) SELECT email FROM users"),
        [w("notes.body", &["users.email"])]
    );
    check_unsupported(&[
        "FETCH 10 FROM c",
        "EXECUTE p(1)",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CALL my_proc(1)",
        "CREATE RULE r AS ON INSERT TO notes DO ALSO INSERT INTO orgs VALUES (1, new.body)",
        "CREATE TABLE x AS EXECUTE p",
    ]);
}

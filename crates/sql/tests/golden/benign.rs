//! Look-alikes that must pass: false positives cost users as much as bypasses.

use crate::harness::{run, Case, E::*};

#[test]
fn benign_look_alikes_are_not_flagged() {
    const T: &[Case] = &[
        ("SELECT 1", &[Class("read"), Command("SELECT"), Benign]),
        ("select 'DROP TABLE users'", &[Benign]),
        (
            "SELECT 'drop table x; delete from y' AS note FROM notes",
            &[Benign, Reads("public.notes")],
        ),
        ("SELECT 1 -- DROP TABLE users", &[Count(1), Benign]),
        ("SELECT /* TRUNCATE users */ 1", &[Benign]),
        ("SELECT $tag$ DROP TABLE users $tag$", &[Benign]),
        (
            "SELECT drop_count, truncate_at FROM stats",
            &[Benign, Column("public.stats", "drop_count")],
        ),
        (
            "UPDATE stats SET drop_count = drop_count + 1 WHERE id = 7",
            &[Benign, Where(Some(true))],
        ),
        (
            "DELETE FROM sessions WHERE expires_at < now()",
            &[Benign, Class("write"), Where(Some(true)), Taut(false)],
        ),
        (
            "DELETE FROM t WHERE id IN (SELECT id FROM u WHERE u.flag)",
            &[Benign, Reads("public.u")],
        ),
        (
            "UPDATE accounts SET balance = balance - 10 WHERE id = $1",
            &[Benign],
        ),
        (
            "DELETE FROM t USING u WHERE t.uid = u.id AND u.gone",
            &[Benign, Reads("public.u")],
        ),
        (
            "SELECT * FROM information_schema.tables",
            &[Benign, Reads("information_schema.tables")],
        ),
        (
            "SELECT relname FROM pg_catalog.pg_class",
            &[Benign, Reads("pg_catalog.pg_class")],
        ),
        (
            "SELECT * FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace",
            &[
                Benign,
                Reads("pg_catalog.pg_class"),
                Reads("pg_catalog.pg_namespace"),
            ],
        ),
        ("SELECT current_setting('gatehouse.identity')", &[Benign]),
        ("SELECT now(), version(), current_user", &[Benign]),
        (
            "INSERT INTO users (name) VALUES ('drop table')",
            &[Benign, Writes("public.users")],
        ),
        (
            "INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET v = excluded.v",
            &[Benign, Writes("public.t"), Reads("public.s")],
        ),
        ("BEGIN", &[Class("transaction"), Benign]),
        ("COMMIT", &[Class("transaction"), Benign]),
        (
            "SET statement_timeout = '5s'",
            &[Class("session"), Benign, Setting("statement_timeout")],
        ),
        ("SHOW search_path", &[Class("session"), Benign]),
        (
            "SELECT set_config('application_name', 'x', false)",
            &[Benign],
        ),
        (
            "SELECT pg_catalog.set_config('search_path', '', false)",
            &[Benign, SearchPath(&[])],
        ),
        ("EXPLAIN SELECT * FROM users", &[Class("read"), Benign]),
        ("VALUES (1), (2)", &[Class("read"), Benign]),
        (
            "TABLE users",
            &[Class("read"), Reads("public.users"), Benign],
        ),
        ("SELECT * FROM users FOR UPDATE", &[Class("read"), Benign]),
        (
            "CREATE TEMP TABLE scratch (id int)",
            &[Class("ddl"), Temp("scratch"), Benign],
        ),
        (
            "DECLARE c CURSOR FOR SELECT * FROM users",
            &[Class("read"), Reads("public.users"), Benign],
        ),
        ("LISTEN jobs", &[Class("session"), Benign]),
        ("", &[Count(0)]),
        ("  ;  ", &[Count(0)]),
        ("-- only a comment", &[Count(0)]),
    ];
    run(T);
}

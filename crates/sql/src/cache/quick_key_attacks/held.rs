//! What the red team tried that held, kept as regression cases.

use super::*;

// ---------------------------------------------------------------------------------------------
// What held: pairs that share a quick key (or were meant to and are refused one) and get the
// fresh answer. Regression cases.
// ---------------------------------------------------------------------------------------------

#[test]
fn texts_the_quick_key_refuses() {
    for sql in [
        // String prefixes and continuation through comments.
        "SELECT U&'d!0061t' UESCAPE '!' FROM t",
        "SELECT u&'x' FROM t",
        "SELECT e'x' FROM t",
        "SELECT n'x' FROM t",
        "SELECT b'1' FROM t",
        "SELECT x'1f' FROM t",
        "SELECT 'a' -- c\n'b' FROM t",
        "SELECT 'a' /* c */ FROM t",
        "SELECT 1-- x\n FROM t",
        "SELECT 1/* x */ FROM t",
        "SELECT 'a\\' FROM t",
        // Numbers that are not short plain integers.
        "SELECT 1. FROM t",
        "SELECT 1.5 FROM t",
        "SELECT 1e5 FROM t",
        "SELECT 1E+5 FROM t",
        "SELECT 0x1F FROM t",
        "SELECT 0b101 FROM t",
        "SELECT 0o17 FROM t",
        "SELECT 1_000 FROM t",
        "SELECT 1234567890 FROM t",
        "SELECT 1abc FROM t",
        "SELECT 1$ FROM t",
        // Dollar quotes, non-ASCII and control bytes outside literals.
        "SELECT $$a$$ FROM t",
        "SELECT $q$a$q$ FROM t",
        "SELECT 1 FROM t\u{0}",
        "SELECT 1 FROM t\u{b}",
        "SELECT 1 FROM t\u{c}",
        "SELECT 1 FROM t\u{a0}",
        "SELECT 1 FROM tä",
        // Adjacent quotes and identifiers.
        "SELECT'a' FROM t",
        "SELECT 1'a' FROM t",
        "SELECT int'1' FROM t",
        // Unterminated.
        "SELECT 'a FROM t",
        "SELECT \"a FROM t",
    ] {
        assert_eq!(quick_key::key(sql), None, "{sql:?}");
    }
}

#[test]
fn lexer_edge_cases_hold() {
    check_all(
        &[
            // String continuation across a newline (one SCONST to the lexer).
            (
                "SELECT * FROM t WHERE a = 'x'\n'y'",
                "SELECT * FROM t WHERE a = 'p'\n'q'",
            ),
            (
                "SELECT * FROM t WHERE a = 'x'\r\n  'y'",
                "SELECT * FROM t WHERE a = ''\r\n  ''",
            ),
            // Typed literals.
            ("SELECT int '1' FROM t", "SELECT int '2' FROM t"),
            (
                "SELECT \"regclass\" 'users' FROM t",
                "SELECT \"regclass\" 'secret' FROM t",
            ),
            (
                "SELECT interval '1' day FROM t",
                "SELECT interval '2' day FROM t",
            ),
            (
                "SELECT interval(3) '1' FROM t",
                "SELECT interval(6) '1' FROM t",
            ),
            ("SELECT 'users'::regclass", "SELECT 'secret'::regclass"),
            ("SELECT 1259::regclass", "SELECT 1260::regclass"),
            ("SELECT 'now'::regproc", "SELECT 'pg_read_file'::regproc"),
            // Operators touching digits.
            ("SELECT * FROM t WHERE a<>1", "SELECT * FROM t WHERE a<>2"),
            ("SELECT * FROM t WHERE a=-1", "SELECT * FROM t WHERE a=-2"),
            ("SELECT * FROM t WHERE a @-1", "SELECT * FROM t WHERE a @-2"),
            ("SELECT 1-1 FROM t", "SELECT 9-9 FROM t"),
            ("SELECT 1::int FROM t", "SELECT 2::int FROM t"),
            ("SELECT a[1:2] FROM t", "SELECT a[3:4] FROM t"),
            // Leading zeros, the largest 9-digit integer.
            ("SELECT 00012 FROM t", "SELECT 999999999 FROM t"),
            // Quoted identifiers next to constants; `""` and `'` inside them.
            (
                "SELECT \"a\"\"b\", 'x' FROM t",
                "SELECT \"a\"\"b\", 'y' FROM t",
            ),
            (
                "SELECT \"a'\" FROM t WHERE b = 'x'",
                "SELECT \"a'\" FROM t WHERE b = 'y'",
            ),
            ("SELECT 'x'\"a\" FROM t", "SELECT 'y'\"a\" FROM t"),
            // Parameters are kept.
            (
                "SELECT * FROM t WHERE a = $1 AND b = 1",
                "SELECT * FROM t WHERE a = $1 AND b = 2",
            ),
            // Marker bytes and non-ASCII inside literals.
            ("SELECT 'é' FROM t", "SELECT '\u{1}S' FROM t"),
            ("SELECT '\u{1}I' FROM t", "SELECT '\u{7f}' FROM t"),
            // A string that looks like a comment, a quote or a dollar quote.
            ("SELECT '--' FROM t", "SELECT '/*' FROM t"),
            ("SELECT '$$' FROM t", "SELECT '\"' FROM t"),
            ("SELECT ';' FROM t", "SELECT ''';' FROM t"),
            // Trailing semicolons and whitespace.
            ("SELECT 1 FROM t;", "SELECT 2 FROM t ;"),
        ],
        false,
    );
}

#[test]
fn constants_whose_value_the_walker_flags_hold() {
    check_all(
        &[
            ("DELETE FROM t WHERE 1 = 2", "DELETE FROM t WHERE 1 = 1"),
            ("DELETE FROM t WHERE 1 = 1", "DELETE FROM t WHERE 1 = 2"),
            ("DELETE FROM t WHERE 'a' = 'b'", "DELETE FROM t WHERE 'a' = 'a'"),
            ("DELETE FROM t WHERE 2 IN (3, 4)", "DELETE FROM t WHERE 2 IN (3, 2)"),
            (
                "DELETE FROM t WHERE 5 BETWEEN 1 AND 2",
                "DELETE FROM t WHERE 1 BETWEEN 1 AND 2",
            ),
            ("DELETE FROM t WHERE NOT 1 = 1", "DELETE FROM t WHERE NOT 1 = 2"),
            (
                "DELETE FROM t WHERE id = 1 OR 1 = 2",
                "DELETE FROM t WHERE id = 1 OR 1 = 1",
            ),
            (
                "DELETE FROM t WHERE '0'::boolean",
                "DELETE FROM t WHERE '1'::boolean",
            ),
            (
                "UPDATE t SET a = 1 WHERE 1 IS NULL",
                "UPDATE t SET a = 1 WHERE NULL IS NULL",
            ),
            (
                "DELETE FROM t WHERE '1'::int = 2",
                "DELETE FROM t WHERE '2'::int = 2",
            ),
            (
                "MERGE INTO t USING s ON 1 = 2 WHEN MATCHED THEN DELETE",
                "MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN DELETE",
            ),
            (
                "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND 1 = 2 THEN DELETE",
                "MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND 1 = 1 THEN DELETE",
            ),
            (
                "SELECT set_config('application_name', 'x', false)",
                "SELECT set_config('gatehouse.identity', 'x', false)",
            ),
            (
                "SELECT pg_catalog.set_config('application_name', 'x', false)",
                "SELECT pg_catalog.set_config('search_path', 'evil', false)",
            ),
            (
                "SELECT set_config('application_name', 'x'::text, false) FROM t",
                "SELECT set_config('role', 'postgres'::text, false) FROM t",
            ),
            (
                "SELECT * FROM t WHERE a = (SELECT set_config('a.b', 'x', true))",
                "SELECT * FROM t WHERE a = (SELECT set_config('session_replication_role', 'replica', true))",
            ),
            (
                "WITH x AS (SELECT set_config('a.b', '1', false)) SELECT * FROM x",
                "WITH x AS (SELECT set_config('gatehouse.role', '1', false)) SELECT * FROM x",
            ),
        ],
        false,
    );
}

#[test]
fn constants_the_facts_ignore_hold() {
    check_all(
        &[
            ("SELECT * FROM t ORDER BY 1", "SELECT * FROM t ORDER BY 2"),
            (
                "SELECT a, b FROM t GROUP BY 1, 2",
                "SELECT a, b FROM t GROUP BY 2, 1",
            ),
            (
                "SELECT DISTINCT ON (1) a, b FROM t",
                "SELECT DISTINCT ON (2) a, b FROM t",
            ),
            (
                "SELECT * FROM t LIMIT 1 OFFSET 2",
                "SELECT * FROM t LIMIT 0 OFFSET 9",
            ),
            (
                "SELECT * FROM t FETCH FIRST 1 ROWS ONLY",
                "SELECT * FROM t FETCH FIRST 2 ROWS ONLY",
            ),
            (
                "SELECT sum(a) OVER (ORDER BY b ROWS 1 PRECEDING) FROM t",
                "SELECT sum(a) OVER (ORDER BY b ROWS 5 PRECEDING) FROM t",
            ),
            (
                "SELECT * FROM t TABLESAMPLE SYSTEM (1) REPEATABLE (2)",
                "SELECT * FROM t TABLESAMPLE SYSTEM (50) REPEATABLE (3)",
            ),
            (
                "SELECT query_to_xml('SELECT 1', true, true, '')",
                "SELECT query_to_xml('SELECT ssn FROM secret', true, true, '')",
            ),
            (
                "SELECT table_to_xml('t', true, true, '')",
                "SELECT table_to_xml('secret', true, true, '')",
            ),
            (
                "SELECT current_setting('application_name')",
                "SELECT current_setting('gatehouse.identity')",
            ),
            (
                "SELECT pg_read_file('/tmp/x')",
                "SELECT pg_read_file('/etc/passwd')",
            ),
            (
                "SELECT lo_export(1, '/tmp/x')",
                "SELECT lo_export(2, '/etc/x')",
            ),
            (
                "SELECT * FROM dblink('dbname=a', 'SELECT 1') AS x(a int)",
                "SELECT * FROM dblink('dbname=b', 'DROP TABLE t') AS x(a int)",
            ),
            ("SELECT nextval('s1')", "SELECT nextval('secret_seq')"),
            (
                "SELECT has_table_privilege('t', 'SELECT')",
                "SELECT has_table_privilege('secret', 'DELETE')",
            ),
            ("SELECT to_regclass('t')", "SELECT to_regclass('pg_authid')"),
            (
                "SELECT * FROM t WHERE a = 'x' FOR UPDATE",
                "SELECT * FROM t WHERE a = 'y' FOR UPDATE",
            ),
            (
                "INSERT INTO t (a) VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 2",
                "INSERT INTO t (a) VALUES (3) ON CONFLICT (id) DO UPDATE SET a = 4",
            ),
            (
                "UPDATE t SET a = 1 WHERE id = 2 RETURNING 3",
                "UPDATE t SET a = 4 WHERE id = 5 RETURNING 6",
            ),
            (
                "UPDATE pg_settings SET setting = 'on' WHERE name = 'application_name'",
                "UPDATE pg_settings SET setting = 'off' WHERE name = 'gatehouse.identity'",
            ),
            (
                "SELECT * FROM t WHERE a::varchar(3) = 'x'",
                "SELECT * FROM t WHERE a::varchar(300) = 'y'",
            ),
            (
                "SELECT '1'::float(1) FROM t",
                "SELECT '1'::float(53) FROM t",
            ),
            (
                "SELECT xmlelement(name a, 'x') FROM t",
                "SELECT xmlelement(name a, 'y') FROM t",
            ),
            (
                "SELECT * FROM json_table('[1]', '$[*]' COLUMNS (a int PATH '$')) j",
                "SELECT * FROM json_table('[2]', '$.x' COLUMNS (a int PATH '$.y')) j",
            ),
            (
                "SELECT * FROM t WHERE a LIKE 'x%' ESCAPE '!'",
                "SELECT * FROM t WHERE a LIKE 'y%' ESCAPE '#'",
            ),
            (
                "SELECT now() AT TIME ZONE 'UTC' FROM t",
                "SELECT now() AT TIME ZONE 'Europe/Paris' FROM t",
            ),
            // A U&"…" identifier without UESCAPE: the default escape, no constant involved.
            (
                "SELECT U&\"\\0073ecret\".id, 1 FROM U&\"\\0073ecret\"",
                "SELECT U&\"\\0073ecret\".id, 2 FROM U&\"\\0073ecret\"",
            ),
        ],
        false,
    );
}

#[test]
fn lineage_pairs_hold() {
    check_all(
        &[
            // Constants the lineage walker flags: never remembered under the quick key.
            (
                "SELECT id, email FROM users ORDER BY 1",
                "SELECT id, email FROM users ORDER BY 2",
            ),
            (
                "SELECT id, email FROM users GROUP BY 1, 2",
                "SELECT id, email FROM users GROUP BY 2, 1",
            ),
            (
                "SELECT DISTINCT ON (1) id, email FROM users",
                "SELECT DISTINCT ON (2) id, email FROM users",
            ),
            (
                "SELECT id FROM users UNION SELECT id FROM t ORDER BY 1",
                "SELECT id FROM users UNION SELECT id FROM t ORDER BY 2",
            ),
            (
                "SELECT query_to_xml('SELECT id FROM users', true, true, '')",
                "SELECT query_to_xml('SELECT email FROM users', true, true, '')",
            ),
            (
                "SELECT table_to_xml('t', true, true, '')",
                "SELECT table_to_xml('users', true, true, '')",
            ),
            (
                "SELECT pg_catalog.query_to_xml('SELECT 1', true, true, '')",
                "SELECT pg_catalog.query_to_xml('SELECT ssn FROM secret', true, true, '')",
            ),
            // Constants the lineage ignores.
            (
                "SELECT (ARRAY[email, name])[1] FROM users",
                "SELECT (ARRAY[email, name])[2] FROM users",
            ),
            (
                "SELECT email FROM users WHERE id = 1 LIMIT 1",
                "SELECT email FROM users WHERE id = 2 LIMIT 5",
            ),
            (
                "SELECT email::varchar(3) FROM users",
                "SELECT email::varchar(300) FROM users",
            ),
            (
                "SELECT email::float(1) FROM users",
                "SELECT email::float(53) FROM users",
            ),
            (
                "SELECT CASE 1 WHEN 1 THEN email ELSE name END FROM users",
                "SELECT CASE 2 WHEN 1 THEN email ELSE name END FROM users",
            ),
            (
                "SELECT CASE WHEN 1 = 1 THEN email ELSE 'x' END FROM users",
                "SELECT CASE WHEN 1 = 2 THEN email ELSE 'x' END FROM users",
            ),
            (
                "SELECT email, 'x' FROM users WHERE 1 = 1",
                "SELECT email, 'y' FROM users WHERE 1 = 2",
            ),
            (
                "SELECT int '1', email FROM users",
                "SELECT int '2', email FROM users",
            ),
            (
                "SELECT * FROM (SELECT email, 1 FROM users) s",
                "SELECT * FROM (SELECT email, 2 FROM users) s",
            ),
            (
                "SELECT \"?column?\" FROM (SELECT 1, email FROM users) s",
                "SELECT \"?column?\" FROM (SELECT 2, email FROM users) s",
            ),
            (
                "SELECT data->>'a' FROM (SELECT row_to_json(u) AS data FROM users u) s",
                "SELECT data->>'email' FROM (SELECT row_to_json(u) AS data FROM users u) s",
            ),
            (
                "SELECT sum(id) OVER (ORDER BY 1) FROM users",
                "SELECT sum(id) OVER (ORDER BY 2) FROM users",
            ),
            (
                "SELECT * FROM v WHERE id = 1",
                "SELECT * FROM v WHERE id = 2",
            ),
            (
                "INSERT INTO t (id, a) SELECT id, 'x' FROM users",
                "INSERT INTO t (id, a) SELECT id, 'y' FROM users",
            ),
            (
                "UPDATE t SET a = 'x' WHERE id = 1 RETURNING a",
                "UPDATE t SET a = 'y' WHERE id = 2 RETURNING a",
            ),
            (
                "SELECT U&\"\\0065mail\" FROM users WHERE id = 1",
                "SELECT U&\"\\0065mail\" FROM users WHERE id = 2",
            ),
        ],
        true,
    );
}

/// The pairs of `cache::tests` plus the ones above, in one cache, in both orders: whatever
/// shares a quick key must answer as fresh (a sweep that would catch an entry served across
/// pairs).
#[test]
fn one_shared_cache_in_both_orders() {
    let texts = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
        "SELECT abalance FROM pgbench_accounts WHERE aid = 98765",
        "SELECT * FROM t WHERE name = 'x' AND id = 1",
        "SELECT * FROM t WHERE name = 'it''s' AND id = 2",
        "UPDATE t SET v = v + 5 WHERE id = 7",
        "UPDATE t SET v = v + 123 WHERE id = 8",
        "DELETE FROM t WHERE id = 1",
        "DELETE FROM t WHERE 1 = 1",
        "DELETE FROM t WHERE 1 = 2",
        "SELECT * FROM t ORDER BY 1",
        "SELECT * FROM t ORDER BY 2",
        "SELECT set_config('gatehouse.identity', 'x', false)",
        "SELECT set_config('application_name', 'x', false)",
    ];
    for order in [texts.to_vec(), texts.iter().rev().copied().collect()] {
        let c = FactsCache::new(256);
        for sql in &order {
            assert_eq!(c.analyze(sql, &ctx()), crate::analyze(sql, &ctx()), "{sql}");
        }
    }
}

// The lexer findings: the quick key no longer pairs these texts.

//! Attacks on the lexer-free quick key (`quick_key`) and on the entries it serves: pairs of
//! texts A and B where analysing A first and then B through one [`FactsCache`] must give B the
//! facts (and lineage) a fresh analysis of B gives. A test that fails here is a text the quick
//! key (or the shape entry it is filed beside) treats as "the same modulo constants" while
//! PostgreSQL, or the analysis, reads it differently.

use super::*;
use crate::lineage::{Catalog, MemoryCatalog};
use crate::StatementFacts;

fn ctx() -> AnalyzeContext {
    AnalyzeContext {
        search_path: vec!["public".into()],
    }
}

/// Whether the two texts share a quick key (so B is answered from A's entry without the lexer).
fn share_quick_key(a: &str, b: &str) -> bool {
    match (quick_key::key(clean(a)), quick_key::key(clean(b))) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// The facts the cache gives `b` after it has seen `a`, and a fresh analysis of `b`.
fn facts_after(a: &str, b: &str) -> (Analysis, Analysis) {
    let mut c = FactsCache::new(64);
    c.analyze(a, &ctx());
    (c.analyze(b, &ctx()), crate::analyze(b, &ctx()))
}

/// `facts_after`, asserting that B got its fresh answer (the pairs were found sharing a quick
/// key; the fixes made some of them no longer share one).
fn assert_facts_hold(a: &str, b: &str) {
    let (cached, fresh) = facts_after(a, b);
    assert_eq!(cached, fresh, "\nA: {a:?}\nB: {b:?}");
}

/// A catalog snapshot with a generation, so lineage is remembered under the cache's keys.
struct Snapshot(MemoryCatalog);

impl Catalog for Snapshot {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        self.0.columns(schema, table)
    }
    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        self.0.view_definition(schema, table)
    }
    fn is_pure_function(&self, name: &str) -> bool {
        self.0.is_pure_function(name)
    }
    fn generation(&self) -> Option<u64> {
        Some(1)
    }
}

fn catalog() -> Snapshot {
    Snapshot(
        MemoryCatalog::new()
            .table("public", "users", &["id", "email", "name", "!0065mail"])
            .table("public", "secret", &["id", "ssn"])
            .table("public", "!0073ecret", &["id", "ssn"])
            .table("public", "t", &["id", "a", "b"])
            .view(
                "public",
                "v",
                &["id", "email"],
                "SELECT id, email FROM public.users",
            ),
    )
}

fn full(c: Option<&mut FactsCache>, sql: &str, cat: &Snapshot) -> Vec<StatementAnalysis> {
    let mut wanted = |_: usize, _: &StatementFacts| Some(vec!["public".to_string()]);
    let request = LineageRequest {
        catalog: cat,
        wanted: &mut wanted,
    };
    match c {
        Some(c) => c.analyze_full(sql, &ctx(), Some(request)),
        None => crate::analyze_full(sql, &ctx(), Some(request)),
    }
}

/// `analyze_full` of `b` (facts and lineage) through a cache that has traced `a`, against a
/// fresh `analyze_full` of `b`.
fn assert_full_holds(a: &str, b: &str) {
    let cat = catalog();
    let mut c = FactsCache::new(64);
    full(Some(&mut c), a, &cat);
    let cached = full(Some(&mut c), b, &cat);
    let fresh = full(None, b, &cat);
    assert_eq!(cached, fresh, "\nA: {a:?}\nB: {b:?}");
}

/// Every pair, collecting the ones whose cached answer is not the fresh one.
fn check_all(pairs: &[(&str, &str)], lineage: bool) {
    let mut bad = Vec::new();
    for (a, b) in pairs {
        let shared = share_quick_key(a, b);
        let ok = if lineage {
            let cat = catalog();
            let mut c = FactsCache::new(64);
            full(Some(&mut c), a, &cat);
            full(Some(&mut c), b, &cat) == full(None, b, &cat)
        } else {
            let (cached, fresh) = facts_after(a, b);
            cached == fresh
        };
        if !ok {
            bad.push(format!(
                "quick key shared: {shared}\n  A: {a:?}\n  B: {b:?}"
            ));
        }
    }
    assert!(bad.is_empty(), "cached ≠ fresh for:\n{}", bad.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Findings: each of these is a pair the cache answers wrongly (see the report).
// ---------------------------------------------------------------------------------------------

/// `U&"…" UESCAPE '…'`: the escape character is a string constant for the quick key (and an
/// SCONST for the shape key), but the lexer/parser consume it to decode the *identifier*:
/// with `'!'` the name below is `secret`, with `'#'` it is `!0073ecret`. No constant survives
/// in the tree, so the walker cannot flag it.
#[test]
fn uescape_decides_the_table_name() {
    let a = r#"SELECT * FROM U&"!0073ecret" UESCAPE '#'"#;
    let b = r#"SELECT * FROM U&"!0073ecret" UESCAPE '!'"#;
    let fresh = crate::analyze(b, &ctx());
    assert!(fresh.statements[0].tables_read.contains("public.secret"));
    assert_facts_hold(a, b);
}

/// The same through UPDATE: a write to `pg_settings` (any setting changed, a catalog write)
/// is answered with the facts of a write to an ordinary table.
#[test]
fn uescape_hides_a_pg_settings_update() {
    let a = r#"UPDATE U&"!0070g_settings" UESCAPE '#' SET setting = 'off' WHERE name = 'x'"#;
    let b = r#"UPDATE U&"!0070g_settings" UESCAPE '!' SET setting = 'off' WHERE name = 'x'"#;
    let fresh = crate::analyze(b, &ctx());
    assert!(!fresh.statements[0].catalog_writes.is_empty());
    assert_facts_hold(a, b);
}

/// Lineage (masking) remembered under the quick key: the column is `email` in B but
/// `!0065mail` in A.
#[test]
fn uescape_decides_the_masked_column() {
    assert_full_holds(
        r#"SELECT U&"!0065mail" UESCAPE '#' FROM users"#,
        r#"SELECT U&"!0065mail" UESCAPE '!' FROM users"#,
    );
}

/// An escape character the parser rejects: B does not parse (opaque), A does.
#[test]
fn uescape_invalid_escape_character() {
    assert_facts_hold(
        r#"SELECT U&"a" UESCAPE '!' FROM t"#,
        r#"SELECT U&"a" UESCAPE '+' FROM t"#,
    );
}

/// The tautology fold marks a condition literal-sensitive only when `value()` computes it.
/// `'a' < 'b'` is not computed (string order needs a collation), so it is "independent of
/// rows" (true) and unflagged; under NOT that becomes false: "filtered". `'a' < 'a'` is
/// computed (false), so `NOT ('a' < 'a')` is a tautology, but the cache serves A's "filtered".
#[test]
fn not_of_an_unfolded_constant_hides_a_tautology() {
    let a = "DELETE FROM t WHERE NOT ('a' < 'b')";
    let b = "DELETE FROM t WHERE NOT ('a' < 'a')";
    assert!(crate::analyze(b, &ctx()).statements[0].where_tautology);
    assert_facts_hold(a, b);
}

/// The same through MERGE's ON condition (`unfiltered_merge`).
#[test]
fn not_of_an_unfolded_constant_hides_an_unfiltered_merge() {
    let a = "MERGE INTO t USING s ON NOT ('a' < 'b') WHEN MATCHED THEN DELETE";
    let b = "MERGE INTO t USING s ON NOT ('a' < 'a') WHEN MATCHED THEN DELETE";
    assert!(crate::analyze(b, &ctx()).statements[0].unfiltered_merge);
    assert_facts_hold(a, b);
}

/// The other direction of the same gap (the cache says "tautology" where a fresh analysis
/// says "filtered": refuses more, but still not the fresh answer).
#[test]
fn unfolded_constant_comparison_is_cached_as_true() {
    assert_facts_hold(
        "DELETE FROM t WHERE 'a' < 'b'",
        "DELETE FROM t WHERE 'a' < 'a'",
    );
    assert_facts_hold(
        "DELETE FROM t WHERE id = 1 OR 'a' < 'b'",
        "DELETE FROM t WHERE id = 1 OR 'a' < 'a'",
    );
    assert_facts_hold(
        "UPDATE t SET a = 1 WHERE ('a' < 'b') IS NULL",
        "UPDATE t SET a = 1 WHERE ('a' < 'a') IS NULL",
    );
    assert_facts_hold(
        "DELETE FROM t WHERE 'maybe'::boolean",
        "DELETE FROM t WHERE 'no'::boolean",
    );
}

/// `float(p)`: the grammar turns the integer into a type (1-24 `float4`, 25-53 `float8`) and
/// rejects other values at parse time. B does not parse; A does.
#[test]
fn float_precision_out_of_range_does_not_parse() {
    assert_facts_hold(
        "SELECT '1'::float(24) FROM t",
        "SELECT '1'::float(99) FROM t",
    );
}

/// `float(p)` also names an unnamed output column (`float4` / `float8`), which lineage reports
/// and outer queries resolve by.
#[test]
fn float_precision_names_the_output_column() {
    assert_full_holds(
        "SELECT (id + 0)::float(24) FROM users",
        "SELECT (id + 0)::float(53) FROM users",
    );
}

/// The same, with a real effect on masking: the precision decides which column NATURAL JOIN
/// merges, so the same output position carries `pay.bonus` in A and `pay.salary` in B. B's
/// lineage is answered from A's (remembered under the quick key: no constant was flagged).
#[test]
fn float_precision_moves_a_natural_join_column() {
    let cat = Snapshot(
        MemoryCatalog::new()
            .table("public", "users", &["id"])
            .table("public", "pay", &["id", "salary", "bonus"]),
    );
    let text = |p: u32| {
        format!(
            "SELECT * FROM (SELECT (id + 0)::float({p}) FROM users) l \
             NATURAL JOIN (SELECT salary + 0 AS float4, bonus + 0 AS float8 FROM pay) r"
        )
    };
    let (a, b) = (text(24), text(53));
    assert!(!share_quick_key(&a, &b));
    let mut c = FactsCache::new(64);
    full(Some(&mut c), &a, &cat);
    let cached = full(Some(&mut c), &b, &cat);
    let fresh = full(None, &b, &cat);
    let second = |r: &[StatementAnalysis]| -> Vec<String> {
        match &r[0].lineage {
            Some(Ok(l)) => l.outputs[1]
                .sources
                .iter()
                .map(|c| c.column.clone())
                .collect(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(second(&fresh), vec!["salary".to_string()]);
    assert_eq!(second(&cached), second(&fresh), "\nA: {a}\nB: {b}");
}

/// The UESCAPE hole is the shape key's too: A carries a comment (no quick key, same shape),
/// so fixing `quick_key` alone leaves B answered from A's shape entry.
#[test]
fn uescape_through_the_shape_key() {
    let a = "SELECT * FROM U&\"!0073ecret\" UESCAPE '#' -- x";
    let b = r#"SELECT * FROM U&"!0073ecret" UESCAPE '!'"#;
    assert!(quick_key::key(a).is_none());
    let (cached, fresh) = facts_after(a, b);
    assert_eq!(cached, fresh, "\nA: {a:?}\nB: {b:?}");
}

/// Not a cache issue (fresh analysis, no cache): the fold's NOT turns a row-independent
/// operand it could not compute ("true for every row") into "false", so a condition that is
/// true for every row is taken for a filter. PostgreSQL: 'b' < 'a' is false, NOT → every row.
#[test]
fn side_finding_fresh_not_of_an_unfolded_constant() {
    let f = crate::analyze("DELETE FROM t WHERE NOT ('b' < 'a')", &ctx());
    assert!(f.statements[0].where_tautology, "{f:?}");
}

/// A NUL inside a string literal: the quick key accepts it, the C parser cannot take the text
/// (B is opaque when analysed fresh).
#[test]
fn nul_inside_a_string_literal() {
    assert_facts_hold("SELECT 'ab' FROM t", "SELECT 'a\0' FROM t");
}

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
        let mut c = FactsCache::new(256);
        for sql in &order {
            assert_eq!(c.analyze(sql, &ctx()), crate::analyze(sql, &ctx()), "{sql}");
        }
    }
}

// The lexer findings: the quick key no longer pairs these texts.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_quick_key_separates_the_lexer_findings() {
    let shared = share_quick_key;
    for (a, b) in [
        (
            r#"SELECT * FROM U&"!0073ecret" UESCAPE '#'"#,
            r#"SELECT * FROM U&"!0073ecret" UESCAPE '!'"#,
        ),
        (
            r#"SELECT U&"a" UESCAPE '!' FROM t"#,
            r#"SELECT U&"a" UESCAPE '+' FROM t"#,
        ),
        (
            "SELECT '1'::float(24) FROM t",
            "SELECT '1'::float(99) FROM t",
        ),
        (
            "SELECT (id + 0)::FLOAT ( 24 ) FROM users",
            "SELECT (id + 0)::FLOAT ( 53 ) FROM users",
        ),
        ("SELECT 'ab' FROM t", "SELECT 'a\0' FROM t"),
    ] {
        assert!(!shared(a, b), "{a:?} / {b:?}");
    }
    // The everyday pairs still share one.
    for (a, b) in [
        (
            "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
            "SELECT abalance FROM pgbench_accounts WHERE aid = 98765",
        ),
        (
            "UPDATE pgbench_accounts SET abalance = abalance + 5 WHERE aid = 7",
            "UPDATE pgbench_accounts SET abalance = abalance + 12 WHERE aid = 8",
        ),
        (
            "SELECT * FROM t WHERE name = 'x' AND floaty = 1",
            "SELECT * FROM t WHERE name = 'y' AND floaty = 2",
        ),
        (
            "SELECT x::float FROM t WHERE id = 1",
            "SELECT x::float FROM t WHERE id = 2",
        ),
    ] {
        assert!(shared(a, b), "{a:?} / {b:?}");
    }
}

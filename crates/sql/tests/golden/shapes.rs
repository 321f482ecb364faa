//! Tables, columns and name resolution.

use crate::harness::{run, Case, E::*};
use sql::{analyze, AnalyzeContext};

#[test]
fn tables_and_columns() {
    const T: &[Case] = &[
        (
            "SELECT abalance FROM pgbench_accounts WHERE aid = 4",
            &[
                Reads("public.pgbench_accounts"),
                Column("public.pgbench_accounts", "abalance"),
                Column("public.pgbench_accounts", "aid"),
            ],
        ),
        (
            "SELECT a.x, b.y FROM t a JOIN app.u b ON a.id = b.id",
            &[
                Column("public.t", "x"),
                Column("app.u", "y"),
                Column("public.t", "id"),
            ],
        ),
        ("SELECT t.* FROM t, u", &[Column("public.t", "*")]),
        ("SELECT * FROM t", &[Column("public.t", "*")]),
        (
            "SELECT x FROM (SELECT y AS x FROM inner_t) s",
            &[Reads("public.inner_t"), Column("public.inner_t", "y")],
        ),
        (
            "SELECT (SELECT max(v) FROM w) FROM t",
            &[
                Reads("public.w"),
                Reads("public.t"),
                Column("public.w", "v"),
            ],
        ),
        (
            "WITH t AS (SELECT * FROM t) SELECT * FROM t",
            &[Reads("public.t")],
        ),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT * FROM r",
            &[NotRead("public.r"), Benign],
        ),
        (
            "WITH c AS (SELECT 1) SELECT * FROM app.c",
            &[Reads("app.c")],
        ),
        (
            "SELECT * FROM a UNION SELECT * FROM b EXCEPT SELECT * FROM c",
            &[Reads("public.a"), Reads("public.b"), Reads("public.c")],
        ),
        (
            "SELECT * INTO newt FROM t",
            &[
                Command("SELECT INTO"),
                Class("ddl"),
                Writes("public.newt"),
                Reads("public.t"),
            ],
        ),
        (
            "CREATE TABLE s.n AS SELECT * FROM t",
            &[Command("CREATE TABLE AS"), Writes("s.n"), Reads("public.t")],
        ),
        ("CREATE TEMP TABLE tt AS SELECT 1", &[Temp("tt")]),
        (
            "INSERT INTO t (a, b) VALUES (1, 2)",
            &[
                Writes("public.t"),
                Column("public.t", "a"),
                NotRead("public.t"),
            ],
        ),
        (
            "INSERT INTO t SELECT * FROM t",
            &[Writes("public.t"), Reads("public.t")],
        ),
        (
            "UPDATE t SET a = u.b FROM u WHERE t.id = u.id",
            &[
                Writes("public.t"),
                Reads("public.u"),
                Column("public.t", "a"),
                Column("public.u", "b"),
            ],
        ),
        (
            "SELECT * FROM t WHERE EXISTS (SELECT 1 FROM lateral_t l WHERE l.id = t.id)",
            &[Reads("public.lateral_t"), Reads("public.t")],
        ),
        (
            "SELECT * FROM generate_series(1, 10) g, LATERAL (SELECT * FROM t WHERE t.n = g) x",
            &[Reads("public.t"), Func("generate_series")],
        ),
        (
            "LOCK TABLE t IN ACCESS EXCLUSIVE MODE",
            &[Class("write"), Writes("public.t")],
        ),
        (
            "SELECT * FROM t TABLESAMPLE SYSTEM (10)",
            &[Reads("public.t")],
        ),
        (
            "SELECT * FROM t WHERE id = ANY(ARRAY(SELECT id FROM u))",
            &[Reads("public.u"), NotOpaque],
        ),
        (
            "SELECT x FROM t GROUP BY ROLLUP (x) HAVING count(*) > (SELECT 1 FROM h)",
            &[Reads("public.h"), NotOpaque],
        ),
        (
            "SELECT sum(x) FILTER (WHERE y > (SELECT 1 FROM f)) OVER (PARTITION BY z) FROM t",
            &[Reads("public.f"), NotOpaque],
        ),
        (
            "SELECT xmlelement(name a, (SELECT 1 FROM xm))",
            &[Reads("public.xm"), NotOpaque],
        ),
        (
            "SELECT json_object('a': (SELECT 1 FROM js))",
            &[Reads("public.js"), NotOpaque],
        ),
        (
            "SELECT json_arrayagg((SELECT v FROM ja) ORDER BY 1)",
            &[Reads("public.ja"), NotOpaque],
        ),
        (
            "SELECT JSON_VALUE(j, '$.a' PASSING (SELECT 1 FROM jv) AS x) FROM t",
            &[Reads("public.jv"), NotOpaque],
        ),
        (
            "SELECT * FROM JSON_TABLE('[]', '$[*]' COLUMNS (a int PATH '$.a')) jt",
            &[NotOpaque],
        ),
    ];
    run(T);
}

#[test]
fn names_resolve_against_the_search_path() {
    let ctx = AnalyzeContext {
        search_path: vec!["$user".into(), "app".into(), "public".into()],
    };
    let a = analyze("SELECT * FROM t JOIN other.u ON true", &ctx);
    let f = &a.statements[0];
    assert!(f.tables_read.contains("app.t"), "{:?}", f.tables_read);
    assert!(f.tables_read.contains("other.u"));
    let d = analyze("DROP TABLE t", &ctx);
    assert!(d.statements[0]
        .drops
        .iter()
        .any(|o| o.name == "app.t" && !o.explicit_schema));
}

#[test]
fn parse_errors_are_one_opaque_fact() {
    let a = analyze("SELEC * FROM t; DROP TABLE x", &AnalyzeContext::default());
    assert_eq!(a.statements.len(), 1);
    assert!(a.statements[0].opaque.is_some());
    assert_eq!(a.statements[0].class, model::facts::CommandClass::Opaque);
    assert!(a.error.is_some());
}

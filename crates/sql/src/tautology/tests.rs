use super::*;

fn where_of(cond: &str) -> Node {
    let sql = format!("DELETE FROM t WHERE {cond}");
    let parsed = pg_query::parse(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let stmt = parsed
        .protobuf
        .stmts
        .into_iter()
        .next()
        .and_then(|s| s.stmt);
    match stmt.and_then(|s| s.node) {
        Some(NodeEnum::DeleteStmt(d)) => *d.where_clause.unwrap_or_default(),
        other => panic!("not a delete: {other:?}"),
    }
}

fn taut(cond: &str) -> bool {
    Fold::default().is_tautology(&where_of(cond))
}

#[test]
fn always_true_conditions() {
    for c in [
        "1=1",
        "true",
        "'a'='a'",
        "id = id",
        "t.id = id",
        "x OR TRUE",
        "NOT false",
        "1 < 2",
        "x IS NOT NULL OR true",
        "'t'::boolean",
        "'yes'::bool",
        "1::bool",
        "2 IN (1, 2)",
        "3 NOT IN (1, 2)",
        "5 BETWEEN 1 AND 10",
        "NOT (id <> id)",
        "(a = 1 OR 1 = 1) AND 2 > 1",
        "x IS NULL OR x IS NOT NULL",
        "id >= id",
        "random() < 2",
        "$1",
        "now() > '2000-01-01'",
        "EXISTS (SELECT 1)",
        "'1' = 1",
        "1 + 1 = 2",
        "'a' || 'b' = 'ab'",
        "NULL IS NULL",
        "(1=1) IS TRUE",
        "id IS NOT DISTINCT FROM id",
        "lower('X') = 'x'",
    ] {
        assert!(taut(c), "should be a tautology: {c}");
    }
}

#[test]
fn real_filters_and_false_conditions() {
    for c in [
        "id = 1",
        "id = 1 OR 1 = 2",
        "id = 1 AND 1 = 1",
        "false",
        "1 = 2",
        "'a' = 'b'",
        "NULL",
        "NOT true",
        "id IN (SELECT id FROM u)",
        "EXISTS (SELECT 1 FROM u WHERE u.tid = t.id)",
        "x IS NULL",
        "name LIKE 'a%'",
        "id <> id",
        "t.id = u.id",
        "NULL = NULL",
        "5 BETWEEN 6 AND 10",
    ] {
        assert!(!taut(c), "should be a real filter (or never true): {c}");
    }
}

#[test]
fn literal_sensitivity_is_tracked() {
    let mut f = Fold::default();
    f.is_tautology(&where_of("aid = 42"));
    assert!(
        !f.literal_sensitive,
        "a column compared with a literal does not fold"
    );
    f.is_tautology(&where_of("1 = 2"));
    assert!(f.literal_sensitive);
}

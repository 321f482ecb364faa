//! The red team's findings: pairs the quick or shape key once treated as the same.

use super::*;

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
    let c = FactsCache::new(64);
    full(Some(&c), &a, &cat);
    let cached = full(Some(&c), &b, &cat);
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

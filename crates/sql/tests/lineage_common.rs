//! Shared by the lineage golden tests (included with `#[path]`): a small catalog and a
//! compact expectation format. Compiled on its own too, where it holds no tests.
#![allow(dead_code)]

use sql::lineage::{lineage, ColumnRef, Lineage, LineageError, MemoryCatalog};

/// public.users / orders / orgs, app.secrets, app.notes + public.notes (same name in two
/// schemas), views (nested, filtered, cyclic), a materialized view, and pg_catalog.pg_stats.
pub fn catalog() -> MemoryCatalog {
    MemoryCatalog::new()
        .table(
            "public",
            "users",
            &[
                "id",
                "email",
                "phone",
                "name",
                "ssn",
                "manager_id",
                "org_id",
            ],
        )
        .table("public", "orders", &["id", "user_id", "total", "card"])
        .table("public", "orgs", &["org_id", "title"])
        .table("public", "notes", &["id", "body"])
        .table("app", "notes", &["id", "secret_note"])
        .table("app", "secrets", &["id", "token"])
        .table(
            "pg_catalog",
            "pg_stats",
            &["schemaname", "tablename", "attname", "most_common_vals"],
        )
        .view(
            "public",
            "user_emails",
            &["id", "email"],
            " SELECT users.id, users.email FROM public.users;",
        )
        .view(
            "public",
            "contact_book",
            &["id", "email_up", "phone"],
            " SELECT e.id, upper(e.email) AS email_up, u.phone FROM public.user_emails e \
             JOIN public.users u ON u.id = e.id WHERE u.ssn IS NOT NULL;",
        )
        .view(
            "public",
            "v_loop",
            &["x"],
            " SELECT v_loop.x FROM public.v_loop;",
        )
        .view(
            "public",
            "mv_emails",
            &["id", "email"],
            " SELECT users.id, lower(users.email) AS email FROM public.users;",
        )
}

pub fn path() -> Vec<String> {
    vec!["$user".into(), "public".into()]
}

pub fn run(sql: &str) -> Lineage {
    match lineage(sql, &path(), &catalog()) {
        Ok(l) => l,
        Err(e) => panic!("{sql}\n  unexpected error: {e}"),
    }
}

pub fn err(sql: &str) -> LineageError {
    match lineage(sql, &path(), &catalog()) {
        Ok(l) => panic!("{sql}\n  expected an error, got {l:?}"),
        Err(e) => e,
    }
}

/// How an output column derives from its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum K {
    /// The value of a source column, unchanged.
    Direct,
    /// Through an expression.
    Derived,
    /// A whole row turned into one value.
    Whole,
}

/// (output name, sources as `table.column` — schema shown unless `public` —, kind).
pub type Col = (&'static str, &'static [&'static str], K);

pub fn short(c: &ColumnRef) -> String {
    if c.schema == "public" {
        format!("{}.{}", c.table, c.column)
    } else {
        c.to_string()
    }
}

fn kind_of(direct: bool, whole: bool) -> K {
    match (direct, whole) {
        (_, true) => K::Whole,
        (true, false) => K::Direct,
        (false, false) => K::Derived,
    }
}

/// Check each statement's outputs; panic once listing every mismatch.
pub fn check(table: &[(&str, &[Col])]) {
    let mut failures = Vec::new();
    for (sql, expect) in table {
        let got = match lineage(sql, &path(), &catalog()) {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{sql}\n  error: {e}"));
                continue;
            }
        };
        let got: Vec<(String, Vec<String>, K)> = got
            .outputs
            .iter()
            .map(|o| {
                let srcs = o.sources.iter().map(short).collect();
                (o.name.clone(), srcs, kind_of(o.direct, o.whole_row))
            })
            .collect();
        let want: Vec<(String, Vec<String>, K)> = expect
            .iter()
            .map(|(n, s, k)| {
                let mut s: Vec<String> = s.iter().map(|x| x.to_string()).collect();
                s.sort();
                (n.to_string(), s, *k)
            })
            .collect();
        if got != want {
            failures.push(format!("{sql}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// Predicate columns, short form, sorted.
pub fn preds(sql: &str) -> Vec<String> {
    run(sql).predicate_columns.iter().map(short).collect()
}

/// Check predicate sets for several statements at once.
pub fn check_preds(table: &[(&str, &[&str])]) {
    let mut failures = Vec::new();
    for (sql, want) in table {
        let got = match lineage(sql, &path(), &catalog()) {
            Ok(l) => l.predicate_columns.iter().map(short).collect::<Vec<_>>(),
            Err(e) => {
                failures.push(format!("{sql}\n  error: {e}"));
                continue;
            }
        };
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        if got != want {
            failures.push(format!("{sql}\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// `written_from` as ("table.col", ["table.col", …]) in statement order.
pub fn written(sql: &str) -> Vec<(String, Vec<String>)> {
    run(sql)
        .written_from
        .iter()
        .map(|(t, s)| (short(t), s.iter().map(short).collect()))
        .collect()
}

/// Expect `Unsupported` for each statement.
pub fn check_unsupported(list: &[&str]) {
    let mut failures = Vec::new();
    for sql in list {
        match lineage(sql, &path(), &catalog()) {
            Err(LineageError::Unsupported(_)) => {}
            other => failures.push(format!("{sql}\n  want Unsupported, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

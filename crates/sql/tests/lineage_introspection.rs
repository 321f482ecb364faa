//! Golden lineage of catalog introspection: the queries psql 15's `\d`-family meta-commands
//! and SQLAlchemy 2's inspector send (captured from real clients, see `introspection/`),
//! and hand-typed system-view queries, must trace to outputs without sources and without
//! functions of unknown body, so a principal who may not unmask can still describe tables.
//! Around them, the edges an attacker would try: user tables named like system relations,
//! search paths that list `pg_catalog` late, statistics relations (refused), and built-ins
//! that read table data by name.

use sql::lineage::{lineage, lineage_each, Catalog, Lineage, LineageError, MemoryCatalog};

const SYSTEM_COLUMNS: &str = include_str!("introspection/pg15_system_columns.txt");
const PSQL: &str = include_str!("introspection/psql15.sql");
const SQLALCHEMY: &str = include_str!("introspection/sqlalchemy2.sql");
const SYSTEM_VIEWS: &str = include_str!("introspection/system_views.sql");
const PG_STAT_STATEMENTS: &str = include_str!("introspection/pg_stat_statements_view.sql");

/// A definition no system relation may be expanded through: it calls a function of unknown
/// body and has one column, so walking it would either report the function or disagree
/// with the catalog's column list.
const HIDDEN_BODY: &str = "SELECT pg_catalog.internal_only() AS x";

/// Every pg_catalog and information_schema relation of PostgreSQL 15 (each with a
/// definition that must never be walked), plus a small user schema.
fn catalog() -> MemoryCatalog {
    let mut cat = MemoryCatalog::new()
        .table("public", "users", &["id", "email", "org_id", "ssn"])
        .table("public", "orgs", &["id", "title"])
        .view(
            "public",
            "user_emails",
            &["id", "email"],
            " SELECT users.id, users.email FROM public.users;",
        );
    for line in SYSTEM_COLUMNS.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let Some((schema, name)) = words.next().and_then(|q| q.split_once('.')) else {
            continue;
        };
        let columns: Vec<&str> = words.collect();
        cat.insert(schema, name, &columns, Some(HIDDEN_BODY.to_owned()));
    }
    cat
}

fn path() -> Vec<String> {
    vec!["postgres".into(), "public".into()]
}

/// The queries of a fixture file: (label, text), split at `-- @query` lines.
fn queries(file: &str) -> Vec<(&str, &str)> {
    file.split("\n-- @query ")
        .skip(1)
        .filter_map(|chunk| chunk.split_once('\n'))
        .collect()
}

/// Why a lineage is not "catalog metadata only", if it is not.
fn not_metadata_only(l: &Lineage) -> Option<String> {
    if !l.unknown_functions.is_empty() {
        return Some(format!("unknown functions {:?}", l.unknown_functions));
    }
    if let Some(o) = l.outputs.iter().find(|o| !o.sources.is_empty()) {
        return Some(format!("output {} has sources {:?}", o.name, o.sources));
    }
    if !l.predicate_columns.is_empty() || !l.written_from.is_empty() {
        return Some("user columns in predicates or writes".into());
    }
    None
}

/// Every query of a fixture traces to metadata only; panics once listing every failure.
fn check_fixture(file: &str, min_queries: usize) {
    let cat = catalog();
    let all = queries(file);
    assert!(
        all.len() >= min_queries,
        "fixture has {} queries",
        all.len()
    );
    let mut failures = Vec::new();
    for (label, sql) in all {
        match lineage_each(sql, &path(), &cat) {
            Ok(ls) => {
                if let Some(why) = ls.iter().find_map(not_metadata_only) {
                    failures.push(format!("{label}: {why}\n{sql}"));
                }
            }
            Err(e) => failures.push(format!("{label}: {e}\n{sql}")),
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n\n"));
}

#[test]
fn psql_describe_queries_read_only_metadata() {
    check_fixture(PSQL, 80);
}

#[test]
fn sqlalchemy_inspector_queries_read_only_metadata() {
    check_fixture(SQLALCHEMY, 45);
}

#[test]
fn hand_typed_system_view_queries_read_only_metadata() {
    check_fixture(SYSTEM_VIEWS, 17);
}

#[test]
fn system_relations_keep_their_catalog_shape() {
    let cat = catalog();
    let l = lineage("SELECT * FROM pg_stat_activity", &path(), &cat).unwrap();
    let names: Vec<&str> = l.outputs.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names.first(), Some(&"datid"));
    assert!(names.contains(&"query"));
    assert_eq!(names.len(), 22);
    let l = lineage(
        "SELECT c.* FROM information_schema.columns c",
        &path(),
        &cat,
    )
    .unwrap();
    assert_eq!(l.outputs.len(), 44);
    assert_eq!(l.outputs[3].name, "column_name");
    // Whole rows of system relations carry no user values either.
    let l = lineage("SELECT row_to_json(c) FROM pg_class c", &path(), &cat).unwrap();
    assert!(l.outputs[0].whole_row && l.outputs[0].sources.is_empty());
}

#[test]
fn a_system_relation_the_catalog_does_not_know_stays_unknown() {
    let cat = MemoryCatalog::new().table("public", "users", &["id", "ssn"]);
    assert!(matches!(
        lineage("SELECT * FROM pg_class", &path(), &cat),
        Err(LineageError::UnknownRelation(r)) if r == "pg_class"
    ));
    assert!(matches!(
        lineage("SELECT * FROM information_schema.columns", &path(), &cat),
        Err(LineageError::UnknownRelation(r)) if r == "information_schema.columns"
    ));
    // Known only by a definition: its shape is not taken from a body that is never walked,
    // and the name still stops at pg_catalog (a later public.pg_roles is not reached).
    let cat = DefinitionOnly(cat.table("public", "pg_roles", &["rolname", "ssn"]));
    assert!(matches!(
        lineage("SELECT * FROM pg_roles", &path(), &cat),
        Err(LineageError::UnknownRelation(r)) if r == "pg_catalog.pg_roles"
    ));
}

/// A catalog that knows `pg_catalog.pg_roles` by its definition alone (no column list).
struct DefinitionOnly(MemoryCatalog);

impl Catalog for DefinitionOnly {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        self.0.columns(schema, table)
    }

    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        match (schema, table) {
            ("pg_catalog", "pg_roles") => Some("SELECT 1 AS rolname".into()),
            _ => self.0.view_definition(schema, table),
        }
    }
}

/// A user table named like a catalog table, with a sensitive column.
fn shadowing_catalog() -> MemoryCatalog {
    catalog()
        .table("public", "pg_class", &["oid", "relname", "ssn"])
        .table("public", "columns", &["table_name", "secret"])
        .table("public", "pg_stats", &["attname", "card"])
}

fn sources(sql: &str, search_path: &[&str]) -> Vec<String> {
    let path: Vec<String> = search_path.iter().map(|s| s.to_string()).collect();
    let l = match lineage(sql, &path, &shadowing_catalog()) {
        Ok(l) => l,
        Err(e) => panic!("{sql}: {e}"),
    };
    l.outputs
        .iter()
        .flat_map(|o| o.sources.iter().map(ToString::to_string))
        .collect()
}

#[test]
fn pg_catalog_listed_late_lets_a_user_table_shadow_a_catalog_table() {
    // pg_catalog named explicitly after public: public.pg_class wins, as on the server.
    assert_eq!(
        sources("SELECT * FROM pg_class", &["public", "pg_catalog"]),
        [
            "public.pg_class.oid",
            "public.pg_class.relname",
            "public.pg_class.ssn"
        ]
    );
    assert_eq!(
        sources("SELECT ssn FROM pg_class", &["public", "pg_catalog"]),
        ["public.pg_class.ssn"]
    );
    // pg_catalog implicit (searched first) or listed first: the catalog table.
    assert!(sources("SELECT * FROM pg_class", &["public"]).is_empty());
    assert!(sources("SELECT * FROM pg_class", &["pg_catalog", "public"]).is_empty());
    // Qualified names mean what they say.
    assert!(sources(
        "SELECT * FROM pg_catalog.pg_class",
        &["public", "pg_catalog"]
    )
    .is_empty());
    assert_eq!(
        sources("SELECT ssn FROM public.pg_class", &["public"]),
        ["public.pg_class.ssn"]
    );
}

#[test]
fn information_schema_is_not_searched_implicitly() {
    assert_eq!(
        sources("SELECT secret FROM columns", &["public"]),
        ["public.columns.secret"]
    );
    assert!(sources(
        "SELECT column_name FROM information_schema.columns",
        &["public"]
    )
    .is_empty());
    // Listed first, it is searched first (after the implicit pg_catalog, which has no
    // relation of that name).
    assert!(sources("SELECT * FROM columns", &["information_schema", "public"]).is_empty());
    assert_eq!(
        sources("SELECT * FROM columns", &["public", "information_schema"]),
        ["public.columns.table_name", "public.columns.secret"]
    );
}

#[test]
fn statistics_relations_are_refused_as_samples() {
    let cat = shadowing_catalog().view(
        "public",
        "col_stats",
        &["attname", "vals"],
        " SELECT pg_stats.attname, pg_stats.most_common_vals::text FROM pg_catalog.pg_stats;",
    );
    let refused = [
        (
            "SELECT most_common_vals FROM pg_stats",
            "pg_catalog.pg_stats",
        ),
        (
            "SELECT 1 FROM pg_catalog.pg_statistic WHERE stavalues1 IS NOT NULL",
            "pg_catalog.pg_statistic",
        ),
        ("SELECT * FROM pg_stats_ext", "pg_catalog.pg_stats_ext"),
        (
            "SELECT count(*) FROM pg_stats_ext_exprs",
            "pg_catalog.pg_stats_ext_exprs",
        ),
        (
            "SELECT * FROM pg_statistic_ext_data",
            "pg_catalog.pg_statistic_ext_data",
        ),
        (
            "SELECT data FROM pg_largeobject",
            "pg_catalog.pg_largeobject",
        ),
        // Reached through a user view, a subquery, or a relation named by text.
        ("SELECT vals FROM col_stats", "pg_catalog.pg_stats"),
        (
            "SELECT relname FROM pg_class WHERE EXISTS (SELECT 1 FROM pg_stats)",
            "pg_catalog.pg_stats",
        ),
        (
            "SELECT table_to_xml('pg_catalog.pg_stats', true, false, '')",
            "pg_catalog.pg_stats",
        ),
    ];
    let mut failures = Vec::new();
    for (sql, want) in refused {
        match lineage(sql, &path(), &cat) {
            Err(LineageError::SystemSamples(r)) if r == want => {}
            other => failures.push(format!("{sql}: want SystemSamples({want}), got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
    // A user table that shadows pg_stats is a user table (its columns are its sources).
    assert_eq!(
        sources("SELECT card FROM pg_stats", &["public", "pg_catalog"]),
        ["public.pg_stats.card"]
    );
    // Other statistics views hold counters, not values.
    assert!(sources("SELECT * FROM pg_stat_user_tables", &["public"]).is_empty());
}

/// The pg_stat_statements extension view in `public`: a user view over an extension function.
fn with_pg_stat_statements(cat: MemoryCatalog) -> MemoryCatalog {
    let list = PG_STAT_STATEMENTS
        .rsplit_once("pg_stat_statements(")
        .and_then(|(_, tail)| tail.split_once(')'))
        .map_or("", |(cols, _)| cols);
    let columns: Vec<&str> = list.split(", ").collect();
    assert_eq!(columns.len(), 43);
    let mut cat = cat;
    cat.insert(
        "public",
        "pg_stat_statements",
        &columns,
        Some(PG_STAT_STATEMENTS.to_owned()),
    );
    cat
}

#[test]
fn pg_stat_statements_traces_once_its_function_is_vouched_for() {
    let sql = "SELECT query, calls FROM pg_stat_statements ORDER BY total_exec_time DESC";
    // Not vouched for: an extension function of unknown body.
    let l = lineage(sql, &path(), &with_pg_stat_statements(catalog())).unwrap();
    assert!(l.unknown_functions.contains("public.pg_stat_statements"));
    // Vouched for (the proxy can vouch for the functions the extension owns): the query
    // text of other sessions has no sources, like pg_stat_activity.query.
    let cat = with_pg_stat_statements(catalog().pure_function("public.pg_stat_statements"));
    let l = lineage(sql, &path(), &cat).unwrap();
    assert_eq!(not_metadata_only(&l), None);
    assert_eq!(l.outputs.len(), 2);
    let l = lineage("SELECT * FROM pg_stat_statements", &path(), &cat).unwrap();
    assert_eq!(l.outputs.len(), 43);
    assert_eq!(not_metadata_only(&l), None);
}

#[test]
fn builtins_that_read_table_data_stay_unknown_or_traced() {
    let cat = catalog();
    let l = lineage(
        "SELECT query_to_xml('select * from users', true, true, '')",
        &path(),
        &cat,
    )
    .unwrap();
    assert!(l.outputs[0].whole_row);
    assert!(l.outputs[0].sources.iter().any(|c| c.column == "ssn"));
    let l = lineage(
        "SELECT table_to_xml('users', true, true, '')",
        &path(),
        &cat,
    )
    .unwrap();
    assert!(l.outputs[0].whole_row && l.outputs[0].sources.len() == 4);
    for sql in [
        "SELECT query_to_xml(current_setting('x'), true, true, '')",
        "SELECT cursor_to_xml('c', 10, true, true, '')",
        "SELECT schema_to_xml('public', true, true, '')",
        "SELECT database_to_xml(true, true, '')",
    ] {
        assert!(
            matches!(
                lineage(sql, &path(), &cat),
                Err(LineageError::Unsupported(_))
            ),
            "{sql}"
        );
    }
    let unknown = [
        (
            "SELECT * FROM dblink('dbname=x', 'select ssn from users') AS t(s text)",
            "dblink",
        ),
        ("SELECT dblink_exec('select 1')", "dblink_exec"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        (
            "SELECT pg_catalog.pg_read_binary_file('base/1/2')",
            "pg_catalog.pg_read_binary_file",
        ),
        ("SELECT pg_ls_dir('.')", "pg_ls_dir"),
        ("SELECT name FROM pg_ls_waldir()", "pg_ls_waldir"),
        ("SELECT pg_stat_file('base')", "pg_stat_file"),
        ("SELECT lo_get(16400)", "lo_get"),
        ("SELECT loread(lo_open(16400, 262144), 100)", "loread"),
        ("SELECT set_config('search_path', 'x', false)", "set_config"),
        ("SELECT pg_notify('c', 'p')", "pg_notify"),
        ("SELECT word FROM ts_stat('select v from docs')", "ts_stat"),
        (
            "SELECT information_schema._pg_truetypid(a, t) FROM pg_attribute a, pg_type t",
            "information_schema._pg_truetypid",
        ),
        (
            "SELECT public.pg_get_userbyid(10)",
            "public.pg_get_userbyid",
        ),
        ("SELECT app.format_type(25, NULL)", "app.format_type"),
    ];
    let mut failures = Vec::new();
    for (sql, name) in unknown {
        match lineage(sql, &path(), &cat) {
            Ok(l) if l.unknown_functions.contains(name) => {}
            other => failures.push(format!("{sql}: want {name} unknown, got {other:?}")),
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

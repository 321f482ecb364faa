//! Golden lineage of where values come from: views, whole-row values, XML exports,
//! set-returning functions, VALUES, name resolution, unknown functions, and the errors that
//! make the caller refuse.

#[path = "lineage_common.rs"]
mod common;

use common::{catalog, check, check_unsupported, err, run, K::*};
use sql::lineage::{lineage, LineageError, MemoryCatalog};

#[test]
fn views_expand_recursively() {
    check(&[
        (
            "SELECT email FROM user_emails",
            &[("email", &["users.email"], Direct)],
        ),
        (
            "SELECT * FROM contact_book",
            &[
                ("id", &["users.id"], Direct),
                ("email_up", &["users.email"], Derived),
                ("phone", &["users.phone"], Direct),
            ],
        ),
        (
            "SELECT c.email_up, e.email FROM contact_book c JOIN user_emails e USING (id)",
            &[
                ("email_up", &["users.email"], Derived),
                ("email", &["users.email"], Direct),
            ],
        ),
        (
            "SELECT email FROM mv_emails",
            &[("email", &["users.email"], Derived)],
        ),
    ]);
    // The view's own filter (on ssn) is not the user's predicate; the user's is.
    let l = run("SELECT phone FROM contact_book WHERE id = 3");
    let preds: Vec<String> = l.predicate_columns.iter().map(common::short).collect();
    assert_eq!(preds, ["users.id"]);
}

#[test]
fn view_cycles_hit_the_depth_bound() {
    assert!(matches!(
        err("SELECT x FROM v_loop"),
        LineageError::Unsupported(_)
    ));
}

#[test]
fn whole_row_values_carry_every_column() {
    const ORGS: &[&str] = &["orgs.org_id", "orgs.title"];
    check(&[
        (
            "SELECT row_to_json(o) FROM orgs o",
            &[("row_to_json", ORGS, Whole)],
        ),
        (
            "SELECT to_jsonb(orgs) FROM orgs",
            &[("to_jsonb", ORGS, Whole)],
        ),
        ("SELECT o::text FROM orgs o", &[("o", ORGS, Whole)]),
        ("SELECT ROW(o.*) FROM orgs o", &[("row", ORGS, Whole)]),
        (
            "SELECT json_agg(o) FROM orgs o",
            &[("json_agg", ORGS, Whole)],
        ),
        (
            "SELECT array_agg(o ORDER BY o.title) FROM orgs o",
            &[("array_agg", ORGS, Whole)],
        ),
        ("SELECT o FROM orgs o", &[("o", ORGS, Whole)]),
        ("SELECT count(o.*) FROM orgs o", &[("count", ORGS, Whole)]),
        (
            "SELECT (o).title FROM orgs o",
            &[("title", &["orgs.title"], Direct)],
        ),
        (
            "SELECT row_to_json(s) FROM (SELECT lower(email) AS e FROM users) s",
            &[("row_to_json", &["users.email"], Whole)],
        ),
        (
            "SELECT to_json(c) FROM contact_book c",
            &[(
                "to_json",
                &["users.email", "users.id", "users.phone"],
                Whole,
            )],
        ),
    ]);
}

#[test]
fn xml_exports_parse_their_constant_arguments() {
    check(&[
        (
            "SELECT query_to_xml('select email, phone from users where id > 1', true, false, '')",
            &[("query_to_xml", &["users.email", "users.phone"], Whole)],
        ),
        (
            "SELECT table_to_xml('orgs', true, false, '')",
            &[("table_to_xml", &["orgs.org_id", "orgs.title"], Whole)],
        ),
        (
            "SELECT table_to_xml('app.secrets'::regclass, true, false, '')",
            &[(
                "table_to_xml",
                &["app.secrets.id", "app.secrets.token"],
                Whole,
            )],
        ),
        (
            "SELECT table_to_xmlschema('users', true, false, '')",
            &[("table_to_xmlschema", &[], Derived)],
        ),
    ]);
    // The inner query's filter is the user's predicate.
    assert_eq!(
        common::preds(
            "SELECT query_to_xml('select id from users where ssn like ''1%''', true, false, '')"
        ),
        ["users.ssn"]
    );
    check_unsupported(&[
        "SELECT query_to_xml(q, true, false, '') FROM (SELECT 'select 1' AS q) s",
        "SELECT table_to_xml(title, true, false, '') FROM orgs",
        "SELECT query_to_xml('delete from users returning email', true, false, '')",
        "SELECT query_to_xml('select 1; select 2', true, false, '')",
        "SELECT cursor_to_xml('c', 10, true, false, '')",
        "SELECT schema_to_xml('public', true, false, '')",
        "SELECT database_to_xml(true, false, '')",
    ]);
    assert!(matches!(
        err("SELECT table_to_xml('nope', true, false, '')"),
        LineageError::UnknownRelation(_)
    ));
}

#[test]
fn set_returning_functions_in_from() {
    check(&[
        (
            "SELECT x FROM users, unnest(ARRAY[email, phone]) AS x",
            &[("x", &["users.email", "users.phone"], Derived)],
        ),
        (
            "SELECT * FROM generate_series(1, 3) g",
            &[("g", &[], Derived)],
        ),
        (
            "SELECT key, value FROM users, jsonb_each(to_jsonb(users)) AS j",
            &[("key", users_all(), Whole), ("value", users_all(), Whole)],
        ),
        (
            "SELECT a, b FROM orders, json_to_record(card::json) AS r(a text, b int)",
            &[
                ("a", &["orders.card"], Derived),
                ("b", &["orders.card"], Derived),
            ],
        ),
        (
            "SELECT n, ordinality FROM orgs, unnest(ARRAY[title]) WITH ORDINALITY AS t(n)",
            &[
                ("n", &["orgs.title"], Derived),
                ("ordinality", &[], Derived),
            ],
        ),
        // A function with an unknown body: its result derives from its arguments.
        (
            "SELECT f.x FROM users u, my_srf(u.ssn) AS f",
            &[("x", &["users.ssn"], Derived)],
        ),
    ]);
    let l = run("SELECT f.x FROM users u, my_srf(u.ssn) AS f");
    assert!(l.unknown_functions.contains("my_srf"));
    check_unsupported(&[
        // Unknown shape: `*` cannot be expanded into positions.
        "SELECT * FROM my_srf(1)",
        "SELECT * FROM json_populate_record(null::users, '{}')",
    ]);
}

#[test]
fn table_functions_lateral_unknown_shapes_and_system_columns() {
    check(&[
        (
            "SELECT x.* FROM users, xmltable('/a' PASSING xmlparse(document email) \
             COLUMNS n text PATH 'b', o FOR ORDINALITY) x",
            &[("n", &["users.email"], Derived), ("o", &[], Derived)],
        ),
        (
            "SELECT jt.* FROM orders, json_table(card::jsonb, '$' COLUMNS (a text PATH '$.a', \
             n FOR ORDINALITY, NESTED PATH '$.x[*]' COLUMNS (b int PATH '$'))) jt",
            &[
                ("a", &["orders.card"], Derived),
                ("n", &[], Derived),
                ("b", &["orders.card"], Derived),
            ],
        ),
        // A function of unknown shape joined LATERAL: named columns still trace.
        (
            "SELECT f.x, u.email FROM users u JOIN LATERAL my_srf(u.ssn) f ON true",
            &[
                ("x", &["users.ssn"], Derived),
                ("email", &["users.email"], Direct),
            ],
        ),
        (
            "SELECT ctid, u.xmin, tableoid FROM users u",
            &[
                ("ctid", &[], Derived),
                ("xmin", &[], Derived),
                ("tableoid", &[], Derived),
            ],
        ),
        (
            "SELECT xmlelement(name p, xmlattributes(email AS e), phone) FROM users",
            &[("xmlelement", &["users.email", "users.phone"], Derived)],
        ),
    ]);
    check_unsupported(&[
        "SELECT * FROM users u JOIN LATERAL my_srf(u.ssn) f ON true",
        "SELECT * FROM users JOIN my_srf(1) f USING (id)",
    ]);
}

fn users_all() -> &'static [&'static str] {
    &[
        "users.email",
        "users.id",
        "users.manager_id",
        "users.name",
        "users.org_id",
        "users.phone",
        "users.ssn",
    ]
}

#[test]
fn values_lists_have_no_sources() {
    check(&[
        (
            "VALUES (1, 'a'), (2, 'b')",
            &[("column1", &[], Derived), ("column2", &[], Derived)],
        ),
        (
            "SELECT v.n FROM (VALUES (1), (2)) AS v(n)",
            &[("n", &[], Derived)],
        ),
        (
            "SELECT v.x FROM users u, LATERAL (VALUES (u.email), (NULL)) AS v(x)",
            &[("x", &["users.email"], Direct)],
        ),
    ]);
}

#[test]
fn unknown_functions_and_operators_are_listed() {
    let l = run(
        "SELECT my_mask(email), app.fmt(phone), lower(name), pg_catalog.upper(name) FROM users",
    );
    let names: Vec<&str> = l.unknown_functions.iter().map(String::as_str).collect();
    assert_eq!(names, ["app.fmt", "my_mask"]);
    assert_eq!(l.outputs[0].sources.len(), 1);
    assert!(!l.outputs[0].direct);
    // Built-ins with effects or hidden inputs are not "known".
    let l = run("SELECT set_config('x.y', email, false), pg_notify('c', ssn) FROM users");
    let names: Vec<&str> = l.unknown_functions.iter().map(String::as_str).collect();
    assert_eq!(names, ["pg_notify", "set_config"]);
    let l = run("SELECT email ### 'x' FROM users");
    assert!(l.unknown_functions.contains("operator(###)"));
    assert!(run("SELECT ssn OPERATOR(pg_catalog.=) 'x' FROM users")
        .unknown_functions
        .is_empty());
    // A function the deployment vouches for is not unknown; its result still derives.
    let vetted = catalog().pure_function("app.fmt");
    let l = lineage("SELECT app.fmt(phone) FROM users", &common::path(), &vetted).unwrap();
    assert!(l.unknown_functions.is_empty());
    assert!(!l.outputs[0].direct && l.outputs[0].sources.len() == 1);
    // A function whose body reads tables by itself shows no sources: only its name warns.
    let l = run("SELECT * FROM crosstab('select name, ssn from users') AS ct(a text, b text)");
    assert!(l.outputs.iter().all(|o| o.sources.is_empty()));
    assert!(l.unknown_functions.contains("crosstab"));
}

#[test]
fn names_resolve_against_the_search_path() {
    let cat = catalog();
    let app_first = vec!["app".to_string(), "public".to_string()];
    let l = lineage("SELECT * FROM notes", &app_first, &cat).unwrap();
    let srcs: Vec<String> = l
        .outputs
        .iter()
        .flat_map(|o| o.sources.iter().map(common::short))
        .collect();
    assert_eq!(srcs, ["app.notes.id", "app.notes.secret_note"]);
    let l = lineage("SELECT body FROM notes", &common::path(), &cat).unwrap();
    assert_eq!(
        common::short(l.outputs[0].sources.first().unwrap()),
        "notes.body"
    );
    // `$user` is skipped; pg_catalog is searched first for pg_* names.
    assert!(matches!(
        lineage("SELECT most_common_vals FROM pg_stats", &["$user".into()], &cat),
        Err(LineageError::SystemSamples(r)) if r == "pg_catalog.pg_stats"
    ));
    // A temporary table (exposed as pg_temp) shadows the path.
    let with_temp = catalog().table("pg_temp", "users", &["id", "copied"]);
    let l = lineage("SELECT * FROM users", &common::path(), &with_temp).unwrap();
    assert_eq!(l.outputs.len(), 2);
    assert!(matches!(
        lineage("SELECT * FROM secrets", &common::path(), &cat),
        Err(LineageError::UnknownRelation(r)) if r == "secrets"
    ));
    assert!(lineage("SELECT * FROM app.secrets", &common::path(), &cat).is_ok());
}

#[test]
fn unresolvable_or_ambiguous_names_fail_closed() {
    assert!(matches!(
        err("SELECT * FROM nope"),
        LineageError::UnknownRelation(_)
    ));
    assert!(matches!(
        err("SELECT x FROM nope.t"),
        LineageError::UnknownRelation(_)
    ));
    check_unsupported(&[
        "SELECT id FROM users, orders",       // ambiguous column
        "SELECT nothing FROM users",          // unknown column
        "SELECT u.nothing FROM users u",      // unknown qualified column
        "SELECT users.email FROM users u",    // alias hides the table name
        "SELECT a.id FROM users a, users a",  // duplicate alias
        "SELECT *",                           // * with no FROM
        "SELECT email FROM users ORDER BY 3", // position out of range
        "SELECT * FROM users JOIN orgs USING (nope)",
        "SELECT email FROM users UNION SELECT id, phone FROM users",
        "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a",
        "SELECT a.x FROM (SELECT 1) AS a(x, y)", // more aliases than columns
    ]);
    assert!(matches!(err("SELEC 1"), LineageError::Unparsed(_)));
    assert!(matches!(
        err("SELECT 1; SELECT 2"),
        LineageError::Unsupported(_)
    ));
    assert_eq!(run("").outputs.len(), 0);
}

#[test]
fn lineage_each_returns_one_entry_per_statement() {
    let cat = MemoryCatalog::new().table("public", "t", &["a"]);
    let all = sql::lineage::lineage_each("SELECT a FROM t; BEGIN; SELECT 1", &common::path(), &cat)
        .unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].outputs[0].name, "a");
    assert!(all[1].outputs.is_empty());
}

//! Writes to system catalogs, and MERGE actions that reach every target row.

use crate::harness::{run, run_with, Case, E::*};
use sql::AnalyzeContext;

#[test]
fn catalog_writes() {
    const T: &[Case] = &[
        ("UPDATE pg_catalog.pg_authid SET rolsuper = true WHERE rolname = 'app'",
            &[Class("write"), CatalogWrite("pg_catalog.pg_authid"), Where(Some(true))]),
        ("update PG_CATALOG.PG_AUTHID set rolsuper = true where rolname = 'app'",
            &[CatalogWrite("pg_catalog.pg_authid")]),
        ("UPDATE \"pg_catalog\".\"pg_authid\" SET rolsuper = true WHERE rolname = 'app'",
            &[CatalogWrite("pg_catalog.pg_authid")]),
        ("UPDATE U&\"pg\\005fcatalog\".pg_authid SET rolsuper = true WHERE rolname = 'app'",
            &[CatalogWrite("pg_catalog.pg_authid")]),
        ("DELETE FROM pg_class WHERE relname = 'x'", &[CatalogWrite("pg_catalog.pg_class")]),
        ("DELETE /* c */ FROM -- c\n pg_trigger WHERE tgname = 'audit'", &[CatalogWrite("pg_catalog.pg_trigger")]),
        ("INSERT INTO pg_catalog.pg_description VALUES (1, 2, 0, 'x')",
            &[CatalogWrite("pg_catalog.pg_description")]),
        ("MERGE INTO pg_catalog.pg_class c USING x ON c.oid = x.oid WHEN MATCHED THEN DELETE",
            &[CatalogWrite("pg_catalog.pg_class"), MergeAll(false)]),
        ("TRUNCATE pg_catalog.pg_statistic", &[Truncate("pg_catalog.pg_statistic"), CatalogWrite("pg_catalog.pg_statistic")]),
        ("COPY pg_catalog.pg_proc FROM STDIN", &[Class("copy"), CatalogWrite("pg_catalog.pg_proc")]),
        ("INSERT INTO information_schema.sql_features VALUES ('x')",
            &[CatalogWrite("information_schema.sql_features")]),
        ("UPDATE pg_toast.pg_toast_2619 SET chunk_seq = 0 WHERE chunk_id = 1",
            &[CatalogWrite("pg_toast.pg_toast_2619")]),
        ("WITH x AS (UPDATE pg_authid SET rolsuper = true WHERE rolname = 'me' RETURNING 1) SELECT * FROM x",
            &[Class("write"), CatalogWrite("pg_catalog.pg_authid")]),
        ("SELECT 1; DELETE FROM pg_catalog.pg_depend WHERE objid = 1",
            &[Count(2), At(0), Benign, At(1), CatalogWrite("pg_catalog.pg_depend")]),
        ("PREPARE p AS DELETE FROM pg_catalog.pg_depend WHERE objid = $1",
            &[CatalogWrite("pg_catalog.pg_depend")]),
        ("EXPLAIN ANALYZE UPDATE pg_class SET relname = 'x' WHERE oid = 1", &[CatalogWrite("pg_catalog.pg_class")]),
        ("DO $$ BEGIN DELETE FROM pg_catalog.pg_trigger WHERE tgname = 'audit'; END $$",
            &[NotOpaque, CatalogWrite("pg_catalog.pg_trigger")]),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'UPDATE pg_authid SET rolsuper = true WHERE rolname = current_user'",
            &[CatalogWrite("pg_catalog.pg_authid")]),
        ("CREATE RULE r AS ON INSERT TO t DO ALSO UPDATE pg_catalog.pg_class SET relname = 'x' WHERE oid = 1",
            &[CatalogWrite("pg_catalog.pg_class")]),
        // pg_settings' UPDATE rule runs set_config: a change of any setting.
        ("UPDATE pg_settings SET setting = 'replica' WHERE name = 'session_replication_role'",
            &[CatalogWrite("pg_catalog.pg_settings"), Danger("settings"), Weakens("*"), Gatehouse, RoleSwitch]),
        ("update pg_catalog.PG_SETTINGS set setting = 'eve' where name = 'gatehouse.identity'",
            &[CatalogWrite("pg_catalog.pg_settings"), Gatehouse, Setting("*")]),
        // Reads, locks and look-alikes.
        ("SELECT * FROM pg_class FOR UPDATE", &[Benign, Reads("pg_catalog.pg_class")]),
        ("SELECT relname FROM pg_catalog.pg_class c WHERE c.oid = 1 FOR NO KEY UPDATE", &[Benign]),
        ("COPY pg_catalog.pg_proc TO STDOUT", &[Benign]),
        ("EXPLAIN UPDATE pg_class SET relname = 'x' WHERE oid = 1", &[Class("read"), Benign]),
        ("INSERT INTO audit SELECT relname FROM pg_class", &[Benign, Reads("pg_catalog.pg_class")]),
        ("UPDATE \"PG_CATALOG\".pg_authid SET rolsuper = true WHERE rolname = 'app'",
            &[NoCatalogWrite, Writes("PG_CATALOG.pg_authid")]),
        ("UPDATE app.pg_notes SET x = 1 WHERE id = 1", &[Benign]),
        ("UPDATE pg_temp.scratch SET x = 1 WHERE id = 1", &[Benign]),
        ("INSERT INTO sql_features VALUES ('x')", &[Benign]),
    ];
    run(T);
}

/// Unqualified names of `information_schema` tables count when that schema is on the path,
/// wherever it is listed (the facts cannot tell which schema has the name).
#[test]
fn catalog_writes_follow_the_search_path() {
    let ctx = AnalyzeContext {
        search_path: vec!["app".into(), "information_schema".into()],
    };
    const T: &[Case] = &[
        (
            "INSERT INTO sql_features VALUES ('x')",
            &[CatalogWrite("app.sql_features")],
        ),
        (
            "DELETE FROM sql_parts WHERE feature_id = '1'",
            &[CatalogWrite("app.sql_parts")],
        ),
        (
            "UPDATE pg_class SET relname = 'x' WHERE oid = 1",
            &[CatalogWrite("pg_catalog.pg_class")],
        ),
        ("INSERT INTO tables VALUES ('x')", &[NoCatalogWrite]),
    ];
    run_with(T, &ctx);
    let ctx = AnalyzeContext {
        search_path: vec!["information_schema".into()],
    };
    run_with(
        &[(
            "INSERT INTO sql_features VALUES ('x')",
            &[CatalogWrite("information_schema.sql_features")],
        )],
        &ctx,
    );
}

#[test]
fn merges_that_reach_every_row() {
    const T: &[Case] = &[
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN DELETE",
            &[MergeAll(true), Where(Some(false))]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE THEN UPDATE SET archived = true",
            &[MergeAll(true)]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND true THEN DELETE", &[MergeAll(true), Taut(true)]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.id = t.id THEN DELETE", &[MergeAll(true)]),
        ("MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", &[MergeAll(true), Taut(true)]),
        ("merge into t using s on 1 = 1 when matched then update set v = s.v", &[MergeAll(true)]),
        ("/* x */ MeRgE InTo \"t\" UsInG s oN TRUE -- y\n WhEn MaTcHeD ThEn DeLeTe", &[MergeAll(true)]),
        // An ON condition about the source only restricts nothing in the target.
        ("MERGE INTO t USING s ON s.active WHEN MATCHED THEN DELETE", &[MergeAll(true), Taut(true)]),
        ("MERGE INTO t AS x USING s ON s.id = 1 WHEN MATCHED THEN DELETE", &[MergeAll(true)]),
        ("MERGE INTO t USING (SELECT 1 AS id) s ON s.id = s.id WHEN MATCHED THEN DELETE", &[MergeAll(true)]),
        ("MERGE INTO t USING s ON true WHEN MATCHED AND s.kill THEN DELETE", &[MergeAll(true)]),
        ("MERGE INTO t USING s ON (SELECT true) WHEN MATCHED THEN DELETE", &[MergeAll(true)]),
        ("MERGE INTO t USING s ON EXISTS (SELECT 1 FROM u WHERE u.x = s.y) WHEN MATCHED THEN DELETE",
            &[MergeAll(true)]),
        ("WITH s AS (SELECT 1 AS id) MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", &[MergeAll(true)]),
        ("SELECT 1; MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", &[Count(2), At(0), Benign, At(1), MergeAll(true)]),
        ("PREPARE m AS MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", &[MergeAll(true)]),
        ("DO $$ BEGIN MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE; END $$", &[NotOpaque, MergeAll(true)]),
        ("DO $$ DECLARE k int := 1; BEGIN MERGE INTO t USING s ON k = 1 WHEN MATCHED THEN DELETE; END $$",
            &[MergeAll(true)]),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE'",
            &[MergeAll(true)]),
        // Filtered: the target's rows are matched by key, or the action has its own condition.
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", &[MergeAll(false), Benign]),
        ("MERGE INTO t x USING s ON x.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v", &[MergeAll(false), Benign]),
        ("MERGE INTO app.t USING s ON id = s.src_id WHEN MATCHED THEN DELETE", &[MergeAll(false), Benign]),
        ("MERGE INTO t USING s ON true WHEN MATCHED AND t.id = 5 THEN DELETE", &[MergeAll(false)]),
        ("MERGE INTO t USING s ON t.id IN (SELECT id FROM u) WHEN MATCHED THEN DELETE", &[MergeAll(false)]),
        ("MERGE INTO t USING s ON EXISTS (SELECT 1 FROM u WHERE u.x = t.y) WHEN MATCHED THEN DELETE",
            &[MergeAll(false)]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN NOT MATCHED BY SOURCE AND t.stale THEN DELETE", &[MergeAll(false), Benign]),
        ("MERGE INTO t USING s ON false WHEN MATCHED THEN DELETE", &[MergeAll(false)]),
        ("MERGE INTO t USING s ON true WHEN NOT MATCHED THEN INSERT VALUES (s.id)", &[MergeAll(false), Where(None), Benign]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DO NOTHING", &[MergeAll(false), Benign]),
        ("DO $$ DECLARE k int := 1; BEGIN MERGE INTO t USING s ON t.id = k WHEN MATCHED THEN DELETE; END $$",
            &[MergeAll(false), Benign]),
        ("EXPLAIN MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE", &[Class("read"), MergeAll(false), Benign]),
    ];
    run(T);
}

/// The facts cache shares analyses between statements that differ only in literals; the new
/// facts that depend on a literal must not be shared.
#[test]
fn literal_dependent_facts_are_not_shared_by_the_cache() {
    let c = sql::FactsCache::new(64);
    let ctx = AnalyzeContext::default();
    let on = c.analyze("SELECT set_config('row_security', 'on', false)", &ctx);
    let off = c.analyze("SELECT set_config('row_security', 'off', false)", &ctx);
    assert!(on.statements[0].session.weakening_settings.is_empty());
    assert!(!off.statements[0].session.weakening_settings.is_empty());
    let never = c.analyze(
        "MERGE INTO t USING s ON 1 = 2 WHEN MATCHED THEN DELETE",
        &ctx,
    );
    let always = c.analyze(
        "MERGE INTO t USING s ON 1 = 1 WHEN MATCHED THEN DELETE",
        &ctx,
    );
    assert!(!never.statements[0].unfiltered_merge);
    assert!(
        always.statements[0].unfiltered_merge,
        "must not reuse 1 = 2"
    );
    assert_eq!(c.stats().shape_hits, 0);
}

use super::*;

fn ctx(path: &[&str]) -> AnalyzeContext {
    AnalyzeContext {
        search_path: path.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn same_shape_other_literal_is_a_hit_with_its_own_text() {
    let c = FactsCache::new(64);
    let p = ctx(&["public"]);
    let a = c.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1", &p);
    let b = c.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 2;", &p);
    assert_eq!(c.stats().shape_hits, 1);
    assert_eq!(
        b.statements[0].text,
        "SELECT abalance FROM pgbench_accounts WHERE aid = 2"
    );
    assert_eq!(a.statements[0].tables_read, b.statements[0].tables_read);
    // Shape hits are not stored by exact text (literal variants would crowd the cache out).
    c.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 1", &p);
    assert_eq!(c.stats().exact_hits, 1);
}

#[test]
fn literals_that_change_facts_are_not_shared() {
    let c = FactsCache::new(64);
    let p = ctx(&["public"]);
    let first = c.analyze("DELETE FROM t WHERE 1 = 2", &p);
    assert!(!first.statements[0].where_tautology);
    let second = c.analyze("DELETE FROM t WHERE 1 = 1", &p);
    assert!(second.statements[0].where_tautology, "must not reuse 1 = 2");
    let a = c.analyze("SELECT set_config('application_name', 'x', false)", &p);
    let b = c.analyze("SELECT set_config('gatehouse.identity', 'x', false)", &p);
    assert!(a.statements[0].session.gatehouse_settings.is_empty());
    assert!(!b.statements[0].session.gatehouse_settings.is_empty());
    assert_eq!(c.stats().shape_hits, 0);
}

#[test]
fn aliases_are_part_of_the_key() {
    let c = FactsCache::new(64);
    let p = ctx(&["public"]);
    let a = c.analyze("SELECT a.secret FROM t a, u b", &p);
    let b = c.analyze("SELECT a.secret FROM t b, u a", &p);
    assert!(a.statements[0].columns["public.t"].contains("secret"));
    assert!(b.statements[0].columns["public.u"].contains("secret"));
}

#[test]
fn search_path_is_part_of_the_key() {
    let c = FactsCache::new(64);
    let a = c.analyze("SELECT * FROM t", &ctx(&["app"]));
    let b = c.analyze("SELECT * FROM t", &ctx(&["other"]));
    assert!(a.statements[0].tables_read.contains("app.t"));
    assert!(b.statements[0].tables_read.contains("other.t"));
}

#[test]
fn stays_bounded() {
    let c = FactsCache::new(16);
    let p = ctx(&["public"]);
    for i in 0..500 {
        c.analyze(&format!("SELECT c{i} FROM t"), &p);
        assert!(c.len() <= 16, "len {}", c.len());
    }
    // A recent entry is still there.
    c.analyze("SELECT c499 FROM t", &p);
    assert_eq!(c.stats().exact_hits, 1);
}

#[test]
fn every_hit_answers_what_a_fresh_analysis_would() {
    // Pairs of texts that share a quick key (or only a shape key, or neither): whatever the
    // cache answers for the second must equal analysing it from scratch.
    let templates = [
        "SELECT abalance FROM pgbench_accounts WHERE aid = {}",
        "SELECT * FROM t WHERE name = '{}' AND id = {}",
        "DELETE FROM t WHERE {} = {}",
        "UPDATE t SET v = {} WHERE {} = 1",
        "SELECT set_config('{}', 'x', false)",
        "SELECT query_to_xml('SELECT secret FROM {}', true, true, '')",
        "SELECT * FROM t ORDER BY {}",
        "SELECT 'a' || '{}' FROM \"T{}\"",
        "EXPLAIN ANALYZE SELECT * FROM t WHERE id = {}",
        "SELECT * FROM t WHERE id = {} -- trailing {}",
    ];
    let fills = [
        ["1", "1"],
        ["2", "3"],
        ["u", "2"],
        ["gatehouse.identity", "1"],
    ];
    let p = ctx(&["public"]);
    let c = FactsCache::new(256);
    for t in templates {
        for f in fills {
            let sql = t.replacen("{}", f[0], 1).replacen("{}", f[1], 1);
            let cached = c.analyze(&sql, &p);
            assert_eq!(cached, crate::analyze(&sql, &p), "{sql}");
        }
    }
    assert!(c.stats().shape_hits > 0);
}

//! Arbitrary input never panics: random bytes, and random mutations of real statements.

use sql::{analyze, AnalyzeContext};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const SEEDS: &[&str] = &[
    "WITH d AS (DELETE FROM t WHERE 1=1 RETURNING *) SELECT * FROM d",
    "DO $$ DECLARE r record; BEGIN FOR r IN SELECT * FROM t LOOP EXECUTE 'x'; END LOOP; END $$",
    "CREATE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT a; END",
    "SELECT U&\"a\\0062\" FROM t WHERE x = ANY(ARRAY[1,2]) ORDER BY 1 LIMIT 2",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = 1 WHEN NOT MATCHED THEN INSERT VALUES (1)",
    "COPY (SELECT 1) TO PROGRAM 'x'; SET search_path = a, b; ALTER TABLE t DROP COLUMN c",
    "MERGE INTO t x USING s ON s.a WHEN NOT MATCHED BY SOURCE AND x.b THEN DELETE",
    "BEGIN READ WRITE; SET session_replication_role = replica; ALTER TABLE t DISABLE TRIGGER ALL",
    "CREATE OR REPLACE FUNCTION f() RETURNS trigger LANGUAGE sql SET row_security = off AS 'x'",
    "UPDATE pg_catalog.pg_class SET relname = 'x' WHERE oid = 1; DROP POLICY p ON t",
];

const TOKENS: &[&str] = &[
    "SELECT", "(", ")", "$$", "'", "\"", ";", "DO", "WITH", "DELETE", "--", "/*", "*/", "U&", "\\",
    "$1", "::", "E'", "EXECUTE", "BEGIN", "END", "\0", "\u{feff}", "é",
];

#[test]
fn random_bytes_never_panic() {
    let ctx = AnalyzeContext::default();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1500 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let text = String::from_utf8_lossy(&bytes);
        let a = analyze(&text, &ctx);
        for s in &a.statements {
            let _ = &s.class;
        }
    }
}

#[test]
fn mutated_statements_never_panic_and_unparsable_is_opaque() {
    let ctx = AnalyzeContext::default();
    let mut rng = Rng(42);
    for _ in 0..3000 {
        let mut s: String = SEEDS[rng.below(SEEDS.len())].to_owned();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(s.len() + 1);
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => s.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
                1 => s.truncate(at),
                _ => {
                    let mut end = (at + rng.below(8)).min(s.len());
                    while !s.is_char_boundary(end) {
                        end -= 1;
                    }
                    s.replace_range(at..end, "");
                }
            }
        }
        let a = analyze(&s, &ctx);
        if a.error.is_some() {
            assert_eq!(a.statements.len(), 1, "{s}");
            assert!(a.statements[0].opaque.is_some(), "{s}");
        }
    }
}

#[test]
fn deep_and_wide_inputs_are_bounded() {
    let ctx = AnalyzeContext::default();
    for depth in [50, 200, 1000, 5000] {
        let parens = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let a = analyze(&parens, &ctx);
        assert_eq!(a.statements.len(), 1);
        let sub = format!(
            "DELETE FROM t WHERE id IN {}(SELECT 1){}",
            "(SELECT id FROM u WHERE id IN ".repeat(depth / 10),
            ")".repeat(depth / 10)
        );
        let a = analyze(&sub, &ctx);
        assert_eq!(a.statements.len(), 1);
        let nots = format!("DELETE FROM t WHERE {}true", "NOT ".repeat(depth));
        let a = analyze(&nots, &ctx);
        assert_eq!(a.statements.len(), 1);
    }
    for depth in [1000, 5000, 100_000] {
        for deep in [
            format!("SELECT 1{}", "+1".repeat(depth)),
            format!("SELECT {}1", "- ".repeat(depth)),
            format!("SELECT 1{}", "::int".repeat(depth)),
            format!("SELECT 1{}", " BETWEEN 1 AND 1".repeat(depth)),
            "SELECT 1 UNION ".repeat(depth) + "SELECT 1",
            format!(
                "DO $$BEGIN {} NULL; {} END$$",
                "IF true THEN ".repeat(depth),
                "END IF; ".repeat(depth)
            ),
        ] {
            let a = analyze(&deep, &ctx);
            assert!(a.statements[0].opaque.is_some());
            let cache = sql::FactsCache::new(4);
            assert!(cache.analyze(&deep, &ctx).statements[0].opaque.is_some());
        }
    }
    let many = "SELECT 1;".repeat(2000);
    assert_eq!(analyze(&many, &ctx).statements.len(), 2000);
    let list: Vec<String> = (0..20_000).map(|i| i.to_string()).collect();
    let wide = format!("SELECT * FROM t WHERE id IN ({})", list.join(","));
    assert!(analyze(&wide, &ctx).statements[0].opaque.is_none());
    let huge = "x".repeat(sql::MAX_SQL_BYTES + 1);
    let a = analyze(&huge, &ctx);
    assert!(a.statements[0].opaque.is_some());
    assert!(a.statements[0].text.len() <= 4096);
}

//! `lineage()` never panics on arbitrary input: random bytes, random token soup, and random
//! mutations of statements that exercise every construct. Deterministic (xorshift), so a
//! failure reproduces.

#[path = "lineage_common.rs"]
mod common;

use sql::lineage::lineage;

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
    "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM users UNION SELECT n + 1, e FROM r) SELECT * FROM r",
    "SELECT u.*, o.card FROM users u LEFT JOIN LATERAL (SELECT card FROM orders WHERE user_id = u.id) o ON true",
    "SELECT row_to_json(c), query_to_xml('select * from contact_book', true, false, '') FROM contact_book c",
    "INSERT INTO notes (id, body) SELECT id, email FROM users ON CONFLICT (id) DO UPDATE SET body = excluded.body RETURNING *",
    "SELECT x FROM users, unnest(ARRAY[email]) WITH ORDINALITY AS t(x, n) ORDER BY 1 LIMIT 2",
    "UPDATE users SET (name, phone) = (SELECT title, 'x' FROM orgs) FROM orgs o WHERE o.org_id = users.org_id",
    "SELECT * FROM users JOIN orgs USING (org_id) AS j NATURAL JOIN (VALUES (1)) v(org_id)",
    "COPY (SELECT (u).email FROM users u GROUP BY ROLLUP (1)) TO STDOUT",
];

const TOKENS: &[&str] = &[
    "SELECT",
    "(",
    ")",
    "*",
    ".",
    ",",
    "'",
    "\"",
    ";",
    "FROM",
    "users",
    "u",
    "email",
    "JOIN",
    "USING",
    "WITH",
    "RECURSIVE",
    "UNION",
    "LATERAL",
    "ROW",
    "::text",
    "$1",
    "OVER",
    "ORDER BY",
    "1",
    "query_to_xml",
    "table_to_xml",
    "RETURNING",
    "\0",
    "é",
    "v_loop",
];

fn never_panics(text: &str) {
    let cat = common::catalog();
    let path = common::path();
    // Any Ok or Err is fine; the test fails only by panicking.
    let _ = lineage(text, &path, &cat);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1500 {
        let len = rng.below(200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        never_panics(&String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn token_soup_never_panics() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    for _ in 0..2000 {
        let n = 1 + rng.below(30);
        let text: Vec<&str> = (0..n).map(|_| TOKENS[rng.below(TOKENS.len())]).collect();
        never_panics(&text.join(" "));
    }
}

#[test]
fn mutated_statements_never_panic() {
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    for seed in SEEDS {
        // Every seed is understood as written.
        assert!(
            lineage(seed, &common::path(), &common::catalog()).is_ok(),
            "{seed}"
        );
    }
    for _ in 0..3000 {
        let mut text = SEEDS[rng.below(SEEDS.len())].to_string();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(3) {
                0 => text.insert_str(at, TOKENS[rng.below(TOKENS.len())]),
                1 => {
                    let mut end = (at + 1 + rng.below(12)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end -= 1;
                    }
                    text.replace_range(at..end, "");
                }
                _ => {
                    let (a, b) = text.split_at(at);
                    text = format!("{b} {a}");
                }
            }
        }
        never_panics(&text);
    }
}

/// Run on a large stack: a debug build of pg_query's decoder alone needs about 2 MiB for a
/// statement at the parser's depth limit (release: 256 KiB; see `walker::MAX_NESTING`).
fn big_stack(f: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new().stack_size(32 << 20).spawn(f);
    match spawned.map(|h| h.join()) {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the walker panicked"),
        Err(e) => panic!("cannot spawn a test thread: {e}"),
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    big_stack(|| {
        let deep = format!(
            "SELECT {}1{} FROM users",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        assert!(lineage(&deep, &common::path(), &common::catalog()).is_err());
        let mut sub = String::from("SELECT email FROM users");
        for _ in 0..60 {
            sub = format!("SELECT * FROM ({sub}) s");
        }
        assert!(lineage(&sub, &common::path(), &common::catalog()).is_err());
        let mut q = String::from("select email from users");
        for _ in 0..12 {
            q = format!(
                "select query_to_xml('{}', true, false, '')",
                q.replace('\'', "''")
            );
        }
        assert!(lineage(&q, &common::path(), &common::catalog()).is_err());
    });
}

/// Views over views: followed to depth 8, refused beyond, and a chain of deeply nested
/// definitions is refused by the nesting bound rather than overflowing the stack.
#[test]
fn view_chains_are_bounded() {
    big_stack(|| {
        let chain = |depth: usize, levels: usize| {
            let mut cat = sql::lineage::MemoryCatalog::new().table("public", "t", &["a"]);
            for i in 0..depth {
                let base = match i {
                    0 => "public.t".to_string(),
                    _ => format!("public.v{}", i - 1),
                };
                let mut body = format!("SELECT a FROM {base}");
                for _ in 0..levels {
                    body = format!("SELECT s.a FROM ({body}) s WHERE s.a IS NOT NULL");
                }
                cat.insert("public", &format!("v{i}"), &["a"], Some(body));
            }
            let q = format!("SELECT a FROM v{}", depth - 1);
            lineage(&q, &common::path(), &cat).map(|l| l.outputs.len())
        };
        assert_eq!(chain(8, 3), Ok(1));
        assert!(chain(9, 0).is_err());
        assert_eq!(chain(3, 21), Ok(1));
        assert!(chain(8, 21).is_err());
    });
}

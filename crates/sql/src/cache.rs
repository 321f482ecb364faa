//! A bounded cache of analyses, so a statement already seen is not parsed again.
//!
//! Two keys, both paired with the search path (the same text resolves to other tables under
//! another path):
//!
//! 1. **Exact text.** Always correct; serves repeated identical strings (prepared statement
//!    texts, BEGIN/COMMIT, an ORM's fixed queries).
//! 2. **Literal-free shape**: the lexer's token sequence with comments dropped and every
//!    constant replaced by its kind (see `shape`). This serves `WHERE aid = 1` for
//!    `WHERE aid = 2`. The same lexer pass bounds nesting depth before anything recurses.
//!
//! Why not pg_query's *fingerprint*: it also ignores alias names (`FROM t a, u b` and
//! `FROM t b, u a` share one) and the names of PREPARE/DECLARE, all of which change facts
//! (which table `a.x` reads). The token key keeps every identifier. (`pg_query::normalize`
//! would too, but it recurses over a tree and costs a raw parse.)
//!
//! Literals do change some facts (`WHERE 1 = 1` vs `WHERE 1 = 2`; `set_config('gatehouse.x',
//! …)`; `SET search_path = …`; DO bodies), so the shape key is used only for single
//! SELECT/INSERT/UPDATE/DELETE/MERGE statements whose analysis did not look at any literal
//! value (the walker tracks this). Everything else is cached by exact text only.
//!
//! Eviction is generational (two maps; when the young one fills, it becomes the old one and
//! the old one is dropped; a hit in the old one is promoted): O(1), no per-entry bookkeeping,
//! and close to LRU for a working set smaller than half the capacity.

use crate::{
    analyze_parsed, analyze_with, clean, shape, Analysis, AnalyzeContext, Ctx, MAX_SQL_BYTES,
};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Counters since the cache was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub exact_hits: u64,
    pub shape_hits: u64,
    pub misses: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyKind {
    Exact,
    Shape,
}

#[derive(Debug)]
struct Entry {
    kind: KeyKind,
    text: String,
    search_path: Vec<String>,
    analysis: Arc<Analysis>,
}

impl Entry {
    fn matches(&self, kind: &KeyKind, text: &str, search_path: &[String]) -> bool {
        self.kind == *kind && self.text == text && self.search_path == search_path
    }
}

#[derive(Debug)]
pub struct FactsCache {
    /// Entries per generation (the cache holds at most twice this).
    generation: usize,
    young: HashMap<u64, Entry>,
    old: HashMap<u64, Entry>,
    stats: CacheStats,
}

/// SQL commands whose facts are a function of their literal-free shape (unless the walker
/// saw a literal that mattered).
const SHAPE_CACHEABLE: [&str; 5] = ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"];

impl FactsCache {
    /// A cache holding up to about `capacity` analyses.
    pub fn new(capacity: usize) -> Self {
        FactsCache {
            generation: (capacity / 2).max(1),
            young: HashMap::new(),
            old: HashMap::new(),
            stats: CacheStats::default(),
        }
    }

    /// [`crate::analyze`], answered from the cache when possible.
    pub fn analyze(&mut self, sql: &str, ctx: &AnalyzeContext) -> Analysis {
        let path = &ctx.search_path;
        if let Some(hit) = self.get(KeyKind::Exact, sql, path) {
            self.stats.exact_hits += 1;
            return hit.as_ref().clone();
        }
        let scanned = (sql.len() <= MAX_SQL_BYTES)
            .then(|| shape::scan(clean(sql), true))
            .flatten();
        let shape = scanned
            .filter(|s| s.depth <= shape::MAX_NESTING_UNITS)
            .map(|s| s.key);
        if let Some(shape) = &shape {
            if let Some(hit) = self.get(KeyKind::Shape, shape, path) {
                self.stats.shape_hits += 1;
                let mut analysis = hit.as_ref().clone();
                for s in &mut analysis.statements {
                    s.text = clean(sql).to_owned();
                }
                return analysis;
            }
        }
        self.stats.misses += 1;
        let no_vars = BTreeSet::new();
        let inner = Ctx {
            search_path: path,
            vars: &no_vars,
            depth: 0,
        };
        let (analysis, sensitive) = match shape {
            // Size and depth already checked by the scan above.
            Some(_) => analyze_parsed(sql, &inner),
            None => analyze_with(sql, &inner),
        };
        let analysis = Arc::new(analysis);
        let by_shape = matches!(
            (analysis.statements.as_slice(), sensitive.as_slice()),
            ([one], [false]) if SHAPE_CACHEABLE.contains(&one.command.as_str())
        );
        if let (true, Some(shape)) = (by_shape, shape) {
            self.put(KeyKind::Shape, shape, path, Arc::clone(&analysis));
        }
        self.put(KeyKind::Exact, sql.to_owned(), path, Arc::clone(&analysis));
        Arc::unwrap_or_clone(analysis)
    }

    pub fn stats(&self) -> CacheStats {
        self.stats
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        self.young.len() + self.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&mut self) {
        self.young.clear();
        self.old.clear();
    }

    fn get(&mut self, kind: KeyKind, text: &str, path: &[String]) -> Option<Arc<Analysis>> {
        let h = hash(&kind, text, path);
        if let Some(e) = self.young.get(&h) {
            return e
                .matches(&kind, text, path)
                .then(|| Arc::clone(&e.analysis));
        }
        let e = self.old.remove(&h)?;
        if !e.matches(&kind, text, path) {
            self.old.insert(h, e);
            return None;
        }
        let analysis = Arc::clone(&e.analysis);
        self.insert(h, e);
        Some(analysis)
    }

    fn put(&mut self, kind: KeyKind, text: String, path: &[String], analysis: Arc<Analysis>) {
        let h = hash(&kind, &text, path);
        let entry = Entry {
            kind,
            text,
            search_path: path.to_vec(),
            analysis,
        };
        self.insert(h, entry);
    }

    fn insert(&mut self, h: u64, entry: Entry) {
        if self.young.len() >= self.generation {
            self.old = std::mem::take(&mut self.young);
        }
        // A hash collision replaces the other entry; `matches` keeps lookups exact.
        self.young.insert(h, entry);
    }
}

fn hash(kind: &KeyKind, text: &str, path: &[String]) -> u64 {
    let mut h = DefaultHasher::new();
    kind.hash(&mut h);
    text.hash(&mut h);
    path.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests;

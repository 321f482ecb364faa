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
//! 3. **Quick key** (`quick_key`): the text with the contents of short integers and plain
//!    string literals replaced, read without the lexer. Looked up before the lexer runs, so
//!    the common repeated statement (`WHERE aid = 42`) costs one pass over its bytes. It is
//!    filed beside a shape entry only, and two texts with one quick key share their shape key.
//!
//! Literals do change some facts (`WHERE 1 = 1` vs `WHERE 1 = 2`; `set_config('gatehouse.x',
//! …)`; `SET search_path = …`; DO bodies), so the shape key is used only for single
//! SELECT/INSERT/UPDATE/DELETE/MERGE statements whose analysis did not look at any literal
//! value (the walker tracks this). Everything else is cached by exact text only.
//!
//! An entry holds the facts and the COPY TO STDOUT class of each statement. Lineage depends
//! on the catalog and the path, which change, so it is remembered apart, keyed by the entry's
//! key, the search path, the paths requested and the catalog's *generation*
//! (`Catalog::generation`; a catalog without one is never reused against): a hit whose
//! lineage is remembered costs no parse. Under a shape key only lineage that no constant
//! decided is remembered (`query_to_xml('…')`'s string, an `ORDER BY 2` position); under the
//! exact text, any. Otherwise [`FactsCache::analyze_full`] parses once when lineage is asked
//! for a hit, and a miss parses once for facts and lineage both (see `full`).
//! [`CacheStats::parses`] counts the parser runs.
//!
//! The cache is shared by every session (`&self`; one lock held only for lookups and
//! insertions): lexing, parsing, walking and tracing run outside it, so a large new string
//! parsed in one session does not stall the others.
//!
//! Eviction is generational (two maps; when the young one fills, it becomes the old one and
//! the old one is dropped; a hit in the old one is promoted): O(1), no per-entry bookkeeping,
//! and close to LRU for a working set smaller than half the capacity.

use crate::copy::CopyOut;
use crate::full::{self, LineageRequest, StatementAnalysis};
use crate::tree::{self, Depth, Unparsed};
use crate::{clean, quick_key, shape, walk_tree, Analysis, AnalyzeContext, Ctx, MAX_SQL_BYTES};
use foldhash::fast::RandomState;
use pg_query::protobuf::RawStmt;
use std::collections::{BTreeSet, HashMap};
use std::hash::BuildHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

/// Counters since the cache was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub exact_hits: u64,
    pub shape_hits: u64,
    pub misses: u64,
    /// Query strings handed to the parser: one per miss, plus one per hit whose lineage was
    /// asked for and not remembered. Text refused before parsing (too large, nested too
    /// deeply) is not counted.
    pub parses: u64,
    /// Hits whose lineage was remembered (same key, search path, requested paths and
    /// catalog generation), so no parse was needed.
    pub lineage_hits: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum KeyKind {
    Exact,
    Shape,
    /// The lexer-free key of `quick_key` (plain ASCII text with simple constants).
    Quick,
}

#[derive(Debug)]
struct Entry {
    kind: KeyKind,
    text: String,
    search_path: Vec<String>,
    cached: Arc<Cached>,
}

/// What an entry holds: one entry per statement in each list.
#[derive(Debug, Clone)]
struct Cached {
    analysis: Analysis,
    copy_out: Vec<Option<CopyOut>>,
}

/// A lookup's answer: from an entry, or from a parse that filled one (the tree is kept for
/// lineage); with the keys the analysis is held under, for remembering its lineage.
enum Found {
    Hit {
        cached: Cached,
        depth: Depth,
        keys: Vec<(KeyKind, String)>,
    },
    Miss {
        cached: Cached,
        tree: Result<Vec<RawStmt>, Unparsed>,
        keys: Vec<(KeyKind, String)>,
    },
}

/// Lineage traced for an entry's key, against one catalog generation and one list of
/// requested paths. Kept under a shape key only when no constant decided it.
#[derive(Debug)]
struct Memo {
    kind: KeyKind,
    text: String,
    search_path: Vec<String>,
    paths: Vec<Option<Vec<String>>>,
    generation: u64,
    traced: Vec<Option<Result<crate::lineage::Lineage, crate::lineage::LineageError>>>,
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
    /// Keys are hashed with foldhash (per-process seed): a collision only costs a miss,
    /// as every hit is compared in full (`matches`).
    state: RandomState,
    maps: Mutex<Maps>,
}

/// What the lock guards: the entries, the remembered lineage and the counters.
#[derive(Debug, Default)]
struct Maps {
    young: HashMap<u64, Entry, RandomState>,
    old: HashMap<u64, Entry, RandomState>,
    /// Remembered lineage, cleared when it outgrows the entries.
    memo: HashMap<u64, Memo, RandomState>,
    stats: CacheStats,
}

/// Lineage of each statement of a string (`None`: not traced).
type TracedAll = Vec<Option<Result<crate::lineage::Lineage, crate::lineage::LineageError>>>;

/// SQL commands whose facts are a function of their literal-free shape (unless the walker
/// saw a literal that mattered).
const SHAPE_CACHEABLE: [&str; 5] = ["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"];

impl FactsCache {
    /// A cache holding up to about `capacity` analyses.
    pub fn new(capacity: usize) -> Self {
        FactsCache {
            generation: (capacity / 2).max(1),
            state: RandomState::default(),
            maps: Mutex::new(Maps::default()),
        }
    }

    /// The maps, briefly. Nothing that holds the lock can panic halfway through an update
    /// that matters (a poisoned lock still guards consistent maps).
    fn maps(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// [`crate::analyze`], answered from the cache when possible.
    pub fn analyze(&self, sql: &str, ctx: &AnalyzeContext) -> Analysis {
        match self.find(sql, ctx) {
            Found::Hit { cached, .. } | Found::Miss { cached, .. } => cached.analysis,
        }
    }

    /// [`crate::analyze_full`], with the facts answered from the cache when possible. A hit
    /// parses only if `lineage` asks for some statement's lineage; a miss parses once for
    /// facts, lineage and COPY class alike. Lineage is never cached.
    pub fn analyze_full(
        &self,
        sql: &str,
        ctx: &AnalyzeContext,
        lineage: Option<LineageRequest<'_>>,
    ) -> Vec<StatementAnalysis> {
        // A hit keeps how far its text was checked, for a parse should lineage need one.
        let (cached, tree, depth, keys) = match self.find(sql, ctx) {
            Found::Hit {
                cached,
                depth,
                keys,
            } => (cached, None, depth, keys),
            Found::Miss { cached, tree, keys } => (cached, Some(tree), Depth::Checked, keys),
        };
        let statements = cached.analysis.statements;
        let n = statements.len();
        let traced = match lineage {
            Some(mut request) => {
                let paths = full::wanted_paths(&statements, &mut request);
                if paths.iter().all(Option::is_none) {
                    full::none_traced(n)
                } else {
                    let generation = request.catalog.generation();
                    let path = &ctx.search_path;
                    let remembered = generation.and_then(|g| self.recall(&keys, path, &paths, g));
                    match remembered {
                        Some(traced) => {
                            self.maps().stats.lineage_hits += 1;
                            traced
                        }
                        None => {
                            // The same text the facts describe; a split that differs fails
                            // closed.
                            let tree = match tree {
                                Some(tree) => tree,
                                None => self.parse(sql, depth),
                            };
                            let (traced, literal_free) =
                                full::trace_all_noting(&tree, paths.clone(), request.catalog);
                            if let Some(g) = generation {
                                self.remember(&keys, path, &paths, g, literal_free, &traced);
                            }
                            traced
                        }
                    }
                }
            }
            None => full::none_traced(n),
        };
        full::zip(statements, cached.copy_out, traced)
    }

    /// Lineage remembered under one of `keys` for these paths and catalog generation.
    fn recall(
        &self,
        keys: &[(KeyKind, String)],
        search_path: &[String],
        paths: &[Option<Vec<String>>],
        generation: u64,
    ) -> Option<TracedAll> {
        let maps = self.maps();
        keys.iter().find_map(|(kind, text)| {
            let m = maps.memo.get(&memo_hash(
                &self.state,
                *kind,
                text,
                search_path,
                paths,
                generation,
            ))?;
            (m.kind == *kind
                && m.text == *text
                && m.search_path == search_path
                && m.paths == paths
                && m.generation == generation)
                .then(|| m.traced.clone())
        })
    }

    /// Remembers lineage under every key it holds for: the exact text always, a shape only
    /// when no constant's value decided it.
    fn remember(
        &self,
        keys: &[(KeyKind, String)],
        search_path: &[String],
        paths: &[Option<Vec<String>>],
        generation: u64,
        literal_free: bool,
        traced: &[Option<Result<crate::lineage::Lineage, crate::lineage::LineageError>>],
    ) {
        let mut maps = self.maps();
        if maps.memo.len() >= 2 * self.generation {
            maps.memo.clear();
        }
        for (kind, text) in keys {
            if *kind != KeyKind::Exact && !literal_free {
                continue;
            }
            let h = memo_hash(&self.state, *kind, text, search_path, paths, generation);
            maps.memo.insert(
                h,
                Memo {
                    kind: *kind,
                    text: text.clone(),
                    search_path: search_path.to_vec(),
                    paths: paths.to_vec(),
                    generation,
                    traced: traced.to_vec(),
                },
            );
        }
    }

    /// An entry for `sql`, or a parse that fills one.
    fn find(&self, sql: &str, ctx: &AnalyzeContext) -> Found {
        let path = &ctx.search_path;
        if let Some(hit) = self.hit(KeyKind::Exact, sql, path, |s| s.exact_hits += 1) {
            let cached = hit.as_ref().clone();
            return Found::Hit {
                cached,
                depth: Depth::Unchecked,
                keys: vec![(KeyKind::Exact, sql.to_owned())],
            };
        }
        // Most repeated statements differ only in simple constants: a key read without the
        // lexer finds them (see `quick_key`).
        let quick = (sql.len() <= MAX_SQL_BYTES)
            .then(|| quick_key::key(clean(sql)))
            .flatten();
        if let Some(quick) = &quick {
            if let Some(hit) = self.hit(KeyKind::Quick, quick, path, |s| s.shape_hits += 1) {
                let mut cached = hit.as_ref().clone();
                for s in &mut cached.analysis.statements {
                    s.text = clean(sql).to_owned();
                }
                let keys = vec![
                    (KeyKind::Quick, quick.clone()),
                    (KeyKind::Exact, sql.to_owned()),
                ];
                return Found::Hit {
                    cached,
                    depth: Depth::Unchecked,
                    keys,
                };
            }
        }
        let scanned = (sql.len() <= MAX_SQL_BYTES)
            .then(|| shape::scan(clean(sql), true))
            .flatten();
        let shape = scanned
            .filter(|s| s.depth <= shape::MAX_NESTING_UNITS)
            .map(|s| s.key);
        // Size and depth are checked by the scan when it yields a shape.
        let depth = match shape {
            Some(_) => Depth::Checked,
            None => Depth::Unchecked,
        };
        if let Some(shape) = &shape {
            if let Some(hit) = self.hit(KeyKind::Shape, shape, path, |s| s.shape_hits += 1) {
                let mut cached = hit.as_ref().clone();
                for s in &mut cached.analysis.statements {
                    s.text = clean(sql).to_owned();
                }
                let keys = vec![
                    (KeyKind::Shape, shape.clone()),
                    (KeyKind::Exact, sql.to_owned()),
                ];
                return Found::Hit {
                    cached,
                    depth,
                    keys,
                };
            }
        }
        self.maps().stats.misses += 1;
        let no_vars = BTreeSet::new();
        let inner = Ctx {
            search_path: path,
            vars: &no_vars,
            depth: 0,
        };
        let tree = self.parse(sql, depth);
        let walked = walk_tree(sql, &tree, &inner);
        let cached = Arc::new(Cached {
            analysis: walked.analysis,
            copy_out: walked.copy_out,
        });
        // A shape entry serves other texts: only for statements whose facts (and COPY
        // class) no literal of this text decided.
        let one = (
            cached.analysis.statements.as_slice(),
            walked.literal_sensitive.as_slice(),
            cached.copy_out.as_slice(),
        );
        let by_shape = matches!(
            one,
            ([f], [false], [None]) if SHAPE_CACHEABLE.contains(&f.command.as_str())
        );
        let mut keys = vec![(KeyKind::Exact, sql.to_owned())];
        let mut puts = vec![(KeyKind::Exact, sql.to_owned())];
        if let (true, Some(shape)) = (by_shape, shape) {
            keys.push((KeyKind::Shape, shape.clone()));
            puts.push((KeyKind::Shape, shape));
            if let Some(quick) = quick {
                keys.push((KeyKind::Quick, quick.clone()));
                puts.push((KeyKind::Quick, quick));
            }
        }
        // Shape and quick first, as before: the exact entry is the youngest.
        puts.rotate_left(1);
        let entries: Vec<(u64, Entry)> = puts
            .into_iter()
            .map(|(kind, text)| self.entry(kind, text, path, Arc::clone(&cached)))
            .collect();
        let mut maps = self.maps();
        for (h, e) in entries {
            maps.insert(self.generation, h, e);
        }
        drop(maps);
        let cached = Arc::unwrap_or_clone(cached);
        Found::Miss { cached, tree, keys }
    }

    /// The one place this cache runs the parser, counted.
    fn parse(&self, sql: &str, depth: Depth) -> Result<Vec<RawStmt>, Unparsed> {
        let tree = tree::parse(sql, depth);
        if tree.as_ref().map_or_else(Unparsed::parser_ran, |_| true) {
            self.maps().stats.parses += 1;
        }
        tree
    }

    pub fn stats(&self) -> CacheStats {
        self.maps().stats
    }

    /// Entries held (both generations).
    pub fn len(&self) -> usize {
        let maps = self.maps();
        maps.young.len() + maps.old.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        let mut maps = self.maps();
        maps.young.clear();
        maps.old.clear();
    }

    /// `get`, counting a hit. The key is hashed before the lock is taken.
    fn hit(
        &self,
        kind: KeyKind,
        text: &str,
        path: &[String],
        count: impl FnOnce(&mut CacheStats),
    ) -> Option<Arc<Cached>> {
        let h = hash(&self.state, &kind, text, path);
        let mut maps = self.maps();
        let found = maps.get(self.generation, h, kind, text, path);
        if found.is_some() {
            count(&mut maps.stats);
        }
        found
    }

    #[cfg(test)]
    fn get(&self, kind: KeyKind, text: &str, path: &[String]) -> Option<Arc<Cached>> {
        self.hit(kind, text, path, |_| {})
    }

    #[cfg(test)]
    fn put(&self, kind: KeyKind, text: String, path: &[String], cached: Arc<Cached>) {
        let (h, e) = self.entry(kind, text, path, cached);
        self.maps().insert(self.generation, h, e);
    }

    fn entry(
        &self,
        kind: KeyKind,
        text: String,
        path: &[String],
        cached: Arc<Cached>,
    ) -> (u64, Entry) {
        let h = hash(&self.state, &kind, &text, path);
        let entry = Entry {
            kind,
            text,
            search_path: path.to_vec(),
            cached,
        };
        (h, entry)
    }
}

impl Maps {
    fn get(
        &mut self,
        generation: usize,
        h: u64,
        kind: KeyKind,
        text: &str,
        path: &[String],
    ) -> Option<Arc<Cached>> {
        if let Some(e) = self.young.get(&h) {
            return e.matches(&kind, text, path).then(|| Arc::clone(&e.cached));
        }
        let e = self.old.remove(&h)?;
        if !e.matches(&kind, text, path) {
            self.old.insert(h, e);
            return None;
        }
        let cached = Arc::clone(&e.cached);
        self.insert(generation, h, e);
        Some(cached)
    }

    fn insert(&mut self, generation: usize, h: u64, entry: Entry) {
        if self.young.len() >= generation {
            self.old = std::mem::take(&mut self.young);
        }
        // A hash collision replaces the other entry; `matches` keeps lookups exact.
        self.young.insert(h, entry);
    }
}

fn memo_hash(
    state: &RandomState,
    kind: KeyKind,
    text: &str,
    path: &[String],
    paths: &[Option<Vec<String>>],
    generation: u64,
) -> u64 {
    let mut h = state.build_hasher();
    kind.hash(&mut h);
    text.hash(&mut h);
    path.hash(&mut h);
    paths.hash(&mut h);
    generation.hash(&mut h);
    h.finish()
}

fn hash(state: &RandomState, kind: &KeyKind, text: &str, path: &[String]) -> u64 {
    let mut h = state.build_hasher();
    kind.hash(&mut h);
    text.hash(&mut h);
    path.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod full_tests;
#[cfg(test)]
mod quick_key_attacks;
#[cfg(test)]
mod tests;

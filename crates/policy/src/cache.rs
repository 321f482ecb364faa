//! A bounded cache of decisions, owned by the caller (per session or shared behind a lock).
//!
//! [`decide`](crate::decide) is pure, so its answer for the same inputs can be reused. The key
//! is everything it reads: the principal, the request context and the statement's facts
//! *except their text* (pgbench-style traffic repeats one shape with new literals, and the
//! text never reaches a policy). Hits are verified field by field, so a hash collision can
//! only cost a miss, never a wrong decision. Entries belong to one loaded policy set: a
//! reload gives `Policies` a new generation and the cache empties itself.
//!
//! Eviction is generational like the facts cache: two maps, the young one becomes the old
//! one when full.

use crate::{decide, Decision, Policies, Principal, RequestContext};
use foldhash::fast::RandomState;
use model::facts::StatementFacts;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hash::{Hash, Hasher};

#[derive(Debug)]
struct Entry {
    principal: Principal,
    ctx: RequestContext,
    facts: StatementFacts,
    decision: Decision,
}

#[derive(Debug)]
pub struct DecisionCache {
    generation: usize,
    policies: u64,
    young: HashMap<u64, Entry, RandomState>,
    old: HashMap<u64, Entry, RandomState>,
    /// Keys are hashed with foldhash (per-process seed): a collision only costs a miss,
    /// as every hit is checked field by field.
    state: RandomState,
    hits: u64,
    misses: u64,
}

impl DecisionCache {
    /// A cache holding up to about `capacity` decisions.
    pub fn new(capacity: usize) -> Self {
        DecisionCache {
            generation: (capacity / 2).max(1),
            policies: 0,
            young: HashMap::default(),
            old: HashMap::default(),
            state: RandomState::default(),
            hits: 0,
            misses: 0,
        }
    }

    /// [`decide`], answered from the cache when the same question was asked before.
    pub fn decide(
        &mut self,
        policies: &Policies,
        principal: &Principal,
        facts: &StatementFacts,
        ctx: &RequestContext,
    ) -> Decision {
        if self.policies != policies.generation {
            self.young.clear();
            self.old.clear();
            self.policies = policies.generation;
        }
        let h = key_hash(&self.state, principal, facts, ctx);
        let found = self.young.get(&h).or_else(|| self.old.get(&h));
        if let Some(e) = found.filter(|e| e.matches(principal, facts, ctx)) {
            self.hits += 1;
            return e.decision.clone();
        }
        self.misses += 1;
        let decision = decide(policies, principal, facts, ctx);
        if self.young.len() >= self.generation {
            self.old = std::mem::take(&mut self.young);
        }
        let mut stored = facts.clone();
        stored.text.clear();
        self.young.insert(
            h,
            Entry {
                principal: principal.clone(),
                ctx: ctx.clone(),
                facts: stored,
                decision: decision.clone(),
            },
        );
        decision
    }

    /// (hits, misses) since creation.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

impl Entry {
    fn matches(&self, p: &Principal, f: &StatementFacts, ctx: &RequestContext) -> bool {
        self.principal == *p && self.ctx == *ctx && same_except_text(&self.facts, f)
    }
}

fn key_hash(state: &RandomState, p: &Principal, f: &StatementFacts, ctx: &RequestContext) -> u64 {
    let mut h = state.build_hasher();
    p.identity.name.hash(&mut h);
    p.identity.kind.hash(&mut h);
    p.identity.groups.hash(&mut h);
    ctx.hash(&mut h);
    // Every field but `text`; listing them all makes a new field a compile error here.
    let StatementFacts {
        text: _,
        class,
        command,
        tables_read,
        tables_written,
        columns,
        has_where,
        where_tautology,
        functions,
        dangerous,
        drops,
        truncated,
        privileges,
        routines,
        untrusted_language,
        prepared_name,
        executes_prepared,
        cursor,
        deallocate,
        session,
        temp_tables_created,
        load,
        alter_system,
        disabled_safeguards,
        catalog_writes,
        unfiltered_merge,
        opaque,
    } = f;
    (
        class,
        command,
        tables_read,
        tables_written,
        columns,
        has_where,
    )
        .hash(&mut h);
    (
        where_tautology,
        functions,
        dangerous,
        drops,
        truncated,
        privileges,
    )
        .hash(&mut h);
    (
        routines,
        untrusted_language,
        prepared_name,
        executes_prepared,
        cursor,
        deallocate,
    )
        .hash(&mut h);
    (session, temp_tables_created, load, alter_system, opaque).hash(&mut h);
    (disabled_safeguards, catalog_writes, unfiltered_merge).hash(&mut h);
    h.finish()
}

/// Equality of everything a decision can depend on.
fn same_except_text(a: &StatementFacts, b: &StatementFacts) -> bool {
    let StatementFacts {
        text: _,
        class,
        command,
        tables_read,
        tables_written,
        columns,
        has_where,
        where_tautology,
        functions,
        dangerous,
        drops,
        truncated,
        privileges,
        routines,
        untrusted_language,
        prepared_name,
        executes_prepared,
        cursor,
        deallocate,
        session,
        temp_tables_created,
        load,
        alter_system,
        disabled_safeguards,
        catalog_writes,
        unfiltered_merge,
        opaque,
    } = a;
    *class == b.class
        && *command == b.command
        && *tables_read == b.tables_read
        && *tables_written == b.tables_written
        && *columns == b.columns
        && *has_where == b.has_where
        && *where_tautology == b.where_tautology
        && *functions == b.functions
        && *dangerous == b.dangerous
        && *drops == b.drops
        && *truncated == b.truncated
        && *privileges == b.privileges
        && *routines == b.routines
        && *untrusted_language == b.untrusted_language
        && *prepared_name == b.prepared_name
        && *cursor == b.cursor
        && *deallocate == b.deallocate
        && *executes_prepared == b.executes_prepared
        && *session == b.session
        && *temp_tables_created == b.temp_tables_created
        && *load == b.load
        && *alter_system == b.alter_system
        && *disabled_safeguards == b.disabled_safeguards
        && *catalog_writes == b.catalog_writes
        && *unfiltered_merge == b.unfiltered_merge
        && *opaque == b.opaque
}

//! The policies in force and the facts cache every session shares.

use policy::{Mode, Policies};
use sql::{AnalyzeContext, FactsCache};
use std::sync::{Arc, RwLock};

/// The policies in force (swapped on reload) and the facts cache all sessions share.
pub struct PolicyEngine {
    policies: RwLock<Arc<Policies>>,
    mode: Mode,
    facts: FactsCache,
}

impl PolicyEngine {
    pub fn new(policies: Policies, mode: Mode) -> Self {
        PolicyEngine {
            policies: RwLock::new(Arc::new(policies)),
            mode,
            facts: FactsCache::new(8192),
        }
    }

    /// Installs new policies; sessions pick them up at their next statement.
    pub fn replace(&self, policies: Policies) {
        let mut g = self.policies.write().unwrap_or_else(|p| p.into_inner());
        *g = Arc::new(policies);
    }

    pub fn current(&self) -> Arc<Policies> {
        self.policies
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// One parse of `sql` (none on a cache hit that needs no lineage): every statement's
    /// facts, and the lineage of those `lineage` asks for, from the same tree.
    pub(super) fn analyze_full(
        &self,
        sql: &str,
        ctx: &AnalyzeContext,
        lineage: Option<sql::LineageRequest<'_>>,
    ) -> Vec<sql::StatementAnalysis> {
        self.facts.analyze_full(sql, ctx, lineage)
    }
}

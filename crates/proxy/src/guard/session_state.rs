//! What the session's analysis depends on, as the relay tells it and asks for it: names the
//! server resolved, probes of the search path and temporary relations, what forwarded
//! statements changed, and the policies, catalog and sensitive columns in force.

use super::*;

impl SessionGuard {
    /// Names the last `check` could not decide without the server's resolution of them.
    pub fn take_wants_names(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.wants_names)
    }

    /// The server's resolution of unqualified relation names, for the statement being
    /// checked (forgotten by `clear_names`: other sessions' DDL may change it any time).
    pub fn set_names(&mut self, names: HashMap<String, Option<String>>) {
        self.names.extend(names);
    }

    pub fn clear_names(&mut self) {
        self.names.clear();
        self.wants_names.clear();
    }

    /// The search path may have changed since it was last asked for.
    pub fn wants_probe(&self) -> bool {
        self.path_dirty
    }

    /// A digest of everything name resolution and masking rest on (search path, temporary
    /// objects, catalog, policies): a statement planned under another key may mean something
    /// else to the server now.
    pub fn resolution_key(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.analyze_ctx.search_path.hash(&mut h);
        self.temps.hash(&mut h);
        let mut temp: Vec<_> = self.temp_catalog.columns.iter().collect();
        temp.sort();
        temp.hash(&mut h);
        let mut views: Vec<_> = self.temp_catalog.views.iter().collect();
        views.sort();
        views.hash(&mut h);
        (self.path_dirty, self.temps_stale, self.temps_first).hash(&mut h);
        self.relations_generation.hash(&mut h);
        if let Some(e) = &self.effective {
            (Arc::as_ptr(&e.catalog) as usize).hash(&mut h);
            (Arc::as_ptr(&e.policies) as usize).hash(&mut h);
        }
        h.finish()
    }

    /// Whether a statement reads a view (of the catalog or of this session).
    pub fn reads_view(&self, f: &StatementFacts) -> bool {
        let Some(e) = &self.effective else {
            return false;
        };
        f.tables_read.iter().any(|t| {
            let name = bare(t);
            e.catalog.view_names.contains(name) || self.temp_catalog.views.contains_key(name)
        })
    }

    /// The last `check` needed to know the session's temporary tables exactly.
    pub fn take_wants_temps(&mut self) -> bool {
        std::mem::take(&mut self.wants_temps)
    }

    /// What the server said about the search path and temporary tables.
    pub fn probed(&mut self, p: crate::probe::Probed) {
        self.analyze_ctx.search_path = p.schemas;
        self.several_schemas = p.several_schemas;
        self.temps = p.temps;
        self.temps_first = p.temps_first;
        let empty = p.temp_columns.is_empty() && p.temp_views.is_empty();
        self.temp_catalog = TempCatalog {
            columns: p.temp_columns,
            views: p.temp_views,
            generation: if empty {
                0
            } else {
                crate::catalog::next_generation()
            },
        };
        self.temps_stale = false;
        self.path_dirty = false;
        self.server_fingerprint = p.fingerprint;
        if p.idle {
            self.path_in_tx = false;
        }
    }

    /// Whether a probe was made for the check about to run (view definitions are confirmed
    /// only by a probe made for the statement that reads them).
    pub fn set_fresh(&mut self, fresh: bool) {
        self.fresh = fresh;
    }

    /// A Sync ended the extended protocol's implicit transaction.
    pub fn synced(&mut self) {
        if self.path_in_tx {
            self.path_dirty = true;
        }
    }

    /// Whether this session's target has sensitive columns.
    pub fn masking(&self) -> bool {
        self.masking.is_some()
    }

    /// The hidden columns by origin, as of the last `check`.
    pub fn origins(&self) -> Option<Arc<Hidden>> {
        self.effective.as_ref().map(|e| e.hidden.clone())
    }

    /// Records what forwarded statements change in the session: a new `search_path`, new
    /// temporary tables, dropped ones.
    pub fn forwarded(&mut self, statements: &[StatementFacts]) {
        for f in statements {
            if changes_path(f) {
                self.path_dirty = true;
                self.path_in_tx = true;
            }
            if f.class == CommandClass::Transaction && self.path_in_tx {
                self.path_dirty = true;
            }
            if changes_temps(f) {
                self.relations_generation += 1;
                self.temps_stale = true;
                // Columns and definitions of temporary relations may be wrong from now on:
                // resolving a name to a temporary relation that is gone would trace the
                // wrong lineage, so none is known until the next probe.
                self.temp_catalog = TempCatalog::default();
            }
            for d in &f.drops {
                self.temps.remove(bare(&d.name));
            }
            for t in &f.temp_tables_created {
                self.temps.insert(bare(t).to_owned());
            }
        }
    }

    /// The policies in force now (a reload replaces them).
    pub fn policies(&self) -> Arc<policy::Policies> {
        self.engine.current()
    }

    /// The target's sensitive columns (`None` without any).
    pub fn sensitive(&self) -> Option<Arc<crate::config::SensitiveSet>> {
        self.masking.as_ref().map(|m| m.sensitive.clone())
    }

    /// The session's `search_path` as analysis resolves names against it.
    pub fn search_path(&self) -> &[String] {
        &self.analyze_ctx.search_path
    }

    /// Whether an automatic approval rule approves a held statement (see `policy::auto`).
    pub fn auto_approval(
        &self,
        statements: &[StatementFacts],
        decision: &Decision,
        hour: u8,
        in_transaction: bool,
        estimated_rows: Option<u64>,
    ) -> Option<policy::AutoApproved> {
        let mut ctx = self.base.clone();
        ctx.hour = hour;
        ctx.multi_statement = statements.len() > 1;
        self.engine
            .current()
            .auto_approval(&policy::AutoApprovalInput {
                principal: &self.principal,
                statements,
                ctx: &ctx,
                decision,
                in_transaction,
                estimated_rows,
            })
    }

    pub fn catalog(&self) -> Option<Arc<CatalogCell>> {
        self.masking.as_ref().map(|m| m.catalog.clone())
    }
}

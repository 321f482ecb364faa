//! The masking half of the guard: the sensitive columns in force (configured ones, their
//! partitions and children, which of them this principal may not see, by name and by the
//! ids RowDescription reports), and each statement's mask plan from its lineage, resolved
//! against the shared catalog plus the session's own temporary relations.

use super::{bare, changes_path, Effective, SessionGuard};
use crate::catalog::CatalogSnapshot;
use crate::config::SensitiveSet;
use crate::mask_plan::{self, MaskPlan, Refusal};
use crate::result::{Hidden, OriginMask, Origins};
use model::facts::{CommandClass, CursorOp, StatementFacts};
use policy::{Policies, RequestContext};
use sql::lineage::{ColumnRef, LineageError};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Statistics views and tables that hold sample values of columns.
const STATS_TABLES: [&str; 4] = [
    "pg_catalog.pg_stats",
    "pg_catalog.pg_statistic",
    "pg_catalog.pg_stats_ext",
    "pg_catalog.pg_stats_ext_exprs",
];

impl SessionGuard {
    /// The sensitive columns in force, rebuilt when the catalog or the policies changed (no
    /// per-session memo outlives a reload).
    pub(super) fn refresh_effective(&mut self, policies: &Arc<Policies>, ctx: &RequestContext) {
        let Some(m) = &self.masking else { return };
        let catalog = m.catalog.get();
        if let Some(e) = &self.effective {
            if Arc::ptr_eq(&e.catalog, &catalog) && Arc::ptr_eq(&e.policies, policies) {
                return;
            }
            if !Arc::ptr_eq(&e.policies, policies) {
                self.unmask.clear();
            }
        }
        let mut sensitive = (*m.sensitive).clone();
        for (child, parent) in &catalog.children {
            if let Some(s) = m.sensitive.columns.get(parent) {
                sensitive.columns.insert(child.clone(), s.clone());
            }
        }
        let mut origins = Origins::new();
        let mut none = true;
        for (c, s) in &sensitive.columns {
            let canonical = catalog.children.get(c).unwrap_or(c);
            let visible = *self.unmask.entry(canonical.clone()).or_insert_with(|| {
                policy::may_unmask(
                    policies,
                    &self.principal,
                    &canonical.to_string(),
                    &s.tags,
                    ctx,
                )
            });
            none &= visible;
            if let (false, Some(id)) = (visible, catalog.ids.get(c)) {
                let mask = OriginMask {
                    strategy: s.strategy,
                    tags: s.tags.clone(),
                };
                origins.insert(*id, mask);
            }
        }
        self.effective = Some(Effective {
            catalog,
            policies: policies.clone(),
            sensitive: Arc::new(sensitive),
            hidden: Arc::new(Hidden { origins, none }),
        });
    }

    /// Analyses `sql` with one parse: every statement's facts, and the lineage of each
    /// statement masking needs it for, traced with the search path in force for that
    /// statement (a SET earlier in the same string applies to the statements after it, which
    /// run only if it succeeded; anything that changes the path in a way that cannot be
    /// followed here, or a path not confirmed since it may have changed, leaves it unknown).
    pub(super) fn analyze(
        &mut self,
        sql: &str,
        policies: &Arc<Policies>,
        ctx: &RequestContext,
    ) -> (Vec<sql::StatementAnalysis>, Vec<Wanted>) {
        self.refresh_effective(policies, ctx);
        let engine = self.engine.clone();
        let (Some(m), Some(eff)) = (&self.masking, &self.effective) else {
            let a = engine.analyze_full(sql, &self.analyze_ctx, None);
            let w = a.iter().map(|_| Wanted::default()).collect();
            return (a, w);
        };
        let catalog = eff.catalog.clone();
        let sensitive = eff.sensitive.clone();
        let user = m.upstream_user.clone();
        let expand = |path: &[String]| -> Vec<String> {
            path.iter()
                .map(|p| {
                    if p == "$user" {
                        user.clone()
                    } else {
                        p.clone()
                    }
                })
                .collect()
        };
        let mut path = (!self.path_dirty).then(|| expand(&self.analyze_ctx.search_path));
        let mut changed = false;
        // DDL (or code that could run some) earlier in the string changes what lineage would
        // read in the catalog before the later statements run.
        let mut schema_changed = false;
        let mut wanted = Vec::new();
        let (temps, temp_views) = (&self.temps, &self.temp_catalog.views);
        let mut want = |_: usize, f: &StatementFacts| -> Option<Vec<String>> {
            let here = path.clone();
            if changes_path(f) {
                changed = true;
                path = match &f.session.search_path {
                    Some(p) if !p.is_empty() && f.class == CommandClass::Session => Some(expand(p)),
                    _ => None,
                };
            } else if changed && f.class == CommandClass::Transaction {
                path = None;
            }
            let needed = needs_lineage(f, &catalog, &sensitive, temps, temp_views);
            wanted.push(Wanted {
                needed,
                path: here.clone(),
                after_schema_change: schema_changed,
            });
            schema_changed |= matches!(f.class, CommandClass::Ddl | CommandClass::CallDo)
                || f.functions
                    .iter()
                    .any(|n| !sql::lineage::is_inert_builtin(n));
            if needed {
                here
            } else {
                None
            }
        };
        let overlay = SessionCatalog {
            base: catalog.as_ref(),
            temp: &self.temp_catalog,
        };
        let request = sql::LineageRequest {
            catalog: &overlay,
            wanted: &mut want,
        };
        let analyses = engine.analyze_full(sql, &self.analyze_ctx, Some(request));
        // Every statement must have been asked about; fail closed if not.
        wanted.resize_with(analyses.len(), || Wanted {
            needed: true,
            path: None,
            after_schema_change: true,
        });
        (analyses, wanted)
    }

    /// The mask plan of each statement, from the lineage `analyze` traced, or why the
    /// string must be refused.
    pub(super) fn masks(
        &mut self,
        statements: &[StatementFacts],
        traced: Vec<Traced>,
        wanted: &[Wanted],
        policies: &Arc<Policies>,
        ctx: &RequestContext,
    ) -> Result<Vec<Option<Arc<MaskPlan>>>, MaskError> {
        let none = vec![None; statements.len()];
        let Some(eff) = &self.effective else {
            return Ok(none);
        };
        if self.masking.is_none() {
            return Ok(none);
        }
        let catalog = eff.catalog.clone();
        let sensitive = eff.sensitive.clone();
        // Schema changes that involve a table with sensitive columns can move its values
        // where lineage does not look (a trigger, a column default, a function that shadows
        // a built-in, a renamed column): only for principals who may see them all. A view's
        // definition is traced by lineage, so views may be created over them.
        if let Some(f) = statements.iter().find(|f| ddl_on_sensitive(f, &sensitive)) {
            if !eff.hidden.none {
                return Err(MaskError::Refused(Refusal(format!(
                    "{} involves a table with sensitive columns; schema changes to such tables need a principal who may see those columns",
                    f.command
                ))));
            }
        }
        if !wanted.iter().any(|w| w.needed) {
            return Ok(none);
        }
        // A view read through definitions the server no longer has would be masked by the
        // wrong lineage (a view replaced directly on the database, a moment ago).
        let reads_view = statements.iter().zip(wanted).any(|(f, w)| {
            w.needed
                && f.tables_read
                    .iter()
                    .any(|t| catalog.view_names.contains(bare(t)))
        });
        let confirmed =
            self.fresh && self.server_fingerprint.as_deref() == Some(catalog.fingerprint.as_str());
        if reads_view && !confirmed {
            return Err(MaskError::Stale);
        }
        if let Some(t) = statements
            .iter()
            .flat_map(|f| &f.tables_read)
            .find(|t| STATS_TABLES.contains(&t.as_str()))
        {
            return Err(MaskError::Refused(Refusal(format!(
                "{t} holds sample values of columns; reading it is not allowed"
            ))));
        }
        let principal = self.principal.clone();
        let unmask = &mut self.unmask;
        let children = &catalog.children;
        let mut visible = |c: &ColumnRef| {
            let canonical = children.get(c).unwrap_or(c);
            *unmask.entry(canonical.clone()).or_insert_with(|| {
                let tags = sensitive
                    .columns
                    .get(c)
                    .map(|s| s.tags.clone())
                    .unwrap_or_default();
                policy::may_unmask(policies, &principal, &canonical.to_string(), &tags, ctx)
            })
        };
        let mut out = Vec::with_capacity(statements.len());
        for ((f, t), w) in statements.iter().zip(traced).zip(wanted) {
            if !w.needed {
                out.push(None);
                continue;
            }
            // With pg_catalog named after another schema, an unqualified `lower(…)` or `||`
            // may be a function or operator of that schema, not the built-in lineage
            // assumes: only principals who may see everything may run such statements.
            let shadowed = w
                .path
                .as_ref()
                .and_then(|p| p.iter().position(|s| s == "pg_catalog"))
                .is_some_and(|i| i > 0);
            if shadowed && !sensitive.columns.keys().all(&mut visible) {
                return Err(MaskError::Refused(Refusal(
                    "the search path names pg_catalog after another schema, so built-in functions and operators may be shadowed".into(),
                )));
            }
            if w.after_schema_change {
                return Err(MaskError::Refused(Refusal(
                    "a statement earlier in this string changes the schema, so what this one reads cannot be checked before it runs; send it separately".into(),
                )));
            }
            if w.path.is_none() {
                return Err(MaskError::Refused(Refusal(
                    "the search path changed in a way Gatehouse cannot confirm before this statement (earlier in the same string or pipeline, or in a failed transaction); send the statements that depend on it separately, after a Sync".into(),
                )));
            }
            let traced = t
                .lineage
                .unwrap_or_else(|| Err(LineageError::Unsupported("no lineage traced".into())));
            let l = match traced {
                Ok(l) => l,
                Err(LineageError::UnknownRelation(r)) => return Err(MaskError::Unknown(r)),
                Err(e) => {
                    // Unprovable: allowed only if every sensitive column is visible anyway.
                    if sensitive.columns.keys().all(&mut visible) {
                        out.push(None);
                        continue;
                    }
                    return Err(MaskError::Refused(Refusal(format!(
                        "cannot prove which columns the result carries ({e})"
                    ))));
                }
            };
            // Functions of unknown body may read sensitive tables themselves (`SELECT
            // leak()`): allowed only for principals who may see every sensitive column.
            if let Some(func) = l.unknown_functions.iter().next() {
                if !sensitive.columns.keys().all(&mut visible) {
                    return Err(MaskError::Refused(Refusal(format!(
                        "function {func} has an unknown body and could return sensitive values"
                    ))));
                }
            }
            let plan = mask_plan::plan(&l, &sensitive, &mut visible).map_err(MaskError::Refused)?;
            // COPY rows are rewritten only in the default text format; anything else (CSV,
            // binary, custom delimiters) is refused rather than leaked.
            let copy_ok = t.copy_out == Some(sql::copy::CopyOut::DefaultText);
            if plan.is_some() && f.class == CommandClass::Copy && !copy_ok {
                return Err(MaskError::Refused(Refusal(
                    "COPY of sensitive columns is allowed only TO STDOUT in the default text format".into(),
                )));
            }
            out.push(plan.map(Arc::new));
        }
        Ok(out)
    }
}

/// DDL that reads or changes a table with sensitive columns, in its own text or in the body
/// of code it creates. Not: creating a view (lineage traces views), creating a table (a new
/// table holds nothing; CREATE TABLE AS is traced as a write), dropping (the guardrails
/// decide drops, and a drop moves no value).
fn ddl_on_sensitive(f: &StatementFacts, sensitive: &SensitiveSet) -> bool {
    matches!(f.class, CommandClass::Ddl)
        && !f.command.ends_with("VIEW")
        && !f.command.starts_with("CREATE TABLE")
        && !f.command.starts_with("DROP")
        && f.tables_read
            .iter()
            .chain(&f.tables_written)
            .any(|t| sensitive.columns.keys().any(|c| c.table == bare(t)))
}

/// What `analyze` decided about one statement's lineage.
#[derive(Debug, Clone, Default)]
pub(super) struct Wanted {
    /// Masking needs its lineage.
    pub needed: bool,
    /// The search path it was traced with; `None`: unknown (see `analyze`).
    pub path: Option<Vec<String>>,
    /// It comes after DDL in the same string (lineage read the catalog as it was before).
    pub after_schema_change: bool,
}

/// What one parse gave besides the facts.
pub(super) struct Traced {
    pub lineage: Option<Result<sql::lineage::Lineage, LineageError>>,
    pub copy_out: Option<sql::copy::CopyOut>,
}

/// The session's temporary relations, which the shared catalog never holds.
#[derive(Debug, Default)]
pub(super) struct TempCatalog {
    pub(super) columns: HashMap<String, Vec<String>>,
    pub(super) views: HashMap<String, String>,
    /// `catalog::next_generation` when probed; 0 when empty (all empty ones are alike).
    pub(super) generation: u64,
}

/// The shared catalog with this session's temporary relations in `pg_temp`, where lineage
/// looks first for an unqualified name (as the server does).
struct SessionCatalog<'a> {
    base: &'a CatalogSnapshot,
    temp: &'a TempCatalog,
}

impl sql::lineage::Catalog for SessionCatalog<'_> {
    fn columns(&self, schema: &str, table: &str) -> Option<Vec<String>> {
        if schema == "pg_temp" || schema.starts_with("pg_temp_") {
            return self.temp.columns.get(table).cloned();
        }
        self.base.columns(schema, table)
    }

    fn view_definition(&self, schema: &str, table: &str) -> Option<String> {
        if schema == "pg_temp" || schema.starts_with("pg_temp_") {
            return self.temp.views.get(table).cloned();
        }
        self.base.view_definition(schema, table)
    }

    fn generation(&self) -> Option<u64> {
        let base = sql::lineage::Catalog::generation(self.base)?;
        if self.temp.generation == 0 {
            return Some(base);
        }
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (base, self.temp.generation).hash(&mut h);
        Some(h.finish())
    }
}

/// Why masking could not plan a string.
pub(super) enum MaskError {
    Refused(Refusal),
    Unknown(String),
    Stale,
}

/// Whether a statement's rows need lineage: it reads or writes a sensitive table, a view, a
/// statistics table, a relation the catalog does not know, or calls a function. FETCH,
/// EXECUTE and their kin take the plan of what they name instead.
fn needs_lineage(
    f: &StatementFacts,
    catalog: &CatalogSnapshot,
    sensitive: &SensitiveSet,
    temps: &BTreeSet<String>,
    temp_views: &HashMap<String, String>,
) -> bool {
    if (f.executes_prepared.is_some() && f.command == "EXECUTE")
        || f.deallocate.is_some()
        || matches!(
            f.cursor,
            Some(CursorOp::Fetch { .. } | CursorOp::Close { .. })
        )
    {
        return false;
    }
    // Facts name tables syntactically (the first search_path schema), while the server
    // takes the first schema where the table exists: compare bare names, so a table reached
    // through another schema still goes through lineage (which uses the catalog).
    f.tables_read.iter().chain(&f.tables_written).any(|t| {
        let name = bare(t);
        sensitive.columns.keys().any(|c| c.table == name)
            || catalog.view_names.contains(name)
            || temp_views.contains_key(name)
            || STATS_TABLES.iter().any(|s| bare(s) == name)
            || (!catalog.names.contains(name) && !temps.contains(name))
    }) || !f.functions.is_empty()
}

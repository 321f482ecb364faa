//! The decide phase of a session: SQL text → facts (the `sql` crate, cached) → a decision
//! (the `policy` crate) → a verdict the relay enforces. Also the session state analysis
//! depends on: the `search_path` names resolve against and the temporary tables this
//! session created (which it may drop).
//!
//! Nothing here touches sockets; `relay_up` forwards only what a `Verdict::Forward` allows.

use crate::catalog::CatalogCell;
use crate::config::SensitiveSet;
use crate::mask_plan::{self, MaskPlan, Refusal};
use model::decision::Decision;
use model::facts::StatementFacts;
use model::Identity;
use policy::{DecisionCache, Mode, Policies, Principal, RequestContext};
use sql::lineage::ColumnRef;
use sql::{AnalyzeContext, FactsCache};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

/// Statistics views and tables that hold sample values of columns.
const STATS_TABLES: [&str; 4] = [
    "pg_catalog.pg_stats",
    "pg_catalog.pg_statistic",
    "pg_catalog.pg_stats_ext",
    "pg_catalog.pg_stats_ext_exprs",
];

/// The policies in force (swapped on reload) and the facts cache all sessions share.
pub struct PolicyEngine {
    policies: RwLock<Arc<Policies>>,
    mode: Mode,
    facts: Mutex<FactsCache>,
}

impl PolicyEngine {
    pub fn new(policies: Policies, mode: Mode) -> Self {
        PolicyEngine {
            policies: RwLock::new(Arc::new(policies)),
            mode,
            facts: Mutex::new(FactsCache::new(8192)),
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

    fn analyze(&self, sql: &str, ctx: &AnalyzeContext) -> Vec<StatementFacts> {
        let mut cache = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        cache.analyze(sql, ctx).statements
    }
}

/// What to do with a query string or a Parse.
pub enum Verdict {
    /// Forward. `shadow` is set when policy refused it but shadow mode lets it run. `masks`
    /// has one entry per statement (None: nothing to mask).
    Forward {
        statements: Vec<StatementFacts>,
        decision: Decision,
        shadow: bool,
        masks: Vec<Option<Arc<MaskPlan>>>,
    },
    /// Refuse the whole string; nothing of it reaches the database.
    Refuse {
        statements: Vec<StatementFacts>,
        decision: Decision,
    },
}

/// What masking needs of the session's target.
pub struct MaskingCtx {
    pub sensitive: Arc<SensitiveSet>,
    pub catalog: Arc<CatalogCell>,
    /// The upstream session user, which `$user` in search_path names.
    pub upstream_user: String,
}

/// Per-session analysis state.
pub struct SessionGuard {
    masking: Option<MaskingCtx>,
    /// Memo of `may_unmask` per column for this session's principal and policies.
    unmask: HashMap<ColumnRef, bool>,
    engine: Arc<PolicyEngine>,
    principal: Principal,
    base: RequestContext,
    analyze_ctx: AnalyzeContext,
    temps: BTreeSet<String>,
    decisions: DecisionCache,
}

impl SessionGuard {
    pub fn new(
        engine: Arc<PolicyEngine>,
        identity: Identity,
        base: RequestContext,
        masking: Option<MaskingCtx>,
    ) -> Self {
        SessionGuard {
            masking: masking.filter(|m| !m.sensitive.is_empty()),
            unmask: HashMap::new(),
            engine,
            principal: Principal { identity },
            base,
            analyze_ctx: AnalyzeContext::default(),
            temps: BTreeSet::new(),
            decisions: DecisionCache::new(1024),
        }
    }

    /// Analyses and decides `sql` (every statement of it) at UTC hour `hour`.
    pub fn check(&mut self, sql: &str, hour: u8) -> Verdict {
        let statements = self.engine.analyze(sql, &self.analyze_ctx);
        let policies = self.engine.current();
        let mut ctx = self.base.clone();
        ctx.hour = hour;
        ctx.multi_statement = statements.len() > 1;
        let decision = self.decide_all(&policies, &statements, &ctx);
        let refuse = |statements, reason: String| Verdict::Refuse {
            statements,
            decision: Decision::Deny {
                reason,
                policy_id: "gatehouse.masking".into(),
                hint: Some("select only columns you may see, or ask for unmask permission".into()),
                policies: Vec::new(),
            },
        };
        let masks = match self.masks(sql, &statements, &policies, &ctx) {
            Ok(m) => m,
            // Masking never fails open, in shadow mode either: shadow mode is for trying
            // policies, and an unmasked result cannot be taken back.
            Err(Refusal(reason)) => return refuse(statements, reason),
        };
        match (decision.is_allow(), self.engine.mode()) {
            (true, _) => Verdict::Forward {
                statements,
                decision,
                shadow: false,
                masks,
            },
            (false, Mode::Shadow) => Verdict::Forward {
                statements,
                decision,
                shadow: true,
                masks,
            },
            (false, Mode::Enforce) => Verdict::Refuse {
                statements,
                decision,
            },
        }
    }

    /// The mask plan of each statement, or why the string must be refused.
    fn masks(
        &mut self,
        sql: &str,
        statements: &[StatementFacts],
        policies: &Policies,
        ctx: &RequestContext,
    ) -> Result<Vec<Option<Arc<MaskPlan>>>, Refusal> {
        let none = vec![None; statements.len()];
        let Some(m) = &self.masking else {
            return Ok(none);
        };
        let catalog = m.catalog.get();
        // Facts name tables syntactically (the first search_path schema), while the server
        // takes the first schema where the table exists: compare bare names, so a table
        // reached through another schema still goes through lineage (which uses the catalog).
        let touched = |f: &StatementFacts| {
            f.tables_read.iter().chain(&f.tables_written).any(|t| {
                let name = bare(t);
                let view = catalog.views.keys().any(|(_, v)| v == name);
                m.sensitive.columns.keys().any(|c| c.table == name)
                    || view
                    || STATS_TABLES.iter().any(|s| bare(s) == name)
            })
            // A function may read a sensitive table inside its body: lineage decides.
            || !f.functions.is_empty()
        };
        if !statements.iter().any(touched) {
            return Ok(none);
        }
        if let Some(t) = statements
            .iter()
            .flat_map(|f| &f.tables_read)
            .find(|t| STATS_TABLES.contains(&t.as_str()))
        {
            return Err(Refusal(format!(
                "{t} holds sample values of columns; reading it is not allowed"
            )));
        }
        let sensitive = m.sensitive.clone();
        let principal = self.principal.clone();
        let unmask = &mut self.unmask;
        let mut visible = |c: &ColumnRef| {
            *unmask.entry(c.clone()).or_insert_with(|| {
                let tags = sensitive
                    .columns
                    .get(c)
                    .map(|s| s.tags.clone())
                    .unwrap_or_default();
                policy::may_unmask(policies, &principal, &c.to_string(), &tags, ctx)
            })
        };
        let search_path: Vec<String> = self
            .analyze_ctx
            .search_path
            .iter()
            .map(|p| {
                if p == "$user" {
                    m.upstream_user.clone()
                } else {
                    p.clone()
                }
            })
            .collect();
        let lineages = match sql::lineage::lineage_each(sql, &search_path, catalog.as_ref()) {
            Ok(l) => l,
            Err(e) => {
                // Unprovable: allowed only if every sensitive column is visible anyway.
                if sensitive.columns.keys().all(&mut visible) {
                    return Ok(none);
                }
                return Err(Refusal(format!(
                    "cannot prove which columns the result carries ({e})"
                )));
            }
        };
        // Functions of unknown body may read sensitive tables themselves (`SELECT leak()`):
        // allowed only for principals who may see every sensitive column.
        if let Some(f) = lineages.iter().flat_map(|l| &l.unknown_functions).next() {
            if !sensitive.columns.keys().all(&mut visible) {
                return Err(Refusal(format!(
                    "function {f} has an unknown body and could return sensitive values"
                )));
            }
        }
        let mut out = Vec::with_capacity(lineages.len());
        for (l, f) in lineages.iter().zip(statements) {
            let plan = mask_plan::plan(l, &sensitive, &mut visible)?;
            // COPY rows travel as CopyData, which is not rewritten: refuse rather than leak.
            // COPY rows are rewritten only in the default text format; anything else
            // (CSV, binary, custom delimiters) is refused rather than leaked.
            let copy_ok =
                sql::copy::copy_to_stdout(&f.text) == Some(sql::copy::CopyOut::DefaultText);
            if plan.is_some() && f.class == model::facts::CommandClass::Copy && !copy_ok {
                return Err(Refusal(
                    "COPY of sensitive columns is allowed only TO STDOUT in the default text format".into(),
                ));
            }

            out.push(plan.map(Arc::new));
        }
        if out.len() != statements.len() {
            return Err(Refusal("statement split disagrees with lineage".into()));
        }
        Ok(out)
    }

    /// `policy::decide_all` through this session's decision cache: allowed only if every
    /// statement is; otherwise the first denial (before any needs-approval).
    fn decide_all(
        &mut self,
        policies: &Policies,
        stmts: &[StatementFacts],
        ctx: &RequestContext,
    ) -> Decision {
        let mut allowed = Vec::new();
        let mut approval = None;
        // Temporary tables created earlier in the same string count as the session's own.
        let mut temps = self.temps.clone();
        for facts in stmts {
            let mut c = ctx.clone();
            c.drops_only_session_temp = facts.drops_only_session_temp(&temps);
            temps.extend(facts.temp_tables_created.iter().map(|t| bare(t).to_owned()));
            match self.decisions.decide(policies, &self.principal, facts, &c) {
                Decision::Allow { policies } => allowed.extend(policies),
                d @ Decision::Deny { .. } => return d,
                d @ Decision::NeedsApproval { .. } => {
                    approval.get_or_insert(d);
                }
            }
        }
        if let Some(d) = approval {
            return d;
        }
        allowed.sort();
        allowed.dedup();
        Decision::Allow { policies: allowed }
    }

    /// Records what forwarded statements change in the session: a new `search_path`, new
    /// temporary tables.
    pub fn forwarded(&mut self, statements: &[StatementFacts]) {
        for f in statements {
            if let Some(path) = &f.session.search_path {
                if !f.session.local {
                    self.analyze_ctx.search_path.clone_from(path);
                }
            }
            for t in &f.temp_tables_created {
                self.temps.insert(bare(t).to_owned());
            }
            // Schema changes can move columns and views: refresh the lineage catalog.
            if f.class == model::facts::CommandClass::Ddl {
                if let Some(m) = &self.masking {
                    m.catalog.changed.notify_one();
                }
            }
        }
    }
}

/// A table name without its schema.
fn bare(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The client-facing text of a refusal: message, DETAIL (policy id) and HINT.
pub fn refusal_text(decision: &Decision) -> (String, String, Option<String>) {
    match decision {
        Decision::Deny { reason, policy_id, hint, .. } => (
            format!("gatehouse: {reason}"),
            format!("policy: {policy_id}"),
            hint.clone(),
        ),
        Decision::NeedsApproval { reason, policy_id, approver_group, .. } => (
            format!("gatehouse: approval required: {reason}"),
            format!("policy: {policy_id}; approver group: {approver_group}"),
            Some(format!(
                "ask a member of \"{approver_group}\" to approve; approvals are not yet available, so this statement is refused"
            )),
        ),
        Decision::Allow { .. } => ("gatehouse: allowed".into(), String::new(), None),
    }
}

/// What the audit trail records of an analysed statement besides its text.
#[derive(Debug, Clone, Default)]
pub struct Annotation {
    pub decision: Option<String>,
    pub policies: Vec<String>,
    pub command: Option<String>,
    pub tables: Vec<String>,
    pub mask: Option<Arc<MaskPlan>>,
}

impl Annotation {
    pub fn new(facts: Option<&StatementFacts>, decision: &Decision, shadow: bool) -> Self {
        let label = if shadow {
            "shadow_deny"
        } else {
            decision.label()
        };
        let mut note = Annotation {
            decision: Some(label.to_owned()),
            policies: decision.policies().to_vec(),
            ..Annotation::default()
        };
        if let Some(f) = facts {
            note.command = Some(format!("{}:{}", f.class, f.command));
            let tables: BTreeSet<&String> = f.tables_read.iter().chain(&f.tables_written).collect();
            note.tables = tables.into_iter().cloned().collect();
        }
        note
    }

    pub fn apply(&self, ev: &mut model::AuditEvent) {
        ev.decision.clone_from(&self.decision);
        ev.policies.clone_from(&self.policies);
        ev.command.clone_from(&self.command);
        ev.tables.clone_from(&self.tables);
        if let Some(m) = &self.mask {
            ev.masked = m.summary();
        }
    }
}

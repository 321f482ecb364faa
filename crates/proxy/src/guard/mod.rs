//! The decide phase of a session: SQL text → facts (the `sql` crate, cached) → a decision
//! (the `policy` crate) → a verdict the relay enforces, with each statement's mask plan (or
//! the name its rows come from: a cursor, a prepared statement). Also the session state
//! analysis depends on: the `search_path` names resolve against and the temporary tables this
//! session created (which it may drop), and the sensitive columns in force (configured ones,
//! their partitions and children, and which of them this principal may not see).
//!
//! Nothing here touches sockets; `relay_up` forwards only what a `Verdict::Forward` allows.

mod names;
use names::{changes_path, changes_temps};
pub use names::{resolve_sql, resolved};
mod engine;
mod masks;
pub use engine::PolicyEngine;
mod session_state;

use crate::catalog::{CatalogCell, CatalogSnapshot};
use crate::config::SensitiveSet;
use crate::mask_plan::{MaskPlan, Refusal};
use crate::result::Hidden;
use crate::state::{self, Effect, Plan};
use masks::{MaskError, TempCatalog};
use model::decision::Decision;
use model::facts::{CommandClass, StatementFacts};
use model::Identity;
use policy::{DecisionCache, Mode, Policies, Principal, RequestContext};
use sql::lineage::ColumnRef;
use sql::AnalyzeContext;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// What to do with a query string or a Parse.
pub enum Verdict {
    /// Forward. `shadow` is set when policy refused it but shadow mode lets it run. `plans`
    /// has one entry per statement.
    Forward {
        statements: Vec<StatementFacts>,
        decision: Decision,
        shadow: bool,
        plans: Vec<Planned>,
    },
    /// Refuse the whole string; nothing of it reaches the database.
    Refuse {
        statements: Vec<StatementFacts>,
        decision: Decision,
    },
    /// Needs a person's approval (`decision` is `NeedsApproval`): held where holding is
    /// possible, else refused. `plans` are what it runs with once approved.
    Hold {
        statements: Vec<StatementFacts>,
        decision: Decision,
        plans: Vec<Planned>,
    },
    /// A relation the catalog does not know: reload the catalog, then check again once.
    UnknownRelation(String),
    /// The string reads a view, and the catalog's view definitions were not confirmed to be
    /// the server's in this check: probe, reload the catalog if it differs, check again.
    Stale,
}

/// How one statement's rows are masked and what it changes in the session's namespaces.
#[derive(Debug, Clone)]
pub struct Planned {
    pub result: Plan,
    pub effects: Arc<[Effect]>,
    /// The statement's own mask plan (for the audit trail).
    pub mask: Option<Arc<MaskPlan>>,
}

/// What masking needs of the session's target.
pub struct MaskingCtx {
    pub sensitive: Arc<SensitiveSet>,
    pub catalog: Arc<CatalogCell>,
    /// The upstream session user, which `$user` in search_path names.
    pub upstream_user: String,
}

/// The sensitive columns in force for one catalog snapshot and one policy set.
struct Effective {
    catalog: Arc<CatalogSnapshot>,
    policies: Arc<Policies>,
    /// Configured columns plus the same columns of every partition and inheritance child.
    sensitive: Arc<SensitiveSet>,
    /// Which of them this principal may not see, by the ids RowDescription reports.
    hidden: Arc<Hidden>,
}

/// Per-session analysis state.
pub struct SessionGuard {
    masking: Option<MaskingCtx>,
    effective: Option<Effective>,
    /// Memo of `may_unmask` per column for this session's principal and policies.
    unmask: HashMap<ColumnRef, bool>,
    engine: Arc<PolicyEngine>,
    principal: Principal,
    base: RequestContext,
    analyze_ctx: AnalyzeContext,
    /// The session's temporary tables: what the last probe said, then what statements
    /// forwarded since created or dropped (exact only while `temps_stale` is false).
    temps: BTreeSet<String>,
    /// Something that can create or drop temporary tables ran since the last probe.
    temps_stale: bool,
    /// Unqualified names find temporary tables first (`pg_temp` not named later in the path).
    temps_first: bool,
    /// The last `check` would have decided a DROP on stale knowledge of temporary tables.
    wants_temps: bool,
    /// Columns and view definitions of the session's temporary relations, as last probed.
    temp_catalog: TempCatalog,
    /// Something that can change the search path ran since the last probe.
    path_dirty: bool,
    /// The catalog fingerprint the session saw at the last probe, and whether that probe
    /// was made for the check in progress.
    server_fingerprint: Option<String>,
    fresh: bool,
    /// A search path change happened in a transaction not yet seen to end: its end (a
    /// rollback) can undo it.
    path_in_tx: bool,
    decisions: DecisionCache,
    /// Where the server resolves unqualified relation names (bare name → schema, `None`: no
    /// such relation), asked for the statement being checked (see `names`).
    names: HashMap<String, Option<String>>,
    /// Names the last `check` needed the server to resolve.
    wants_names: BTreeSet<String>,
    /// Statements forwarded that may have created, renamed, moved or dropped relations (DDL,
    /// DO/CALL, functions, transaction ends): prepared statements are decided again after.
    relations_generation: u64,
    /// The raw search path names several schemas (see `probe::Probed::several_schemas`).
    several_schemas: bool,
    /// A stand-in left by `lend` while the session's guard checks a large string on another
    /// thread: it refuses everything (it is never meant to be asked).
    lent: bool,
}

impl SessionGuard {
    pub fn new(
        engine: Arc<PolicyEngine>,
        identity: Identity,
        base: RequestContext,
        masking: Option<MaskingCtx>,
    ) -> Self {
        let masking = masking.filter(|m| !m.sensitive.is_empty());
        SessionGuard {
            masking,
            effective: None,
            unmask: HashMap::new(),
            engine,
            principal: Principal { identity },
            base,
            analyze_ctx: AnalyzeContext::default(),
            temps: BTreeSet::new(),
            temps_stale: false,
            temps_first: true,
            wants_temps: false,
            temp_catalog: TempCatalog::default(),
            // The role or database may have a search_path of its own: ask before the first
            // statement (decisions and masking depend on it).
            path_dirty: true,
            path_in_tx: false,
            server_fingerprint: None,
            fresh: false,
            decisions: DecisionCache::new(1024),
            names: HashMap::new(),
            wants_names: BTreeSet::new(),
            relations_generation: 0,
            several_schemas: true,
            lent: false,
        }
    }

    /// Takes this guard out (to check a large string on a blocking thread, see
    /// `relay_up::check`), leaving a stand-in that refuses every statement until the guard
    /// is put back.
    pub fn lend(&mut self) -> SessionGuard {
        let mut stand_in = SessionGuard::new(
            self.engine.clone(),
            self.principal.identity.clone(),
            self.base.clone(),
            None,
        );
        stand_in.lent = true;
        std::mem::replace(self, stand_in)
    }

    /// Analyses and decides `sql` (every statement of it) at UTC hour `hour`. `prepared`
    /// gives the facts of a statement prepared earlier in the session, for EXECUTE.
    pub fn check(
        &mut self,
        sql: &str,
        hour: u8,
        prepared: &dyn Fn(&str) -> Option<StatementFacts>,
    ) -> Verdict {
        if self.lent {
            return Verdict::Refuse {
                statements: Vec::new(),
                decision: Decision::Deny {
                    reason: "the session's analysis state is busy with another statement".into(),
                    policy_id: "gatehouse.session".into(),
                    hint: None,
                    policies: Vec::new(),
                },
            };
        }
        let policies = self.engine.current();
        let mut ctx = self.base.clone();
        ctx.hour = hour;
        let (analyses, wanted) = self.analyze(sql, &policies, &ctx);
        let (mut statements, traced): (Vec<StatementFacts>, Vec<masks::Traced>) = analyses
            .into_iter()
            .map(|a| {
                let t = masks::Traced {
                    lineage: a.lineage,
                    copy_out: a.copy_out,
                };
                (a.facts, t)
            })
            .unzip();
        for f in &mut statements {
            substitute_execute(f, prepared);
        }
        // Unqualified names resolved as the server does (see `names`).
        // What names mean must be the server's: a path not confirmed since it may have
        // changed, or one changed earlier in this very string, leaves it unknown for every
        // statement that names a relation.
        if (self.path_dirty || names::changed_within(&statements))
            && statements.iter().any(names::names_relations)
        {
            return Verdict::Refuse {
                statements,
                decision: names::unconfirmed_path(),
            };
        }
        let unresolved = names::requalify(
            &mut statements,
            &self.analyze_ctx.search_path,
            self.several_schemas,
            &self.names,
        );
        if !unresolved.is_empty() {
            self.wants_names = unresolved;
            return Verdict::Refuse {
                statements,
                decision: names::ambiguous(),
            };
        }
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
        let masks = match self.masks(&statements, traced, &wanted, &policies, &ctx) {
            Ok(m) => m,
            Err(MaskError::Unknown(r)) => return Verdict::UnknownRelation(r),
            Err(MaskError::Stale) => return Verdict::Stale,
            // Masking never fails open, in shadow mode either: shadow mode is for trying
            // policies, and an unmasked result cannot be taken back.
            Err(MaskError::Refused(Refusal(reason))) => return refuse(statements, reason),
        };
        let plans = statements
            .iter()
            .zip(masks)
            .map(|(f, m)| plan_of(f, m))
            .collect();
        match (decision.is_allow(), self.engine.mode()) {
            (true, _) => Verdict::Forward {
                statements,
                decision,
                shadow: false,
                plans,
            },
            (false, Mode::Shadow) => Verdict::Forward {
                statements,
                decision,
                shadow: true,
                plans,
            },
            (false, Mode::Enforce) if matches!(decision, Decision::NeedsApproval { .. }) => {
                Verdict::Hold {
                    statements,
                    decision,
                    plans,
                }
            }
            (false, Mode::Enforce) => Verdict::Refuse {
                statements,
                decision,
            },
        }
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
        // Temporary tables count as the session's own only as the server last confirmed them
        // (and only where unqualified names find them first); created earlier in the same
        // string, they count too, and dropped earlier in it, no longer.
        let exact = !self.temps_stale && self.temps_first;
        let mut temps = if exact {
            let views = self.temp_catalog.views.keys().cloned();
            self.temps.iter().cloned().chain(views).collect()
        } else {
            BTreeSet::new()
        };
        let known = temps.clone();
        for facts in stmts {
            if !exact
                && facts
                    .drops
                    .iter()
                    .any(|d| !d.explicit_schema || d.name.starts_with("pg_temp"))
            {
                self.wants_temps = true;
            }
            let mut c = ctx.clone();
            c.drops_only_session_temp = facts.drops_only_session_temp(&temps);
            for d in &facts.drops {
                temps.remove(bare(&d.name));
            }
            if facts.class == CommandClass::Transaction {
                // A rollback in the string may undo what it created.
                temps.retain(|t| known.contains(t));
            }
            if names::blurs_temps(facts) {
                // DISCARD, a rename, a path change or code: which temporary tables exist (and
                // whether unqualified names find them first) is unknown for the rest of it.
                temps.clear();
            }
            temps.extend(facts.temp_tables_created.iter().map(|t| bare(t).to_owned()));
            match self.decisions.decide(policies, &self.principal, facts, &c) {
                Decision::Allow { policies } => allowed.extend(policies),
                d @ Decision::Deny { .. } => return d,
                d @ Decision::NeedsApproval { .. } => match &approval {
                    None => approval = Some(d),
                    Some(first) if first.approval_requirement() != d.approval_requirement() => {
                        return Decision::several_approvals(first, &d);
                    }
                    Some(_) => {}
                },
            }
        }
        if let Some(d) = approval {
            return d;
        }
        allowed.sort();
        allowed.dedup();
        Decision::Allow { policies: allowed }
    }
}

/// EXECUTE of a statement prepared in this session is decided as that statement.
fn substitute_execute(f: &mut StatementFacts, prepared: &dyn Fn(&str) -> Option<StatementFacts>) {
    // Only a statement that IS an EXECUTE: `CREATE TABLE AS EXECUTE` stays opaque (refused).
    let Some(name) = f
        .executes_prepared
        .clone()
        .filter(|_| f.command == "EXECUTE")
    else {
        return;
    };
    if let Some(mut p) = prepared(&name) {
        p.text = std::mem::take(&mut f.text);
        p.command = "EXECUTE".into();
        p.prepared_name = None;
        p.executes_prepared = Some(name);
        *f = p;
    }
}

/// The statement's result plan and effects from its facts and own mask plan.
fn plan_of(f: &StatementFacts, mask: Option<Arc<MaskPlan>>) -> Planned {
    let own = Plan::Own(mask.clone());
    let (result, effects) = state::of_statement(f, own);
    Planned {
        result,
        effects,
        mask,
    }
}

/// A table name without its schema.
pub fn bare(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

//! The decide phase of a session: SQL text → facts (the `sql` crate, cached) → a decision
//! (the `policy` crate) → a verdict the relay enforces. Also the session state analysis
//! depends on: the `search_path` names resolve against and the temporary tables this
//! session created (which it may drop).
//!
//! Nothing here touches sockets; `relay_up` forwards only what a `Verdict::Forward` allows.

use model::decision::Decision;
use model::facts::StatementFacts;
use model::Identity;
use policy::{DecisionCache, Mode, Policies, Principal, RequestContext};
use sql::{AnalyzeContext, FactsCache};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

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
    /// Forward. `shadow` is set when policy refused it but shadow mode lets it run.
    Forward {
        statements: Vec<StatementFacts>,
        decision: Decision,
        shadow: bool,
    },
    /// Refuse the whole string; nothing of it reaches the database.
    Refuse {
        statements: Vec<StatementFacts>,
        decision: Decision,
    },
}

/// Per-session analysis state.
pub struct SessionGuard {
    engine: Arc<PolicyEngine>,
    principal: Principal,
    base: RequestContext,
    analyze_ctx: AnalyzeContext,
    temps: BTreeSet<String>,
    decisions: DecisionCache,
}

impl SessionGuard {
    pub fn new(engine: Arc<PolicyEngine>, identity: Identity, base: RequestContext) -> Self {
        SessionGuard {
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
        match (decision.is_allow(), self.engine.mode()) {
            (true, _) => Verdict::Forward {
                statements,
                decision,
                shadow: false,
            },
            (false, Mode::Shadow) => Verdict::Forward {
                statements,
                decision,
                shadow: true,
            },
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
    }
}

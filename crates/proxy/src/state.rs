//! The server-confirmed model of a session's named objects that masking depends on: prepared
//! statements (SQL `PREPARE` and protocol Parse share one namespace on the server) and
//! portals (protocol Bind and SQL `DECLARE … CURSOR` share another), each with the plan that
//! masks its rows.
//!
//! Only the upstream→client half changes it, and only as the server confirms a request
//! (ParseComplete, BindComplete, CloseComplete, a statement's CommandComplete, ReadyForQuery),
//! in the order the server answered. Rows are masked by looking their plan up here when they
//! arrive, so a name that was prepared twice, a cursor declared in one message and fetched in
//! another, or a portal executed by a name the client never bound all resolve to what the
//! server actually holds. A result whose plan cannot be found means our model and the server
//! disagree: the caller ends the session.
//!
//! Not owned here: deciding (the guard), the request queue (`expect`), row rewriting
//! (`relay_mask`).

use crate::mask_plan::MaskPlan;
use model::facts::{CursorOp, StatementFacts};
use std::collections::HashMap;
use std::sync::Arc;
use wire_pg::backend::FieldDesc;

/// How deep a chain of names (an EXECUTE of a statement that FETCHes from a cursor…) is
/// followed; the server's own nesting is shallower.
const MAX_LINKS: usize = 4;

/// Where a result's mask plan comes from.
#[derive(Debug, Clone)]
pub enum Plan {
    /// Planned from the statement's own analysis; `None`: nothing to mask.
    Own(Option<Arc<MaskPlan>>),
    /// SQL `EXECUTE name`: the rows of that prepared statement.
    Prepared(String),
    /// SQL `FETCH … FROM name`: the rows of that cursor.
    Cursor(String),
    /// The first plan with the second's masks added: a prepared statement the server may
    /// have re-analysed since it was planned (a changed search path, a dropped relation)
    /// is masked both as planned then and as planned now.
    Union(Box<Plan>, Arc<MaskPlan>),
}

/// What a statement changes in the server's namespaces once it completed successfully.
#[derive(Debug, Clone)]
pub enum Effect {
    /// SQL PREPARE (protocol Parse is confirmed by ParseComplete instead).
    Prepare { name: String, plan: Plan },
    /// SQL DEALLOCATE name, or DEALLOCATE ALL (`None`).
    Deallocate(Option<String>),
    /// SQL DECLARE name CURSOR [WITH HOLD].
    Declare {
        name: String,
        plan: Plan,
        hold: bool,
    },
    /// SQL CLOSE name, or CLOSE ALL (`None`).
    Close(Option<String>),
    /// DISCARD ALL: no prepared statements, no portals.
    DiscardAll,
    /// SQL EXECUTE: the effects of the prepared statement the server holds under the name.
    RunPrepared(String),
}

/// A prepared statement as the server holds it.
#[derive(Debug, Clone)]
pub struct Statement {
    pub plan: Plan,
    /// What running it changes (an extended-protocol DECLARE, PREPARE …).
    pub effects: Arc<[Effect]>,
    /// Result columns, once a Describe of the statement told them.
    pub fields: Option<Arc<Vec<FieldDesc>>>,
    /// Parameter type OIDs, once a Describe of the statement told them.
    pub param_types: Option<Arc<[u32]>>,
}

/// A portal (a protocol portal or an SQL cursor) as the server holds it.
#[derive(Debug, Clone)]
pub struct Portal {
    pub plan: Plan,
    pub effects: Arc<[Effect]>,
    pub fields: Option<Arc<Vec<FieldDesc>>>,
    /// Result formats from Bind; `None` for an SQL cursor (RowDescription tells).
    pub formats: Option<Vec<i16>>,
    /// WITH HOLD: survives the commit of its transaction.
    pub hold: bool,
    /// Created in the current transaction (a rollback removes it even if holdable).
    pub in_tx: bool,
}

/// No effects, shared: most statements change nothing, and this keeps them from allocating.
pub fn no_effects() -> Arc<[Effect]> {
    static NONE: std::sync::LazyLock<Arc<[Effect]>> =
        std::sync::LazyLock::new(|| Arc::from(Vec::new()));
    NONE.clone()
}

/// A plan once every name was followed.
pub enum Resolved {
    Plan(Option<Arc<MaskPlan>>),
    /// Our model has no such object although the server returned rows for it.
    Unknown(String),
}

#[derive(Debug, Default)]
pub struct SessionState {
    statements: HashMap<String, Statement>,
    portals: HashMap<String, Portal>,
    /// Since the last idle ReadyForQuery, the transaction was (or will be) rolled back.
    rolled_back: bool,
}

impl SessionState {
    /// Follows `plan` through the names it refers to.
    pub fn resolve(&self, plan: &Plan) -> Resolved {
        self.resolve_within(plan, MAX_LINKS)
    }

    fn resolve_within(&self, plan: &Plan, links: usize) -> Resolved {
        let mut plan = plan;
        for _ in 0..links {
            plan = match plan {
                Plan::Own(p) => return Resolved::Plan(p.clone()),
                Plan::Union(first, more) => {
                    return match self.resolve_within(first, links.saturating_sub(1)) {
                        Resolved::Plan(p) => {
                            Resolved::Plan(Some(Arc::new(MaskPlan::union(p.as_deref(), more))))
                        }
                        unknown => unknown,
                    };
                }
                Plan::Prepared(n) => match self.statements.get(n) {
                    Some(s) => &s.plan,
                    None => return Resolved::Unknown(format!("prepared statement {n:?}")),
                },
                Plan::Cursor(n) => match self.portals.get(n) {
                    Some(p) => &p.plan,
                    None => return Resolved::Unknown(format!("cursor {n:?}")),
                },
            };
        }
        Resolved::Unknown("too many levels of names".into())
    }

    #[cfg(test)]
    pub fn statement(&self, name: &str) -> Option<&Statement> {
        self.statements.get(name)
    }

    pub fn portal(&self, name: &str) -> Option<&Portal> {
        self.portals.get(name)
    }

    /// ParseComplete: the statement now exists (the unnamed one is replaced).
    pub fn parsed(&mut self, name: String, plan: Plan, effects: Arc<[Effect]>) {
        self.statements.insert(
            name,
            Statement {
                plan,
                effects,
                fields: None,
                param_types: None,
            },
        );
    }

    /// ParameterDescription answering a Describe of a statement.
    pub fn describe_params(&mut self, name: &str, types: Vec<u32>) {
        if let Some(s) = self.statements.get_mut(name) {
            s.param_types = Some(types.into());
        }
    }

    /// The parameter types the server described for a statement.
    pub fn param_types(&self, name: &str) -> Option<Arc<[u32]>> {
        self.statements
            .get(name)
            .and_then(|s| s.param_types.clone())
    }

    /// RowDescription or NoData answering a Describe of a statement.
    pub fn describe_statement(&mut self, name: &str, fields: Option<Vec<FieldDesc>>) {
        if let Some(s) = self.statements.get_mut(name) {
            s.fields = fields.map(Arc::new);
        }
    }

    /// RowDescription or NoData answering a Describe of a portal.
    pub fn describe_portal(&mut self, name: &str, fields: Option<Vec<FieldDesc>>) {
        if let Some(p) = self.portals.get_mut(name) {
            p.fields = fields.map(Arc::new);
        }
    }

    /// BindComplete: the portal runs the statement. False if the statement is unknown to
    /// us, which means our model is wrong (the server found it).
    /// `extra`: masks of a plan made again at Bind (see [`Plan::Union`]).
    pub fn bound(
        &mut self,
        portal: String,
        statement: &str,
        formats: Vec<i16>,
        extra: Option<Arc<MaskPlan>>,
    ) -> bool {
        let Some(s) = self.statements.get(statement) else {
            return false;
        };
        let plan = match extra {
            Some(m) => Plan::Union(Box::new(s.plan.clone()), m),
            None => s.plan.clone(),
        };
        let p = Portal {
            plan,
            effects: s.effects.clone(),
            fields: s.fields.clone(),
            formats: Some(formats),
            hold: false,
            in_tx: true,
        };
        self.portals.insert(portal, p);
        true
    }

    /// CloseComplete of a statement.
    pub fn close_statement(&mut self, name: &str) {
        self.statements.remove(name);
    }

    /// CloseComplete of a portal.
    pub fn close_portal(&mut self, name: &str) {
        self.portals.remove(name);
    }

    /// A statement completed successfully: apply what it changes.
    pub fn apply(&mut self, effects: &[Effect]) {
        self.apply_within(effects, MAX_LINKS);
    }

    fn apply_within(&mut self, effects: &[Effect], links: usize) {
        for e in effects {
            match e {
                Effect::Prepare { name, plan } => {
                    self.parsed(name.clone(), plan.clone(), no_effects())
                }
                Effect::Deallocate(Some(n)) => {
                    self.statements.remove(n);
                }
                Effect::Deallocate(None) => self.statements.clear(),
                Effect::Declare { name, plan, hold } => {
                    // The cursor's rows are its query's: link through a plan the declaring
                    // statement resolved (its own, or an EXECUTE's prepared statement).
                    let plan = match self.resolve(plan) {
                        Resolved::Plan(p) => Plan::Own(p),
                        Resolved::Unknown(_) => plan.clone(),
                    };
                    let p = Portal {
                        plan,
                        effects: no_effects(),
                        fields: None,
                        formats: None,
                        hold: *hold,
                        in_tx: true,
                    };
                    self.portals.insert(name.clone(), p);
                }
                Effect::Close(Some(n)) => {
                    self.portals.remove(n);
                }
                // CLOSE ALL drops every portal but the one running it (PostgreSQL
                // PortalHashTableDeleteAll), protocol portals included.
                Effect::Close(None) => self.portals.clear(),
                Effect::DiscardAll => {
                    self.statements.clear();
                    self.portals.clear();
                }
                Effect::RunPrepared(n) => {
                    let inner = self.statements.get(n).map(|s| s.effects.clone());
                    if let (Some(inner), Some(links)) = (inner, links.checked_sub(1)) {
                        self.apply_within(&inner, links);
                    }
                }
            }
        }
    }

    /// The transaction will end in a rollback (a `ROLLBACK` tag, or an error outside a
    /// transaction block, which aborts the implicit transaction).
    pub fn rolled_back(&mut self) {
        self.rolled_back = true;
    }

    /// ReadyForQuery: at idle, the transaction ended. Portals that do not outlive it are
    /// gone: all protocol portals and cursors without HOLD, and holdable cursors of a
    /// transaction that rolled back.
    pub fn ready(&mut self, status: u8) {
        if status == b'T' {
            // The transaction is healthy again (a ROLLBACK TO SAVEPOINT recovered it): an
            // earlier error or savepoint rollback does not roll back the whole of it.
            self.rolled_back = false;
        }
        if status != b'I' {
            return;
        }
        let rolled_back = std::mem::take(&mut self.rolled_back);
        self.portals
            .retain(|_, p| p.hold && !(rolled_back && p.in_tx));
        for p in self.portals.values_mut() {
            p.in_tx = false;
        }
    }
}

/// A statement's result plan and what it changes in the namespaces once it succeeded, from
/// its facts and `own`, the plan of its own lineage (for DECLARE and PREPARE: the rows of the
/// query they hold).
pub fn of_statement(f: &StatementFacts, own: Plan) -> (Plan, Arc<[Effect]>) {
    let none = Plan::Own(None);
    // An SQL EXECUTE runs whatever the server holds under that name: its rows and effects are
    // that statement's, looked up when they arrive, whatever this session's copy says.
    if let Some(name) = f
        .executes_prepared
        .as_ref()
        .filter(|_| f.command == "EXECUTE")
    {
        let effects: Arc<[Effect]> = Arc::from(vec![Effect::RunPrepared(name.clone())]);
        return (Plan::Prepared(name.clone()), effects);
    }
    let (plan, effects) = match (&f.cursor, &f.prepared_name, &f.executes_prepared) {
        (Some(CursorOp::Declare { name, hold }), _, _) => (
            none,
            vec![Effect::Declare {
                name: name.clone(),
                plan: own,
                hold: *hold,
            }],
        ),
        (Some(CursorOp::Fetch { moves: true, .. }), _, _) => (none, Vec::new()),
        (Some(CursorOp::Fetch { name, .. }), _, _) => (Plan::Cursor(name.clone()), Vec::new()),
        (Some(CursorOp::Close { name }), _, _) => (none, vec![Effect::Close(name.clone())]),
        (None, Some(name), _) => (
            none,
            vec![Effect::Prepare {
                name: name.clone(),
                plan: own,
            }],
        ),
        (None, None, Some(name)) if f.command == "EXECUTE" => {
            (Plan::Prepared(name.clone()), Vec::new())
        }
        (None, None, _) => match &f.deallocate {
            Some(d) => (none, vec![Effect::Deallocate(d.clone())]),
            None if f.command == "DISCARD ALL" => (none, vec![Effect::DiscardAll]),
            None => (own, Vec::new()),
        },
    };
    let effects = if effects.is_empty() {
        no_effects()
    } else {
        Arc::from(effects)
    };
    (plan, effects)
}

#[cfg(test)]
mod tests;

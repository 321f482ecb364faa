//! Deciding a query string or Parse before it is forwarded: the guard's verdict, with what
//! the verdict needs first — a probe of the server when the search path, the temporary
//! objects or the view definitions must be confirmed, and a catalog reload when a relation is
//! unknown (then refused if it still is).

use super::hold::HeldStatement;
use super::{Tracking, Up};
use crate::error::SessionError;
use crate::expect::Expect;
use crate::guard::Verdict;
use crate::mask_plan::MaskPlan;
use crate::state::{Effect, Plan};
use model::decision::Decision;
use std::sync::Arc;
use wire_pg::encode;

/// What a Bind or EXECUTE of a prepared statement needs.
pub(super) enum Recheck {
    /// Nothing changed since it was planned.
    Same,
    /// Planned again: these masks are added to the ones it was prepared with.
    Planned(Option<Arc<MaskPlan>>),
    /// Decided again, it needs approval now (it did not when prepared): its portal waits at
    /// Execute; these masks are added.
    Held(Decision, Option<Arc<MaskPlan>>),
    /// Refused now (the refusal was sent).
    Refused,
}

/// Where a statement that needs approval waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HoldAt {
    /// Here and now (a simple Query).
    Now,
    /// At the Execute of a portal bound to it (a Parse): it is let through, marked.
    Execute,
    /// Nowhere: refused.
    Never,
}

/// A query string or Parse that was checked and may run.
pub(super) struct Allowed {
    pub statements: Vec<model::facts::StatementFacts>,
    pub decision: Decision,
    pub shadow: bool,
    pub plans: Vec<crate::guard::Planned>,
    /// It needs approval at its transaction's COMMIT (`@approval_mode("commit")`): it runs
    /// now, inside the open transaction block, and the COMMIT is held (see `commit`).
    pub deferred: bool,
}

impl Up {
    /// Checks `sql`: what may run, or `None` once the refusal was sent and audited (as a
    /// simple Query's when `simple`, else as a Parse's: the poison replaces the unnamed
    /// statement, see `refuse`). `hold`: what becomes of a statement that needs approval.
    pub(super) async fn check_or_refuse(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        simple: bool,
        hold: HoldAt,
    ) -> Result<Option<Allowed>, SessionError> {
        let (statements, decision) = match self.check(t, sql).await? {
            Verdict::Forward {
                statements,
                decision,
                shadow,
                plans,
            } => {
                return Ok(Some(Allowed {
                    statements,
                    decision,
                    shadow,
                    plans,
                    deferred: false,
                }))
            }
            // Approval at COMMIT: runs now inside the open transaction block, when it is one
            // (else it is held as a statement, below).
            Verdict::Hold {
                statements,
                decision,
                plans,
            } if hold == HoldAt::Now
                && decision.approval_at_commit()
                && !t.batch_open
                && !t.discard_until_sync
                && !statements.iter().any(|f| {
                    f.prepared_name.is_some()
                        || f.executes_prepared.is_some()
                        || f.class == model::facts::CommandClass::Transaction
                })
                && self.may_defer(t, true).await? =>
            {
                return Ok(Some(Allowed {
                    statements,
                    decision,
                    shadow: false,
                    plans,
                    deferred: true,
                }));
            }
            // A query string waits in the session for a person (see `hold`): not inside an
            // unsynced batch (a Query there would end the batch's implicit transaction), and
            // never a PREPARE (an approved one could run any number of times).
            Verdict::Hold {
                statements,
                decision,
                ..
            } if hold == HoldAt::Now
                && !t.batch_open
                && !t.discard_until_sync
                // Nor an SQL EXECUTE: the approver would see a name, and a grant would follow
                // whatever the name means when it is used.
                && !statements
                    .iter()
                    .any(|f| f.prepared_name.is_some() || f.executes_prepared.is_some()) =>
            {
                let held = HeldStatement {
                    sql,
                    statements,
                    decision,
                    key_params: Vec::new(),
                    shown_params: Vec::new(),
                    simple: true,
                    grant: true,
                    transaction: Vec::new(),
                    changed_rows: Vec::new(),
                };
                return Ok(self.hold(t, held).await?.map(|r| {
                    t.released = Some(r.request);
                    r.allowed
                }));
            }
            // A Parse goes through: its portals are held at Execute (see `on_execute`). Not a
            // PREPARE inside it (an approved one could run any number of times).
            Verdict::Hold {
                statements,
                decision,
                plans,
            } if hold == HoldAt::Execute
                && !statements.iter().any(|f| f.prepared_name.is_some()) =>
            {
                return Ok(Some(Allowed {
                    statements,
                    decision,
                    shadow: false,
                    plans,
                    deferred: false,
                }));
            }
            Verdict::Refuse {
                statements,
                decision,
            }
            | Verdict::Hold {
                statements,
                decision,
                ..
            } => (statements, decision),
            Verdict::UnknownRelation(_) | Verdict::Stale => (Vec::new(), stale_catalog()),
        };
        self.refuse_by_policy(t, sql, &statements, &decision, simple)
            .await?;
        Ok(None)
    }

    /// A prepared statement is decided and planned again before it runs when what its
    /// decision or plan rested on may have changed: the server re-analyses a prepared
    /// statement when the search path or an object it uses changes, so the name-resolution
    /// state it was planned under must still hold; a DROP is decided again on the temporary
    /// tables that exist now; a statement reading a view has its view definitions confirmed
    /// each time. The masks of both plans apply (the server may or may not have re-analysed).
    /// `simple`: for an SQL EXECUTE in a Query (a refusal answers the whole string).
    pub(super) async fn recheck(
        &mut self,
        t: &mut Tracking,
        name: &str,
        simple: bool,
    ) -> Result<Recheck, SessionError> {
        let Some(p) = t.statements.get(name).cloned() else {
            return Ok(Recheck::Same);
        };
        let Some(f) = &p.facts else {
            return Ok(Recheck::Same);
        };
        let masking = self.guard.masking();
        // The server re-analyses it when the search path changed; policies may have been
        // reloaded since it was decided.
        let same_policies = p
            .policies
            .as_ref()
            .is_some_and(|x| Arc::ptr_eq(x, &self.guard.policies()));
        let stale = !f.drops.is_empty()
            || p.key != self.guard.resolution_key()
            || !same_policies
            || (masking && self.guard.reads_view(f));
        if !stale {
            return Ok(Recheck::Same);
        }
        let verdict = match self.check(t, &p.text).await? {
            // Needing approval (now, or still): its portal waits at Execute. Not an SQL
            // EXECUTE (`simple`: it cannot wait), nor an SQL PREPARE run through the protocol.
            Verdict::Hold {
                plans, decision, ..
            } if !simple && f.prepared_name.is_none() => {
                let planned = plans.into_iter().next();
                return Ok(Recheck::Held(decision, planned.and_then(|p| p.mask)));
            }
            v => v,
        };
        match verdict {
            Verdict::Forward { plans, .. } => {
                let planned = plans.into_iter().next();
                // An SQL PREPARE's own rows are none: its statement's plan is in its effect.
                let mask = planned.and_then(|p| {
                    p.effects
                        .iter()
                        .find_map(|e| match e {
                            Effect::Prepare {
                                plan: Plan::Own(m), ..
                            } => Some(m.clone()),
                            _ => None,
                        })
                        .unwrap_or(p.mask)
                });
                Ok(Recheck::Planned(mask))
            }
            Verdict::Refuse {
                statements,
                decision,
            }
            | Verdict::Hold {
                statements,
                decision,
                ..
            } => {
                self.refuse_by_policy(t, &p.text, &statements, &decision, simple)
                    .await?;
                Ok(Recheck::Refused)
            }
            Verdict::UnknownRelation(_) | Verdict::Stale => {
                self.refuse_by_policy(t, &p.text, &[], &stale_catalog(), simple)
                    .await?;
                Ok(Recheck::Refused)
            }
        }
    }

    /// Everything sent is answered, and any change of setting reported, before more text is
    /// read (see `text`). Only outside an unsynced batch. `false` when the server is in COPY
    /// IN: it waits for the client's data, so nothing can be confirmed.
    pub(super) async fn settle(&mut self, t: &mut Tracking) -> Result<bool, SessionError> {
        self.flush(t).await?;
        let drain = self.pipeline.wait_drained().await;
        if self.pipeline.lock().is_closed() {
            return Err(SessionError::Protocol("session ended"));
        }
        if drain == crate::pipeline::Drain::CopyIn {
            return Ok(false);
        }
        t.ran_unconfirmed = false;
        Ok(true)
    }

    /// Analyses and decides a query string or Parse, reloading the catalog once when it
    /// names a relation the catalog does not know.
    pub(super) async fn check(
        &mut self,
        t: &mut Tracking,
        sql: &str,
    ) -> Result<Verdict, SessionError> {
        let hour = self.hour();
        let mut reloaded = false;
        let mut probed = false;
        let mut named = false;
        // The server's resolution of names holds for this statement only.
        self.guard.clear_names();
        loop {
            if !probed && self.guard.wants_probe() {
                // If it cannot be asked (inside a pipeline, or in a failed transaction), the
                // guard refuses what would depend on the search path.
                probed = self.probe(t).await?;
            }
            self.guard.set_fresh(probed);
            let verdict = if sql.len() >= OFF_LOOP_BYTES {
                self.check_off_loop(sql, hour, &t.statements).await?
            } else {
                let statements = &t.statements;
                let lookup = |name: &str| statements.get(name).and_then(|p| p.facts.clone());
                self.guard.check(sql, hour, &lookup)
            };
            self.publish_origins();
            if self.guard.take_wants_temps() && !probed && self.probe(t).await? {
                probed = true;
                continue;
            }
            let names = self.guard.take_wants_names();
            if !names.is_empty() {
                // Asked once; if it cannot be, the verdict (a refusal) stands.
                if !named && self.resolve_names(t, &names).await? {
                    named = true;
                    continue;
                }
                return Ok(verdict);
            }
            let rel = match verdict {
                Verdict::UnknownRelation(rel) => Some(rel),
                Verdict::Stale => None,
                v => return Ok(v),
            };
            // Perhaps a temporary relation created since the last probe.
            if !probed && self.probe(t).await? {
                probed = true;
                continue;
            }
            let catalog = self.guard.catalog();
            let target = self
                .state
                .config
                .targets
                .get(self.ctx.target.as_deref().unwrap_or_default());
            if let (false, Some(cell), Some(target)) = (reloaded, catalog, target) {
                let seen = cell.get();
                if cell.reload_now(target, &seen).await {
                    reloaded = true;
                    continue;
                }
            }
            return Ok(Verdict::Refuse {
                statements: Vec::new(),
                decision: match rel {
                    Some(rel) => unknown_relation(rel),
                    None => stale_catalog(),
                },
            });
        }
    }

    /// Asks the server, in this session, for its search path and temporary tables (see
    /// `probe`). Only between batches: false if it could not be asked or did not answer.
    async fn probe(&mut self, t: &mut Tracking) -> Result<bool, SessionError> {
        if t.batch_open || t.discard_until_sync || self.pipeline.lock().copy_in {
            return Ok(false);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.expect(Expect::Probe {
            reply: Some(reply),
            rows: Vec::new(),
            error: None,
        })
        .await?;
        encode::query(&mut t.out, crate::probe::PROBE_SQL);
        self.flush(t).await?;
        match answer.await {
            Ok(Ok(p)) => {
                self.guard.probed(p);
                Ok(true)
            }
            Ok(Err(e)) => {
                tracing::debug!(session = %self.ctx.session, error = %e, "probe failed");
                Ok(false)
            }
            Err(_) => Err(SessionError::Protocol("session ended")),
        }
    }

    /// Asks the server, in this session, where unqualified relation names resolve (see
    /// `guard::names`). Only between batches: false if it could not be asked or answered.
    async fn resolve_names(
        &mut self,
        t: &mut Tracking,
        names: &std::collections::BTreeSet<String>,
    ) -> Result<bool, SessionError> {
        if t.batch_open || t.discard_until_sync || self.pipeline.lock().copy_in {
            return Ok(false);
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.expect(Expect::Peek {
            reply: Some(reply),
            results: Vec::new(),
            error: None,
        })
        .await?;
        encode::query(&mut t.out, &crate::guard::resolve_sql(names));
        self.flush(t).await?;
        let results = match answer.await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::debug!(session = %self.ctx.session, error = %e, "name resolution failed");
                return Ok(false);
            }
            Err(_) => return Err(SessionError::Protocol("session ended")),
        };
        let Some(map) = results
            .first()
            .and_then(|r| crate::guard::resolved(&r.rows))
        else {
            return Ok(false);
        };
        if names.iter().any(|n| !map.contains_key(n)) {
            return Ok(false);
        }
        self.guard.set_names(map);
        Ok(true)
    }

    /// Hands the other half the hidden columns by origin when they changed.
    /// `SessionGuard::check` of a large string on a blocking thread: parsing megabytes takes
    /// seconds, and this session's event loop carries other sessions. The guard is lent to
    /// that thread and put back; should the check panic, the session ends (its stand-in
    /// refuses everything meanwhile).
    async fn check_off_loop(
        &mut self,
        sql: &str,
        hour: u8,
        statements: &super::names::Statements,
    ) -> Result<Verdict, SessionError> {
        let prepared = statements.facts_by_name();
        let mut guard = self.guard.lend();
        let sql = sql.to_owned();
        let checked = tokio::task::spawn_blocking(move || {
            let lookup = |name: &str| prepared.get(name).cloned();
            let verdict = guard.check(&sql, hour, &lookup);
            (guard, verdict)
        })
        .await;
        match checked {
            Ok((guard, verdict)) => {
                self.guard = guard;
                Ok(verdict)
            }
            Err(e) => Err(SessionError::Internal(format!(
                "the analysis of a statement failed: {e}"
            ))),
        }
    }

    fn publish_origins(&self) {
        let Some(o) = self.guard.origins() else {
            return;
        };
        let same = {
            let g = self.origins.read().unwrap_or_else(|p| p.into_inner());
            Arc::ptr_eq(&g, &o)
        };
        if !same {
            *self.origins.write().unwrap_or_else(|p| p.into_inner()) = o;
        }
    }
}

/// Query strings at least this long are analysed on a blocking thread (see
/// `check_off_loop`): about 10 ms of parsing, well above what a handoff costs.
const OFF_LOOP_BYTES: usize = 16 * 1024;

pub(super) fn stale_catalog() -> Decision {
    Decision::Deny {
        reason: "the definition of a view this statement reads could not be confirmed to be the server's current one".into(),
        policy_id: "gatehouse.masking".into(),
        hint: Some("views are confirmed between requests: send Sync before this statement, or retry in a moment".into()),
        policies: Vec::new(),
    }
}

/// A relation unknown to the catalog even after a reload: refused (the principal may not
/// see every sensitive column, or lineage would not have been needed).
fn unknown_relation(rel: String) -> Decision {
    Decision::Deny {
        reason: format!(
            "relation {rel} is not in the catalog, so what it returns cannot be checked for sensitive columns"
        ),
        policy_id: "gatehouse.masking".into(),
        hint: Some("if it was just created, retry in a moment".into()),
        policies: Vec::new(),
    }
}

//! Bind and Execute of the extended protocol: what each portal runs (for its audit event),
//! the statement's effects on the session when it runs again, the hidden Describe that gives
//! the origin net its columns, and reserving the audit slot before anything is forwarded.

use super::hold::HeldStatement;
use super::{prepared_entry, Portal, Tracking, Up};
use crate::annotation::Annotation;
use crate::config::AuditFailureMode;
use crate::error::SessionError;
use crate::events::render_param;
use crate::expect::{Expect, StmtAudit};
use crate::state::Plan;
use model::decision::Decision;
use model::facts::CursorOp;
use model::AuditKind;
use std::time::Instant;
use wire_pg::frontend::Bind;
use wire_pg::{encode, Frame};

impl Up {
    /// `held`: it needs approval as decided again at this Bind (see `check::recheck`).
    pub(super) fn on_bind(&self, t: &mut Tracking, b: &Bind, held: Option<Decision>) {
        let max = self.state.config.audit_param_max;
        let enc = self.encoding.get();
        let params = b
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| render_param(p.as_deref(), b.param_is_binary(i), max, enc))
            .collect();
        let statement = t.statements.get(&b.statement).cloned();
        let hold = held.or_else(|| statement.as_ref().and_then(|s| s.hold.clone()));
        // Exactly as bound (format and bytes): what a one-time grant must match.
        let key_params = if hold.is_some() {
            b.params
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    p.as_deref().map(|v| {
                        let f = if b.param_is_binary(i) { "b:" } else { "t:" };
                        let mut s = String::with_capacity(2 + 2 * v.len());
                        s.push_str(f);
                        for x in v {
                            s.push_str(&format!("{x:02x}"));
                        }
                        s
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        t.portals.insert(
            b.portal.clone(),
            Portal {
                statement,
                params,
                key_params,
                released: None,
                hold,
                statement_name: b.statement.clone(),
            },
        );
    }

    pub(super) async fn on_execute(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        portal: String,
    ) -> Result<(), SessionError> {
        // A portal never bound nor declared in this session does not exist on the server
        // either: refused here (the server's own path for it has crashed PostgreSQL 15 after
        // a failed statement in a transaction).
        if !t.portals.contains_key(&portal) && !t.cursors.contains_key(&portal) {
            let msg = format!("portal \"{portal}\" does not exist");
            return self.refuse(t, "34000", &msg, None, None, false).await;
        }
        let (prepared, params, mut released, portal_hold) = match t.portals.get(&portal) {
            Some(p) => (
                p.statement.clone(),
                p.params.clone(),
                p.released.clone(),
                p.hold.clone(),
            ),
            // A cursor declared in SQL, executed as a portal: its rows are masked with the
            // cursor's plan; the audit names the cursor.
            None => (None, Vec::new(), None, None),
        };
        let text = match &prepared {
            Some(p) => p.text.clone(),
            None => format!("-- execute portal {portal:?}"),
        };
        // A COMMIT while writes wait on the transaction's COMMIT being approved: only a
        // simple Query COMMIT is held (see `commit`).
        if t.commit_hold.is_some()
            && prepared
                .as_ref()
                .and_then(|p| p.facts.as_ref())
                .is_some_and(super::commit::ends_with_commit)
        {
            let msg = "gatehouse: this transaction's writes wait on its COMMIT being approved: send COMMIT as a simple query";
            return self.refuse(t, "42501", msg, None, None, false).await;
        }
        let mut tally = None;
        let mut deferred = false;
        // Approval at COMMIT: runs now inside the open transaction block when it is one.
        if let (Some(p), None) = (&prepared, &released) {
            if let (Some(d), Some(f)) = (&portal_hold, &p.facts) {
                if d.approval_at_commit() && self.may_defer(t, false).await? {
                    let shown = self.shown_params(t, &portal, &p.param_types);
                    match self.defer_to_commit(std::slice::from_ref(f), &shown, d, t) {
                        Some(mut v) => {
                            tally = v.pop();
                            deferred = true;
                        }
                        None => {
                            let msg = "gatehouse: this write needs an approval other than the one the transaction's COMMIT already waits on";
                            return self.refuse(t, "42501", msg, None, None, false).await;
                        }
                    }
                }
            }
        }
        // A statement that needs approval waits here, once per portal.
        if let (Some(p), None, false) = (&prepared, &released, deferred) {
            if let Some(decision) = &portal_hold {
                let key_params = t
                    .portals
                    .get(&portal)
                    .map(|x| x.key_params.clone())
                    .unwrap_or_default();
                let held = HeldStatement {
                    sql: &p.text,
                    statements: p.facts.iter().cloned().collect(),
                    decision: decision.clone(),
                    key_params,
                    shown_params: self.shown_params(t, &portal, &p.param_types),
                    simple: false,
                    grant: true,
                    transaction: Vec::new(),
                    changed_rows: Vec::new(),
                };
                match self.hold(t, held).await? {
                    Some(r) => {
                        if let Some(x) = t.portals.get_mut(&portal) {
                            x.released = Some(r.request.clone());
                        }
                        released = Some(r.request);
                    }
                    None => return Ok(()),
                }
            }
        }
        t.executed_in_batch = true;
        // Running it again changes the session as preparing it did (a prepared SET, a call),
        // and an SQL PREPARE or DEALLOCATE run this way changes the prepared statements.
        if let Some(p) = &prepared {
            if let Some(f) = &p.facts {
                self.guard.forwarded(std::slice::from_ref(f));
                if let Some(CursorOp::Declare { name, .. }) = &f.cursor {
                    t.cursors.insert(name.clone(), p.note.clone());
                }
                if let Some(name) = f
                    .prepared_name
                    .as_ref()
                    .filter(|n| t.statements.may_prepare(n.as_str()))
                {
                    let key = self.guard.resolution_key();
                    let entry =
                        prepared_entry(&p.text, p.note.clone(), f, key, self.guard.policies());
                    t.statements.prepare(name.clone(), entry);
                }
                match &f.deallocate {
                    Some(n) => t.statements.closing(n.as_deref()),
                    None if f.command == "DISCARD ALL" => t.statements.closing(None),
                    None => {}
                }
            }
        }
        let mut note = prepared.as_ref().map(|p| p.note.clone());
        if let Some(n) = note.as_mut() {
            if deferred {
                n.decision = Some("held_at_commit".into());
            } else if portal_hold.is_some() {
                // Released: it runs as allowed, under its request.
                n.decision = Some("allow".into());
                n.approval = released;
            }
        }
        match self.audit_for(&text, params, note.as_ref()) {
            Ok(mut a) => {
                a.result = Plan::Cursor(portal.clone());
                a.portal = Some(portal.clone());
                a.tally = tally;
                if self.guard.masking() && !t.described.contains(&portal) {
                    // The client did not ask for the result's columns: ask for them, so the
                    // server's word on where each column comes from applies to these rows too.
                    encode::describe(&mut t.out, b'P', &portal);
                    self.expect(Expect::HiddenDescribe(portal.clone())).await?;
                    t.described.insert(portal);
                }
                t.out.extend_from_slice(frame.raw());
                self.expect(Expect::Execute(a)).await
            }
            Err(e) => {
                self.refuse(t, e.sqlstate(), &e.client_message(""), None, None, false)
                    .await
            }
        }
    }

    /// Reserves the audit slot for one statement, or says why it may not run.
    pub(super) fn audit_for(
        &self,
        sql: &str,
        params: Vec<Option<String>>,
        note: Option<&Annotation>,
    ) -> Result<StmtAudit, SessionError> {
        let slot = match self.state.audit.reserve() {
            Ok(slot) => Some(slot),
            Err(e) => match self.state.config.on_audit_failure {
                AuditFailureMode::Block => {
                    return Err(SessionError::AuditUnavailable(e.to_string()))
                }
                AuditFailureMode::Allow => {
                    metrics::counter!("gatehouse_audit_events_missed_total").increment(1);
                    None
                }
            },
        };
        let mut event = self
            .ctx
            .event(AuditKind::Statement, self.state.clock.rfc3339());
        event.statement = Some(sql.to_owned());
        event.params = params;
        if let Some(n) = note {
            n.apply(&mut event);
        }
        Ok(StmtAudit {
            result: Plan::Own(note.and_then(|n| n.mask.clone())),
            effects: crate::state::no_effects(),
            portal: None,
            event,
            slot,
            started: Instant::now(),
            tally: None,
        })
    }
}

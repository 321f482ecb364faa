//! Bind and Execute of the extended protocol: what each portal runs (for its audit event),
//! the statement's effects on the session when it runs again, the hidden Describe that gives
//! the origin net its columns, and reserving the audit slot before anything is forwarded.

use super::{prepared_entry, Portal, Tracking, Up};
use crate::annotation::Annotation;
use crate::config::AuditFailureMode;
use crate::error::SessionError;
use crate::events::render_param;
use crate::expect::{Expect, StmtAudit};
use crate::state::Plan;
use model::facts::CursorOp;
use model::AuditKind;
use std::time::Instant;
use wire_pg::frontend::Bind;
use wire_pg::{encode, Frame};

impl Up {
    pub(super) fn on_bind(&self, t: &mut Tracking, b: &Bind) {
        let max = self.state.config.audit_param_max;
        let enc = self.encoding.get();
        let params = b
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| render_param(p.as_deref(), b.param_is_binary(i), max, enc))
            .collect();
        let statement = t.statements.get(&b.statement).cloned();
        t.portals
            .insert(b.portal.clone(), Portal { statement, params });
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
        let (prepared, params) = match t.portals.get(&portal) {
            Some(p) => (p.statement.clone(), p.params.clone()),
            // A cursor declared in SQL, executed as a portal: its rows are masked with the
            // cursor's plan; the audit names the cursor.
            None => (None, Vec::new()),
        };
        let text = match &prepared {
            Some(p) => p.text.clone(),
            None => format!("-- execute portal {portal:?}"),
        };
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
                    let entry = prepared_entry(&p.text, p.note.clone(), f, key);
                    t.statements.prepare(name.clone(), entry);
                }
                match &f.deallocate {
                    Some(n) => t.statements.closing(n.as_deref()),
                    None if f.command == "DISCARD ALL" => t.statements.closing(None),
                    None => {}
                }
            }
        }
        let note = prepared.as_ref().map(|p| &p.note);
        match self.audit_for(&text, params, note) {
            Ok(mut a) => {
                a.result = Plan::Cursor(portal.clone());
                a.portal = Some(portal.clone());
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
        })
    }
}

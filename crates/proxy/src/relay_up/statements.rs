//! A query string and a Parse: checked (held, deferred to COMMIT, or refused), their audit
//! slots reserved, what they change in the session's prepared statements recorded, and
//! forwarded.

use super::check::{Allowed, HoldAt, Recheck};
use super::{commit, prepared_entry, text, Prepared, Tracking, Up};
use crate::annotation::Annotation;
use crate::error::SessionError;
use crate::expect::Expect;
use crate::guard::Planned;
use crate::state::{Effect, Plan};
use model::decision::Decision;
use model::facts::{CursorOp, StatementFacts};
use std::collections::VecDeque;
use std::sync::Arc;
use wire_pg::frontend::Parse;
use wire_pg::Frame;

impl Up {
    pub(super) async fn on_query(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        sql: String,
    ) -> Result<(), SessionError> {
        self.forget_failed(t);
        let Some(Allowed {
            statements,
            decision,
            shadow,
            plans,
            deferred,
        }) = self.check_or_refuse(t, &sql, true, HoldAt::Now).await?
        else {
            return Ok(());
        };
        let mut approval = t.released.take();
        let mut tallies = Vec::new();
        if t.commit_hold.is_some() && statements.iter().any(commit::ends_with_commit) {
            // The transaction's writes wait on this COMMIT being approved.
            match self.commit_held(t, &sql, &statements).await? {
                Some(request) => approval = request,
                None => return Ok(()),
            }
        } else if deferred {
            match self.defer_to_commit(&statements, &[], &decision, t) {
                Some(v) => tallies = v,
                None => {
                    let msg = "gatehouse: this write needs an approval other than the one the transaction's COMMIT already waits on";
                    return self.refuse(t, "42501", msg, None, None, true).await;
                }
            }
        }
        // The name of Gatehouse's own in-batch check is reserved (see `text`).
        let reserved = statements.iter().any(|f| {
            f.prepared_name
                .as_deref()
                .is_some_and(|n| text::is_reserved(n.as_bytes()))
                || matches!(&f.cursor, Some(CursorOp::Declare { name, .. }) if text::is_reserved(name.as_bytes()))
        });
        if reserved {
            let msg = format!(
                "gatehouse: names starting with \"{}\" are reserved",
                text::CHECK_NAME
            );
            return self.refuse(t, "42501", &msg, None, None, true).await;
        }
        // A name already prepared: the server refuses it (42P05); so does Gatehouse, which
        // keeps its copy of prepared statements exact that way.
        if let Some(name) = statements.iter().find_map(|f| {
            f.prepared_name
                .as_ref()
                .filter(|n| !t.statements.may_prepare(n.as_str()))
        }) {
            let msg = format!("prepared statement \"{name}\" already exists");
            return self.refuse(t, "42P05", &msg, None, None, true).await;
        }
        let mut plans = plans;
        // EXECUTE of a statement the server may have re-analysed since it was planned.
        for (f, p) in statements.iter().zip(plans.iter_mut()) {
            let Some(name) = f
                .executes_prepared
                .as_ref()
                .filter(|_| f.command == "EXECUTE")
            else {
                continue;
            };
            match self.recheck(t, name, true).await? {
                Recheck::Same | Recheck::Planned(None) => {}
                Recheck::Held(..) => {
                    let d = Decision::Deny {
                        reason: "this prepared statement needs approval now; an SQL EXECUTE cannot wait for it".into(),
                        policy_id: "gatehouse.approvals".into(),
                        hint: Some("run the statement itself, or Bind/Execute it through the protocol".into()),
                        policies: Vec::new(),
                    };
                    return self.refuse_by_policy(t, &sql, &statements, &d, true).await;
                }
                Recheck::Planned(Some(m)) => p.result = Plan::Union(Box::new(p.result.clone()), m),
                Recheck::Refused => return Ok(()),
            }
        }
        let mut audits = VecDeque::new();
        // A string without statements still gets one answer (EmptyQueryResponse).
        let planned: Vec<(&str, Option<&StatementFacts>, Option<&Planned>)> =
            if statements.is_empty() {
                vec![(sql.as_str(), None, None)]
            } else {
                statements
                    .iter()
                    .zip(&plans)
                    .map(|(f, p)| (f.text.as_str(), Some(f), Some(p)))
                    .collect()
            };
        let mut tallies = tallies.into_iter();
        for (text, facts, planned) in planned {
            let mut note = Annotation::new(facts, &decision, shadow);
            note.mask = planned.and_then(|p| p.mask.clone());
            note.approval.clone_from(&approval);
            match facts.and_then(|f| f.cursor.as_ref()) {
                Some(CursorOp::Declare { name, .. }) => {
                    // A portal of that name is gone (the server refuses a DECLARE over an
                    // open one): what the name runs now is this cursor.
                    t.portals.remove(name);
                    t.cursors.insert(name.clone(), note.clone());
                }
                Some(CursorOp::Close { name }) => match name {
                    Some(n) => {
                        t.portals.remove(n);
                    }
                    None => t.portals.clear(),
                },
                Some(CursorOp::Fetch { name, .. }) => {
                    if let Some(c) = t.cursors.get(name) {
                        note.tables.clone_from(&c.tables);
                        note.mask.clone_from(&c.mask);
                    }
                }
                _ => {}
            }
            if deferred {
                note.decision = Some("held_at_commit".into());
            }
            match self.audit_for(text, Vec::new(), Some(&note)) {
                Ok(mut a) => {
                    if let Some(p) = planned {
                        a.result = p.result.clone();
                        a.effects = p.effects.clone();
                    }
                    a.tally = tallies.next();
                    audits.push_back(a);
                }
                Err(e) => {
                    let msg = e.client_message("");
                    return self.refuse(t, e.sqlstate(), &msg, None, None, true).await;
                }
            }
        }
        // SQL PREPARE: remembered (optimistically) for EXECUTE decisions and audit texts.
        for (f, p) in statements.iter().zip(&plans) {
            for e in p.effects.iter() {
                match e {
                    Effect::Prepare { name, .. } => {
                        let note = Annotation::new(Some(f), &decision, shadow);
                        let key = self.guard.resolution_key();
                        t.statements.prepare(
                            name.clone(),
                            prepared_entry(&f.text, note, f, key, self.guard.policies()),
                        );
                    }
                    Effect::Deallocate(n) => t.statements.closing(n.as_deref()),
                    Effect::DiscardAll => t.statements.closing(None),
                    _ => {}
                }
            }
        }
        self.guard.forwarded(&statements);
        t.out.extend_from_slice(frame.raw());
        self.expect(Expect::Query(audits)).await
    }

    pub(super) async fn on_parse(
        &mut self,
        t: &mut Tracking,
        frame: Frame,
        p: Parse,
    ) -> Result<(), SessionError> {
        let declared = p.param_types.clone();
        self.forget_failed(t);
        let Some(Allowed {
            statements,
            decision,
            shadow,
            plans,
            ..
        }) = self
            .check_or_refuse(t, &p.query, false, HoldAt::Execute)
            .await?
        else {
            return Ok(());
        };
        if !t.statements.may_prepare(&p.name) {
            let msg = format!("prepared statement \"{}\" already exists", p.name);
            return self.refuse(t, "42P05", &msg, None, None, false).await;
        }
        self.guard.forwarded(&statements);
        let mut note = Annotation::new(statements.first(), &decision, shadow);
        let planned = plans.into_iter().next();
        note.mask = planned.as_ref().and_then(|p| p.mask.clone());
        let (plan, effects) = match planned {
            Some(p) => (p.result, p.effects),
            None => (Plan::Own(None), crate::state::no_effects()),
        };
        let name = p.name.clone();
        let entry = match statements.first() {
            Some(f) => prepared_entry(
                &p.query,
                note,
                f,
                self.guard.resolution_key(),
                self.guard.policies(),
            ),
            None => Arc::new(Prepared {
                text: p.query,
                note,
                facts: None,
                key: self.guard.resolution_key(),
                hold: None,
                policies: Some(self.guard.policies()),
                param_types: Vec::new(),
            }),
        };
        let entry = match decision {
            Decision::NeedsApproval { .. } => Arc::new(Prepared {
                hold: Some(decision),
                param_types: declared,
                ..Arc::unwrap_or_clone(entry)
            }),
            _ => entry,
        };
        let id = t.statements.prepare(p.name, entry);
        t.out.extend_from_slice(frame.raw());
        self.expect(Expect::Parse {
            name,
            id,
            plan,
            effects,
        })
        .await
    }
}

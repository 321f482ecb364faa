//! Approval of the outcome, not only the text (`@approval_mode("commit")`): a write that needs
//! approval, sent inside an open transaction block, runs at once; the transaction's COMMIT is
//! then held, showing the approver the writes it would commit and their row counts. Approved:
//! the writes are decided again and the COMMIT goes upstream. Denied, expired, withdrawn, or a
//! write no longer allowed: Gatehouse rolls the transaction back and the client's COMMIT gets
//! the refusal (its ReadyForQuery says idle: nothing of the transaction remains).
//!
//! Only where the transaction block is the server's word: the last ReadyForQuery said `T`,
//! everything sent before was answered, and (extended protocol) nothing ran earlier in the
//! batch. Anywhere else the write is held as a statement. While writes wait, every way of
//! ending the transaction with a commit is watched: a simple `COMMIT`/`END` on its own is
//! held; `COMMIT` inside a longer string, by Execute, or `PREPARE TRANSACTION` is refused; a
//! `ROLLBACK` (or the server's rollback of a failed transaction) drops the waiting writes.
//! Procedures and DO blocks cannot commit inside a transaction block, and a client that goes
//! away leaves the server to roll back.

use super::hold::HeldStatement;
use super::{Tracking, Up};
use crate::error::SessionError;
use crate::expect::Tally;
use model::decision::Decision;
use model::facts::{CommandClass, StatementFacts};
use std::sync::atomic::Ordering;

/// Writes that ran in the open transaction and wait on its COMMIT.
pub(super) struct CommitHold {
    /// The approval they need (every write of the transaction needs the same one).
    decision: Decision,
    /// Idle ReadyForQuery reports seen when the first write ran (`Inner::idle_seen`): once
    /// the server reported idle again, that transaction is over and its writes with it.
    epoch: u64,
    writes: Vec<Write>,
}

struct Write {
    sql: String,
    /// Bound parameters as approvers see them.
    params: Vec<Option<String>>,
    facts: StatementFacts,
    rows: Tally,
}

/// A statement that would commit the transaction.
pub(super) fn ends_with_commit(f: &StatementFacts) -> bool {
    f.class == CommandClass::Transaction
        && matches!(f.command.as_str(), "COMMIT" | "PREPARE TRANSACTION")
}

impl Up {
    /// Whether a write may run now and have its COMMIT held: inside a transaction block, by
    /// the server's word (everything sent is answered first; in a batch, a Flush asks for
    /// the answers, and nothing may have run earlier in it).
    pub(super) async fn may_defer(
        &mut self,
        t: &mut Tracking,
        simple: bool,
    ) -> Result<bool, SessionError> {
        if t.discard_until_sync || (!simple && t.executed_in_batch) {
            return Ok(false);
        }
        if !simple {
            wire_pg::encode::flush(&mut t.out);
        }
        self.flush(t).await?;
        self.pipeline.wait_drained().await;
        let epoch = {
            let g = self.pipeline.lock();
            if g.is_closed() {
                return Err(SessionError::Protocol("session ended"));
            }
            if g.discarding || g.copy_in {
                return Ok(false);
            }
            g.idle_seen
        };
        // Writes of a transaction the server since reported over are gone with it. Only the
        // server's word ends a hold (a failed transaction, or a ROLLBACK that never ran,
        // does not).
        if t.commit_hold.as_ref().is_some_and(|h| h.epoch != epoch) {
            t.commit_hold = None;
        }
        Ok(self.tx_status.load(Ordering::Acquire) == b'T')
    }

    /// Records writes that run now and wait on the COMMIT; where each one's row count will be
    /// told. `None` when they need another approval than the writes already waiting.
    pub(super) fn defer_to_commit(
        &self,
        statements: &[StatementFacts],
        params: &[Option<String>],
        decision: &Decision,
        t: &mut Tracking,
    ) -> Option<Vec<Tally>> {
        let epoch = self.pipeline.lock().idle_seen;
        let hold = t.commit_hold.get_or_insert_with(|| CommitHold {
            decision: decision.clone(),
            epoch,
            writes: Vec::new(),
        });
        if hold.decision.approval_requirement() != decision.approval_requirement() {
            return None;
        }
        let mut tallies = Vec::with_capacity(statements.len());
        for f in statements {
            let rows = Tally::default();
            hold.writes.push(Write {
                sql: f.text.clone(),
                params: params.to_vec(),
                facts: f.clone(),
                rows: rows.clone(),
            });
            tallies.push(rows);
        }
        tracing::info!(session = %self.ctx.session, writes = hold.writes.len(), "write runs; the transaction's COMMIT will wait for approval");
        Some(tallies)
    }

    /// A COMMIT of a transaction whose writes wait on it: held until approved. `Some(request)`
    /// when it may go upstream (the request it was released under; `None` inside when there
    /// is nothing to approve: the server rolls a failed transaction back itself); `None` once
    /// it was refused (and the transaction rolled back).
    pub(super) async fn commit_held(
        &mut self,
        t: &mut Tracking,
        sql: &str,
        statements: &[StatementFacts],
    ) -> Result<Option<Option<String>>, SessionError> {
        // After an unsynced batch nothing would drain (the server answers on Sync).
        if t.batch_open || statements.len() != 1 || statements.iter().any(|f| f.command != "COMMIT")
        {
            let msg = "gatehouse: this transaction's writes wait on its COMMIT being approved: send COMMIT on its own (PREPARE TRANSACTION is refused)";
            self.refuse(t, "42501", msg, None, None, true).await?;
            return Ok(None);
        }
        self.flush(t).await?;
        self.pipeline.wait_drained().await;
        let epoch = {
            let g = self.pipeline.lock();
            if g.is_closed() {
                return Err(SessionError::Protocol("session ended"));
            }
            g.idle_seen
        };
        if t.commit_hold.as_ref().is_some_and(|h| h.epoch != epoch) {
            // The transaction those writes ran in is over (the server said idle since).
            t.commit_hold = None;
            return Ok(Some(None));
        }
        if self.tx_status.load(Ordering::Acquire) == b'E' {
            // A failed transaction: the server answers COMMIT with a rollback.
            t.commit_hold = None;
            return Ok(Some(None));
        }
        let Some(hold) = t.commit_hold.take() else {
            return Ok(Some(None));
        };
        let transaction = hold
            .writes
            .iter()
            .map(|w| approvals::TxStatement {
                statement: w.sql.clone(),
                params: w.params.clone(),
                rows: w
                    .rows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .unwrap_or(None),
            })
            .collect();
        let held = HeldStatement {
            sql,
            statements: hold.writes.iter().map(|w| w.facts.clone()).collect(),
            decision: hold.decision.clone(),
            key_params: Vec::new(),
            shown_params: Vec::new(),
            simple: true,
            grant: false,
            transaction,
            changed_rows: self.changed_rows(t, &hold.writes).await?,
        };
        t.rollback_before_refusal = true;
        let Some(released) = self.hold(t, held).await? else {
            return Ok(None);
        };
        // Decided again (policies may have changed while it waited): every write must still
        // be allowed, or need the very approval that was given.
        for w in &hold.writes {
            let again = self.check(t, &w.sql).await?;
            let ok = match &again {
                crate::guard::Verdict::Forward { .. } => true,
                crate::guard::Verdict::Hold { decision, .. } => {
                    decision.approval_requirement() == hold.decision.approval_requirement()
                }
                _ => false,
            };
            if !ok {
                let msg = format!(
                    "gatehouse: the transaction was rolled back: a write it holds is no longer allowed ({})",
                    w.sql
                );
                let detail = format!("request: {}; state: refused_at_release", released.request);
                self.refuse(t, "42501", &msg, Some(&detail), None, true)
                    .await?;
                return Ok(None);
            }
        }
        t.rollback_before_refusal = false;
        Ok(Some(Some(released.request)))
    }

    /// The first rows the transaction's writes left in each table they wrote (inserted or
    /// updated rows: a row whose `xmin` is this transaction's id; deleted rows are gone, and
    /// rows written inside the client's own savepoints carry other ids). Read in the client's
    /// session, inside a savepoint of Gatehouse's own with a short statement timeout, which is
    /// rolled back afterwards whatever happened: the client's transaction is left exactly as
    /// it was. Sensitive columns are masked, other text goes through the value detectors.
    async fn changed_rows(
        &mut self,
        t: &mut Tracking,
        writes: &[Write],
    ) -> Result<Vec<approvals::ChangedRows>, SessionError> {
        let tables: std::collections::BTreeSet<&String> = writes
            .iter()
            .flat_map(|w| w.facts.tables_written.iter())
            .collect();
        let named: Vec<(&String, String)> = tables
            .into_iter()
            .filter_map(|t| quoted_table(t).map(|q| (t, q)))
            .collect();
        if named.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = [0u8; 6];
        self.state.entropy.fill(&mut b);
        let savepoint = format!(
            "gatehouse_peek_{}",
            b.iter().map(|x| format!("{x:02x}")).collect::<String>()
        );
        // 1: Gatehouse's savepoint, its timeout (from the next string on), and what kind of
        // relation each name is: only tables are read (a view runs its owner's query, and
        // its columns need not be named like the sensitive ones they show).
        let kinds = named
            .iter()
            .map(|(_, q)| {
                format!(
                    "(SELECT c.relkind::pg_catalog.text FROM pg_catalog.pg_class c WHERE c.oid \
                     OPERATOR(pg_catalog.=) pg_catalog.to_regclass('{}'))",
                    q.replace('\'', "''")
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let first =
            format!("SAVEPOINT {savepoint}; SET LOCAL statement_timeout = '2s'; SELECT {kinds}");
        let kinds = self.peek(t, &first).await?;
        let tables: Vec<bool> = match &kinds {
            Ok(r) => {
                let row = r.first().and_then(|r| r.rows.first());
                (0..named.len())
                    .map(|i| {
                        row.and_then(|row| row.get(i))
                            .and_then(|k| k.as_deref())
                            .is_some_and(|k| k == "r" || k == "p")
                    })
                    .collect()
            }
            Err(_) => vec![false; named.len()],
        };
        // 2: the rows, of tables only.
        let select = named
            .iter()
            .zip(&tables)
            .filter(|(_, is_table)| **is_table)
            .map(|((_, q), _)| {
                // Every name qualified: the session's search path may put its own
                // functions, operators or types before pg_catalog.
                format!(
                    "SELECT * FROM {q} WHERE xmin OPERATOR(pg_catalog.=) \
                     ((pg_catalog.txid_current() OPERATOR(pg_catalog.%) 4294967296)\
                     ::pg_catalog.text::pg_catalog.xid) LIMIT {PEEK_ROWS}"
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        let selected = if select.is_empty() || kinds.is_err() {
            Ok(Vec::new())
        } else {
            self.peek(t, &select).await?
        };
        // 3: the transaction given back exactly as it was, whatever happened above.
        let back = format!("ROLLBACK TO SAVEPOINT {savepoint}; RELEASE SAVEPOINT {savepoint}");
        if let Err(e) = self.peek(t, &back).await? {
            tracing::warn!(session = %self.ctx.session, error = %e, "Gatehouse's savepoint could not be rolled back");
        }
        if self.tx_status.load(Ordering::Acquire) != b'T' {
            // Gatehouse's savepoint did not give the transaction back as it was.
            return Err(SessionError::Protocol(
                "the transaction changed while Gatehouse read the rows a held COMMIT would make durable",
            ));
        }
        let mut results = selected.map(|r| r.into_iter());
        let sensitive = self.guard.sensitive();
        let detectors = super::params::display_detectors(self.state.detectors.as_deref());
        Ok(named
            .iter()
            .zip(&tables)
            .map(|((table, _), is_table)| {
                let mut c = approvals::ChangedRows {
                    table: (*table).clone(),
                    columns: Vec::new(),
                    rows: Vec::new(),
                    unavailable: None,
                };
                if !is_table {
                    c.unavailable = Some(match &kinds {
                        Err(e) => e.clone(),
                        Ok(_) => "not a table (rows of views are not read)".into(),
                    });
                    return c;
                }
                match &mut results {
                    Ok(it) => match it.next() {
                        Some(r) => {
                            c.rows = r
                                .rows
                                .iter()
                                .map(|row| {
                                    row.iter()
                                        .zip(&r.columns)
                                        .map(|(v, col)| {
                                            shown_cell(
                                                col,
                                                v.as_deref(),
                                                sensitive.as_deref(),
                                                detectors,
                                            )
                                        })
                                        .collect()
                                })
                                .collect();
                            c.columns = r.columns;
                        }
                        None => c.unavailable = Some("not read".into()),
                    },
                    Err(e) => c.unavailable = Some(e.clone()),
                }
                c
            })
            .collect())
    }

    /// One query string of Gatehouse's own in the session (see `Expect::Peek`).
    async fn peek(
        &mut self,
        t: &mut Tracking,
        sql: &str,
    ) -> Result<Result<Vec<crate::expect::PeekResult>, String>, SessionError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.expect(crate::expect::Expect::Peek {
            reply: Some(reply),
            results: Vec::new(),
            error: None,
        })
        .await?;
        wire_pg::encode::query(&mut t.out, sql);
        self.flush(t).await?;
        answer
            .await
            .map_err(|_| SessionError::Protocol("session ended"))
    }
}

/// Rows shown per table.
const PEEK_ROWS: usize = 3;

/// `schema.table` as a quoted identifier pair (`None` when it is not of that form).
fn quoted_table(name: &str) -> Option<String> {
    let (schema, table) = name.split_once('.')?;
    if schema.is_empty() || table.is_empty() || table.contains('.') {
        return None;
    }
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    Some(format!("{}.{}", q(schema), q(table)))
}

/// One cell for the approver: a sensitive column masked, other text through the detectors.
fn shown_cell(
    column: &str,
    value: Option<&str>,
    sensitive: Option<&crate::config::SensitiveSet>,
    detectors: Option<&masking::Detectors>,
) -> Option<String> {
    let v = value?;
    // Masked by name, whatever table the sensitive column is configured on: a partition or
    // child table has its parent's columns, and over-masking costs the approver little.
    if sensitive.is_some_and(|s| {
        s.columns
            .keys()
            .any(|c| c.column.eq_ignore_ascii_case(column))
    }) {
        return Some("[masked]".into());
    }
    Some(match detectors {
        Some(d) => super::params::cut(d.redact(v.as_bytes()).map_or_else(
            || v.to_owned(),
            |r| String::from_utf8_lossy(&r).into_owned(),
        )),
        None => "[withheld]".into(),
    })
}

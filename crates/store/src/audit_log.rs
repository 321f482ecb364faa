//! [`SqliteAuditLog`]: the audit event log in the embedded database.
//!
//! Each row keeps a few columns for ad-hoc queries plus the full event JSON exactly as handed
//! in. Reads rebuild events from that JSON only, so editing any field of it (even one without a
//! column) is visible to the chain verifier in the `audit` crate. Hashing is not done here.

use crate::{schema, AuditLog, StoreError};
use model::AuditEvent;
use rusqlite::{params, Connection, OptionalExtension};
use std::borrow::Cow;
use std::path::Path;

/// The audit log on its own SQLite connection (one per writer or reader).
pub struct SqliteAuditLog {
    conn: Connection,
}

impl SqliteAuditLog {
    /// Opens `dir/gatehouse.db`, creating the directory and the database when missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(SqliteAuditLog {
            conn: schema::open_connection(dir)?,
        })
    }

    /// Stores `events` in one transaction, with `json[i]` as the JSON of `events[i]` when
    /// given (serialised here otherwise).
    fn insert(&mut self, events: &[AuditEvent], json: Option<&[&str]>) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO audit_events \
                 (id, time, kind, identity, session, target, prev_hash, hash, event_json) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            for (i, ev) in events.iter().enumerate() {
                let text = match json.and_then(|json| json.get(i)) {
                    Some(text) => Cow::Borrowed(*text),
                    None => Cow::Owned(serde_json::to_string(ev).map_err(|source| {
                        StoreError::Encode {
                            what: "audit event",
                            source,
                        }
                    })?),
                };
                stmt.execute(params![
                    to_i64(ev.id)?,
                    ev.time,
                    ev.kind.as_str(),
                    ev.identity,
                    ev.session,
                    ev.target,
                    ev.prev_hash,
                    ev.hash,
                    text,
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn read(&self, sql: &str, args: impl rusqlite::Params) -> Result<Vec<AuditEvent>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(args, |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            out.push(decode(id, &json)?);
        }
        Ok(out)
    }
}

impl AuditLog for SqliteAuditLog {
    fn head(&self) -> Result<Option<(u64, String)>, StoreError> {
        // Taken from the stored JSON rather than the `hash` column, so the writer continues the
        // chain from exactly what the verifier will see.
        let last: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT id, event_json FROM audit_events ORDER BY id DESC LIMIT 1",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        match last {
            None => Ok(None),
            Some((id, json)) => {
                let ev = decode(id, &json)?;
                Ok(Some((ev.id, ev.hash)))
            }
        }
    }

    fn append(&mut self, events: &[AuditEvent]) -> Result<(), StoreError> {
        self.insert(events, None)
    }

    fn append_serialized(
        &mut self,
        events: &[AuditEvent],
        json: &[&str],
    ) -> Result<(), StoreError> {
        if json.len() != events.len() {
            return Err(StoreError::OutOfRange(format!(
                "{} audit events with {} JSON texts",
                events.len(),
                json.len()
            )));
        }
        self.insert(events, Some(json))
    }

    fn read_after(&self, after_id: u64, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.read(
            "SELECT id, event_json FROM audit_events WHERE id > ?1 ORDER BY id LIMIT ?2",
            // Ids above i64::MAX cannot exist in SQLite, so clamping reads "nothing after".
            params![
                i64::try_from(after_id).unwrap_or(i64::MAX),
                limit_i64(limit)
            ],
        )
    }

    fn read_last(&self, n: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let mut events = self.read(
            "SELECT id, event_json FROM audit_events ORDER BY id DESC LIMIT ?1",
            params![limit_i64(n)],
        )?;
        events.reverse();
        Ok(events)
    }
}

fn decode(row_id: i64, json: &str) -> Result<AuditEvent, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::CorruptEvent {
        id: u64::try_from(row_id).unwrap_or(0),
        reason: format!("event JSON does not parse: {e}"),
    })
}

fn to_i64(id: u64) -> Result<i64, StoreError> {
    i64::try_from(id).map_err(|_| StoreError::OutOfRange(format!("audit event id {id}")))
}

/// SQLite's LIMIT is a signed 64-bit integer; anything larger means "no limit".
fn limit_i64(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

//! [`SqliteApprovals`]: approval requests in the embedded store (`approvals.db` in the data
//! directory), as the `approvals` registry's [`ApprovalStore`].
//!
//! One row per request, keyed by its id and replaced whole on every change (the registry
//! saves the request as it stands after each step). The row's JSON is the record of truth;
//! state and times are columns so the open requests and the history are found without reading
//! every row. What "open" means is the trait's (pending, or approved with the grant unused);
//! whether a request may still be voted on or used is the registry's business, not this file's.

use crate::{schema, StoreError};
use approvals::{ApprovalStore, Request, State};
use rusqlite::{params, Connection};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Approval requests on their own connection (the registry saves while holding its lock, so
/// these writes never wait on token look-ups or the audit writer).
pub struct SqliteApprovals {
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for SqliteApprovals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteApprovals").finish_non_exhaustive()
    }
}

impl SqliteApprovals {
    /// Opens `dir/approvals.db`, creating the directory and the database when missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(SqliteApprovals {
            conn: Mutex::new(schema::open_approvals_connection(dir)?),
        })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // As for the token store: SQLite rolls back what a panicking holder left unfinished.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Inserts `request`, or replaces the stored row with the same id.
    pub fn upsert(&self, request: &Request) -> Result<(), StoreError> {
        let json = serde_json::to_string(request).map_err(|source| StoreError::Encode {
            what: "approval request",
            source,
        })?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "INSERT INTO approval_requests \
             (id, state, requester, target, created_at_ms, expires_at_ms, decided_at_ms, \
              used_at_ms, request_json) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) \
             ON CONFLICT (id) DO UPDATE SET \
               state = excluded.state, requester = excluded.requester, \
               target = excluded.target, created_at_ms = excluded.created_at_ms, \
               expires_at_ms = excluded.expires_at_ms, decided_at_ms = excluded.decided_at_ms, \
               used_at_ms = excluded.used_at_ms, request_json = excluded.request_json",
        )?;
        stmt.execute(params![
            request.id,
            request.state.as_str(),
            request.spec.requester,
            request.spec.target,
            request.created_at_ms,
            request.expires_at_ms,
            request.decided_at_ms,
            request.used_at_ms,
            json,
        ])?;
        Ok(())
    }

    /// Requests pending, or approved with `used_at` unset, oldest first.
    pub fn open_requests(&self) -> Result<Vec<Request>, StoreError> {
        self.query(
            "WHERE state = ?1 OR (state = ?2 AND used_at_ms IS NULL) \
             ORDER BY created_at_ms, id",
            params![State::Pending.as_str(), State::Approved.as_str()],
        )
    }

    /// Requests no longer pending (approved, denied, expired, withdrawn), the most recently
    /// decided first; `offset` and `limit` page through them.
    pub fn finished(&self, offset: usize, limit: usize) -> Result<Vec<Request>, StoreError> {
        let offset = i64::try_from(offset).map_err(|_| StoreError::OutOfRange("offset".into()))?;
        let limit = i64::try_from(limit).map_err(|_| StoreError::OutOfRange("limit".into()))?;
        self.query(
            "WHERE state <> ?1 \
             ORDER BY COALESCE(decided_at_ms, created_at_ms) DESC, id DESC \
             LIMIT ?2 OFFSET ?3",
            params![State::Pending.as_str(), limit, offset],
        )
    }

    fn query(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<Request>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, request_json FROM approval_requests {tail}"
        ))?;
        let rows = stmt.query_map(args, |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row?;
            let request: Request =
                serde_json::from_str(&json).map_err(|e| StoreError::CorruptApproval {
                    id: id.clone(),
                    reason: e.to_string(),
                })?;
            // The key is the row's; a JSON edited to another id is not believed.
            if request.id != id {
                return Err(StoreError::CorruptApproval {
                    id,
                    reason: format!("its JSON names request {}", request.id),
                });
            }
            out.push(request);
        }
        Ok(out)
    }
}

impl ApprovalStore for SqliteApprovals {
    fn save(&self, request: &Request) -> Result<(), String> {
        self.upsert(request).map_err(|e| e.to_string())
    }

    fn load_open(&self) -> Result<Vec<Request>, String> {
        self.open_requests().map_err(|e| e.to_string())
    }
}

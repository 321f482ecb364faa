//! [`SqliteStore`]: token records in the embedded database.
//!
//! Rows mirror [`TokenRecord`] field by field; groups are a JSON array and the SCRAM verifier
//! is split into columns. No rule about activity or expiry lives here.

use crate::{schema, SqliteAuditLog, StoreError, TokenStore};
use model::{IdentityKind, ScramVerifier, TokenRecord};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

const COLUMNS: &str = "id, identity, kind, groups_json, created_at, expires_at, revoked_at, \
     token_hash, scram_salt, scram_iterations, scram_stored_key, scram_server_key";

/// The embedded store. One connection behind a mutex: token look-ups are short point queries,
/// and the audit writer uses its own connection ([`SqliteStore::open_audit_log`]) so it never
/// waits on them.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens `dir/gatehouse.db`, creating the directory and the database when missing.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Ok(SqliteStore {
            conn: Mutex::new(schema::open_connection(dir)?),
        })
    }

    /// Opens a separate connection to the same database for the audit log.
    pub fn open_audit_log(dir: &Path) -> Result<SqliteAuditLog, StoreError> {
        SqliteAuditLog::open(dir)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave the connection half-updated (SQLite rolls
        // back an unfinished transaction when its guard drops), so a poisoned lock is usable.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn query_tokens(
        &self,
        sql_tail: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {COLUMNS} FROM tokens {sql_tail}"))?;
        let rows = stmt.query_map(args, RawToken::from_row)?;
        let mut out = Vec::new();
        for raw in rows {
            out.push(raw?.into_record()?);
        }
        Ok(out)
    }
}

impl TokenStore for SqliteStore {
    fn insert_token(&self, rec: &TokenRecord) -> Result<(), StoreError> {
        let groups = serde_json::to_string(&rec.groups).map_err(|source| StoreError::Encode {
            what: "token groups",
            source,
        })?;
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "INSERT INTO tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
        ))?;
        stmt.execute(params![
            rec.id,
            rec.identity,
            rec.kind.as_str(),
            groups,
            rec.created_at,
            rec.expires_at,
            rec.revoked_at,
            rec.token_hash,
            rec.scram.salt,
            rec.scram.iterations,
            rec.scram.stored_key.as_slice(),
            rec.scram.server_key.as_slice(),
        ])?;
        Ok(())
    }

    fn tokens_for_identity(&self, identity: &str) -> Result<Vec<TokenRecord>, StoreError> {
        self.query_tokens(
            "WHERE identity = ?1 ORDER BY created_at, rowid",
            params![identity],
        )
    }

    fn token_by_hash(&self, token_hash_hex: &str) -> Result<Option<TokenRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM tokens WHERE token_hash = ?1"
        ))?;
        let raw = stmt
            .query_row(params![token_hash_hex], RawToken::from_row)
            .optional()?;
        raw.map(RawToken::into_record).transpose()
    }

    fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .query_tokens("WHERE id = ?1", params![id])?
            .into_iter()
            .next())
    }

    fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        self.query_tokens("ORDER BY created_at, rowid", [])
    }

    fn revoke_token(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        let conn = self.conn();
        let changed = conn.execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, at],
        )?;
        // The provider's refresh token of a revoked login is of no more use: not kept.
        conn.execute(
            "UPDATE token_idp SET refresh_token = NULL WHERE token_id = ?1",
            params![id],
        )?;
        Ok(changed > 0)
    }

    fn set_token_idp(
        &self,
        id: &str,
        idp: &model::IdpRef,
        refresh_token: Option<&str>,
    ) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO token_idp (token_id, provider, issuer, subject, refresh_token) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, idp.provider, idp.issuer, idp.subject, refresh_token],
        )?;
        Ok(())
    }

    fn refreshable_tokens(
        &self,
        now: i64,
    ) -> Result<Vec<(TokenRecord, String, String)>, StoreError> {
        let columns: String = COLUMNS
            .split(", ")
            .map(|c| format!("t.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {columns}, i.provider, i.refresh_token FROM tokens t \
             JOIN token_idp i ON i.token_id = t.id \
             WHERE t.revoked_at IS NULL AND t.expires_at > ?1 AND i.refresh_token IS NOT NULL \
             ORDER BY t.created_at"
        ))?;
        let rows = stmt.query_map(params![now], |r| {
            Ok((
                RawToken::from_row(r)?,
                r.get::<_, String>(12)?,
                r.get::<_, String>(13)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (raw, provider, refresh) = row?;
            out.push((raw.into_record()?, provider, refresh));
        }
        Ok(out)
    }

    fn set_refresh_token(&self, id: &str, refresh_token: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute(
            "UPDATE token_idp SET refresh_token = ?2 WHERE token_id = ?1",
            params![id, refresh_token],
        )?;
        Ok(())
    }

    fn token_idp(&self, id: &str) -> Result<Option<model::IdpRef>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT provider, issuer, subject FROM token_idp WHERE token_id = ?1",
        )?;
        Ok(stmt
            .query_row(params![id], |r| {
                Ok(model::IdpRef {
                    provider: r.get(0)?,
                    issuer: r.get(1)?,
                    subject: r.get(2)?,
                })
            })
            .optional()?)
    }
}

/// A row as SQLite returns it, before the checks that turn it into a [`TokenRecord`].
struct RawToken {
    id: String,
    identity: String,
    kind: String,
    groups_json: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
    token_hash: String,
    salt: Vec<u8>,
    iterations: u32,
    stored_key: Vec<u8>,
    server_key: Vec<u8>,
}

impl RawToken {
    fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawToken {
            id: row.get(0)?,
            identity: row.get(1)?,
            kind: row.get(2)?,
            groups_json: row.get(3)?,
            created_at: row.get(4)?,
            expires_at: row.get(5)?,
            revoked_at: row.get(6)?,
            token_hash: row.get(7)?,
            salt: row.get(8)?,
            iterations: row.get(9)?,
            stored_key: row.get(10)?,
            server_key: row.get(11)?,
        })
    }

    fn into_record(self) -> Result<TokenRecord, StoreError> {
        let corrupt = |reason: String| StoreError::CorruptToken {
            id: self.id.clone(),
            reason,
        };
        let kind: IdentityKind = self.kind.parse().map_err(corrupt)?;
        let groups: Vec<String> =
            serde_json::from_str(&self.groups_json).map_err(|e| corrupt(format!("groups: {e}")))?;
        let stored_key = key32(&self.stored_key).ok_or_else(|| corrupt("stored key".into()))?;
        let server_key = key32(&self.server_key).ok_or_else(|| corrupt("server key".into()))?;
        Ok(TokenRecord {
            id: self.id,
            identity: self.identity,
            kind,
            groups,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            token_hash: self.token_hash,
            scram: ScramVerifier {
                salt: self.salt,
                iterations: self.iterations,
                stored_key,
                server_key,
            },
        })
    }
}

fn key32(bytes: &[u8]) -> Option<[u8; 32]> {
    bytes.try_into().ok()
}

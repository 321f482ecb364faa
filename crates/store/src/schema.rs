//! Opening the embedded database: directory, connection settings and schema migrations.
//!
//! Several processes share the file (the server appends audit events while the CLI issues
//! tokens and tails the log), so every connection uses WAL (readers never block the writer),
//! `synchronous=NORMAL` (in WAL mode a commit is durable against process crashes and only the
//! last commits can be lost on power failure, which is the usual trade for group commit), and a
//! busy timeout so a brief lock held by another process is waited out instead of failing.

use crate::{StoreError, APPROVALS_FILE_NAME, DB_FILE_NAME};
use rusqlite::{Connection, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a statement waits for another process's lock before failing with SQLITE_BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this build writes (stored in `PRAGMA user_version`).
const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS tokens (
    id               TEXT PRIMARY KEY,
    identity         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    groups_json      TEXT NOT NULL,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    revoked_at       INTEGER,
    token_hash       TEXT NOT NULL UNIQUE,
    scram_salt       BLOB NOT NULL,
    scram_iterations INTEGER NOT NULL,
    scram_stored_key BLOB NOT NULL,
    scram_server_key BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS tokens_by_identity ON tokens (identity, created_at);

-- The columns beside event_json are for querying by hand; event_json is the record of truth
-- (it is what is read back and what the hash chain covers).
CREATE TABLE IF NOT EXISTS audit_events (
    id         INTEGER PRIMARY KEY,
    time       TEXT NOT NULL,
    kind       TEXT NOT NULL,
    identity   TEXT,
    session    TEXT NOT NULL,
    target     TEXT,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    event_json TEXT NOT NULL
);
";

/// The approval requests' schema version (stored in that file's `PRAGMA user_version`).
const APPROVALS_SCHEMA_VERSION: i64 = 1;

/// Approval requests, in a file of their own (`approvals.db`): a held statement's request is
/// written while the statement waits, and must not queue behind the audit writer's group
/// commits nor fail because something holds the audit database's write lock.
/// `request_json` is the record of truth; the columns beside it are what the open requests
/// and the history are found by (and for querying by hand). Times are epoch milliseconds.
const APPROVALS_SCHEMA_V1: &str = "
CREATE TABLE IF NOT EXISTS approval_requests (
    id            TEXT PRIMARY KEY,
    state         TEXT NOT NULL,
    requester     TEXT NOT NULL,
    target        TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    decided_at_ms INTEGER,
    used_at_ms    INTEGER,
    request_json  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS approval_requests_by_state
    ON approval_requests (state, created_at_ms);
CREATE INDEX IF NOT EXISTS approval_requests_by_time
    ON approval_requests (decided_at_ms, created_at_ms);
";

/// Opens (creating if needed) `dir/gatehouse.db` with the settings above and the current schema.
pub(crate) fn open_connection(dir: &Path) -> Result<Connection, StoreError> {
    let conn = open_file(dir, DB_FILE_NAME, SCHEMA_VERSION, SCHEMA_V1)?;
    // Added after version 1, and only added to: a table older builds never read, so the
    // version stays (they keep opening the file).
    conn.execute_batch(TOKEN_IDP)?;
    Ok(conn)
}

/// Which identity provider vouched for the person a token was issued to (`gatehouse login`),
/// so sessions using that token record the provider, issuer and subject; and the provider's
/// refresh token, with which the server asks it again while the credential lives (the file
/// is the owner's only, `private_files`; the refresh token is dropped at revocation).
const TOKEN_IDP: &str = "
CREATE TABLE IF NOT EXISTS token_idp (
    token_id      TEXT PRIMARY KEY REFERENCES tokens (id),
    provider      TEXT NOT NULL,
    issuer        TEXT NOT NULL,
    subject       TEXT NOT NULL,
    refresh_token TEXT
);
";

/// Opens (creating if needed) `dir/approvals.db` with the settings above and its schema.
pub(crate) fn open_approvals_connection(dir: &Path) -> Result<Connection, StoreError> {
    open_file(
        dir,
        APPROVALS_FILE_NAME,
        APPROVALS_SCHEMA_VERSION,
        APPROVALS_SCHEMA_V1,
    )
}

fn open_file(
    dir: &Path,
    file: &str,
    version: i64,
    schema_v1: &str,
) -> Result<Connection, StoreError> {
    create_dir(dir)?;
    let path = dir.join(file);
    let open_err = |source| StoreError::Open {
        path: path.clone(),
        source,
    };
    let mut conn = Connection::open(&path).map_err(open_err)?;
    private_files(&path).map_err(|source| StoreError::Permissions {
        path: path.clone(),
        source,
    })?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(open_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal { path, mode });
    }
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(open_err)?;
    migrate(&mut conn, version, schema_v1)?;
    Ok(conn)
}

/// The database and its WAL and shared-memory files readable by the owner only (token
/// verifiers, identity providers' refresh tokens, the audit trail), even in a data directory
/// that existed with wider permissions; SQLite gives new WAL files the database's mode.
fn private_files(db: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            let file = PathBuf::from(name);
            if file.exists() {
                std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))?;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

/// Creates the data directory; new directories are private to the owner on Unix because the
/// database holds token verifiers and the audit trail.
fn create_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|source| StoreError::CreateDir {
        path: PathBuf::from(dir),
        source,
    })
}

/// Brings a file's schema to `version` (both files are at their first version: `schema_v1`).
/// Runs in an IMMEDIATE transaction so two processes opening a fresh directory at once do not
/// both create it.
fn migrate(conn: &mut Connection, version: i64, schema_v1: &str) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > version {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: version,
        });
    }
    if found < 1 {
        tx.execute_batch(schema_v1)?;
        tx.pragma_update(None, "user_version", version)?;
    }
    tx.commit()?;
    Ok(())
}

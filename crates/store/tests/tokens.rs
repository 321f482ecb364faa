//! SqliteStore as a TokenStore: round trips, look-ups, revocation, sharing between handles.

use model::{IdentityKind, ScramVerifier, TokenRecord};
use store::{SqliteStore, StoreError, TokenStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn record(id: &str, identity: &str, created_at: i64) -> TokenRecord {
    TokenRecord {
        id: id.to_owned(),
        identity: identity.to_owned(),
        kind: IdentityKind::Agent,
        groups: vec!["analysts".into(), "eu".into()],
        created_at,
        expires_at: created_at + 3600,
        revoked_at: None,
        token_hash: format!("{:064x}", created_at),
        scram: ScramVerifier {
            salt: vec![1, 2, 3, 4],
            iterations: 4096,
            stored_key: [7; 32],
            server_key: [9; 32],
        },
    }
}

#[test]
fn insert_and_read_back_every_field() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let rec = record("aa01", "report-bot", 100);
    store.insert_token(&rec)?;

    assert_eq!(store.token_by_hash(&rec.token_hash)?, Some(rec.clone()));
    assert_eq!(store.tokens_for_identity("report-bot")?, vec![rec.clone()]);
    assert_eq!(store.list_tokens()?, vec![rec]);
    assert_eq!(store.token_by_hash(&format!("{:064x}", 1))?, None);
    assert!(store.tokens_for_identity("alice")?.is_empty());
    Ok(())
}

#[test]
fn lists_oldest_first_and_filters_by_identity() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.insert_token(&record("c", "alice", 300))?;
    store.insert_token(&record("a", "alice", 100))?;
    store.insert_token(&record("b", "bob", 200))?;

    let ids = |recs: Vec<TokenRecord>| recs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_tokens()?), ["a", "b", "c"]);
    assert_eq!(ids(store.tokens_for_identity("alice")?), ["a", "c"]);
    Ok(())
}

#[test]
fn duplicate_id_or_hash_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.insert_token(&record("x", "alice", 1))?;
    assert!(store.insert_token(&record("x", "alice", 2)).is_err());
    assert!(store.insert_token(&record("y", "alice", 1)).is_err());
    Ok(())
}

#[test]
fn revoke_once() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let rec = record("r1", "alice", 10);
    store.insert_token(&rec)?;

    assert!(store.revoke_token("r1", 50)?);
    assert!(!store.revoke_token("r1", 60)?, "already revoked");
    assert!(!store.revoke_token("nope", 60)?, "no such id");
    let back = store.token_by_hash(&rec.token_hash)?;
    assert_eq!(back.and_then(|r| r.revoked_at), Some(50));
    Ok(())
}

#[test]
fn two_handles_on_one_directory_see_each_other() -> TestResult {
    let dir = tempfile::tempdir()?;
    let nested = dir.path().join("a/b");
    let cli = SqliteStore::open(&nested)?;
    let server = SqliteStore::open(&nested)?;
    cli.insert_token(&record("t", "alice", 5))?;
    assert_eq!(server.tokens_for_identity("alice")?.len(), 1);
    assert!(nested.join(store::DB_FILE_NAME).exists());
    Ok(())
}

#[test]
fn corrupt_rows_are_reported_not_panicked() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    store.insert_token(&record("bad", "alice", 5))?;
    let raw = rusqlite::Connection::open(dir.path().join(store::DB_FILE_NAME))?;
    raw.execute("UPDATE tokens SET scram_stored_key = x'00'", [])?;
    match store.list_tokens() {
        Err(StoreError::CorruptToken { id, .. }) => assert_eq!(id, "bad"),
        other => panic!("expected CorruptToken, got {other:?}"),
    }
    Ok(())
}

#[test]
fn identity_provider_and_refresh_token_of_a_login_credential() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    let idp = model::IdpRef {
        provider: "corp".into(),
        issuer: "https://idp.example.com".into(),
        subject: "alice".into(),
    };
    let (with, without, revoked, expired) = (
        record("aa01", "alice", 100),
        record("aa02", "bob", 110),
        record("aa03", "carol", 120),
        TokenRecord {
            expires_at: 150,
            ..record("aa04", "dave", 130)
        },
    );
    for r in [&with, &without, &revoked, &expired] {
        store.insert_token(r)?;
    }
    store.set_token_idp("aa01", &idp, Some("rt-1"))?;
    store.set_token_idp("aa02", &idp, None)?;
    store.set_token_idp("aa03", &idp, Some("rt-3"))?;
    store.set_token_idp("aa04", &idp, Some("rt-4"))?;
    store.revoke_token("aa03", 200)?;
    assert_eq!(store.token_idp("aa02")?, Some(idp.clone()));
    assert_eq!(store.token_idp("zz99")?, None);
    // At 200 dave's has expired; carol's is revoked; bob's has no refresh token.
    let live = store.refreshable_tokens(200)?;
    assert_eq!(live, vec![(with.clone(), "corp".into(), "rt-1".into())]);
    store.set_refresh_token("aa01", "rt-2")?;
    assert_eq!(store.refreshable_tokens(200)?[0].2, "rt-2");
    // Reopening finds them (the table is created once).
    drop(store);
    let store = SqliteStore::open(dir.path())?;
    assert_eq!(store.token_idp("aa01")?, Some(idp));
    Ok(())
}

#[cfg(unix)]
#[test]
fn database_files_are_private_even_in_an_open_directory() -> TestResult {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir()?;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let store = SqliteStore::open(dir.path())?;
    store.insert_token(&record("aa01", "alice", 100))?;
    for name in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))?
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
    Ok(())
}

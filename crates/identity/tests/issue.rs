//! Issuing and checking tokens against a real SqliteStore: salt sharing, SCRAM candidates,
//! expiry, revocation, kind and name rules.

use identity::{
    hash_token, issue_token, scram_candidates, scram_candidates_or_fake, scram_verifier,
    verify_cleartext, IdentityError, IssueRequest, ScramCandidates,
};
use model::IdentityKind;
use rand::rngs::StdRng;
use rand::SeedableRng;
use store::{SqliteStore, TokenStore};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const NOW: i64 = 1_700_000_000;
const HOUR: u64 = 3600;

fn req(identity: &str, kind: IdentityKind, ttl_secs: u64) -> IssueRequest {
    IssueRequest {
        identity: identity.into(),
        kind,
        groups: vec!["analysts".into()],
        ttl_secs,
    }
}

fn setup() -> Result<(tempfile::TempDir, SqliteStore, StdRng), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = SqliteStore::open(dir.path())?;
    Ok((dir, store, StdRng::seed_from_u64(7)))
}

/// Proves knowledge of `token` the way a client would, for a made-up exchange.
fn proof_for(token: &str, cands: &ScramCandidates, auth_message: &[u8]) -> Vec<u8> {
    use hmac::{Hmac, Mac};
    use sha2::{Digest, Sha256};
    let mut salted = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(token.as_bytes(), &cands.salt, cands.iterations, &mut salted);
    let mac = |key: &[u8], msg: &[u8]| -> Vec<u8> {
        match Hmac::<Sha256>::new_from_slice(key) {
            Ok(mut m) => {
                m.update(msg);
                m.finalize().into_bytes().to_vec()
            }
            Err(_) => Vec::new(),
        }
    };
    let client_key = mac(&salted, b"Client Key");
    let stored_key = Sha256::digest(&client_key);
    let signature = mac(&stored_key, auth_message);
    client_key
        .iter()
        .zip(signature)
        .map(|(k, s)| k ^ s)
        .collect()
}

#[test]
fn issued_token_is_stored_only_as_hash_and_verifier() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    let (token, rec) = issue_token(
        &store,
        &req("alice", IdentityKind::Human, 8 * HOUR),
        NOW,
        &mut rng,
    )?;
    assert!(token.starts_with("gh_"));
    assert_eq!(rec.id.len(), 16);
    assert_eq!(rec.token_hash, hash_token(&token));
    assert_eq!((rec.created_at, rec.expires_at), (NOW, NOW + 8 * 3600));
    assert_eq!(rec.scram.salt.len(), 16);
    assert_eq!(rec.scram, scram_verifier(&token, &rec.scram.salt, 4096));
    assert_eq!(store.list_tokens()?, vec![rec.clone()]);
    let listed = format!("{:?}", store.list_tokens()?);
    assert!(
        !listed.contains(&token),
        "the token itself must not be stored"
    );
    Ok(())
}

#[test]
fn tokens_of_one_identity_share_a_salt() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    let r = req("report-bot", IdentityKind::Agent, HOUR);
    let (t1, a) = issue_token(&store, &r, NOW, &mut rng)?;
    let (t2, b) = issue_token(&store, &r, NOW + 10, &mut rng)?;
    let (_, other) = issue_token(
        &store,
        &req("alice", IdentityKind::Human, HOUR),
        NOW,
        &mut rng,
    )?;
    assert_eq!(a.scram.salt, b.scram.salt);
    assert_ne!(a.scram.salt, other.scram.salt);
    assert_ne!(a.scram.stored_key, b.scram.stored_key);

    let cands = scram_candidates(&store, "report-bot", NOW + 20)?.ok_or("no candidates")?;
    assert_eq!(
        (cands.salt.clone(), cands.iterations),
        (a.scram.salt.clone(), 4096)
    );
    assert_eq!(cands.tokens.len(), 2);
    for (token, rec) in [(&t1, &a), (&t2, &b)] {
        let proof = proof_for(token, &cands, b"exchange");
        assert_eq!(
            cands.match_proof(b"exchange", &proof).map(|r| &r.id),
            Some(&rec.id)
        );
    }
    assert!(cands.match_proof(b"exchange", &[0u8; 32]).is_none());
    Ok(())
}

#[test]
fn expired_identity_gets_a_new_salt_and_no_candidates_meanwhile() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    let r = req("alice", IdentityKind::Human, HOUR);
    let (_, old) = issue_token(&store, &r, NOW, &mut rng)?;
    let later = NOW + 2 * 3600;
    assert_eq!(scram_candidates(&store, "alice", later)?, None);
    let (_, new) = issue_token(&store, &r, later, &mut rng)?;
    assert_ne!(old.scram.salt, new.scram.salt);
    let cands = scram_candidates(&store, "alice", later)?.ok_or("no candidates")?;
    assert_eq!(cands.tokens, vec![new]);
    Ok(())
}

#[test]
fn cleartext_check_requires_identity_activity_and_the_exact_token() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    let (token, rec) = issue_token(
        &store,
        &req("alice", IdentityKind::Human, HOUR),
        NOW,
        &mut rng,
    )?;
    assert_eq!(
        verify_cleartext(&store, "alice", &token, NOW)?,
        Some(rec.clone())
    );
    assert_eq!(verify_cleartext(&store, "bob", &token, NOW)?, None);
    assert_eq!(
        verify_cleartext(&store, "alice", &format!("{token}x"), NOW)?,
        None
    );
    assert_eq!(verify_cleartext(&store, "alice", "", NOW)?, None);
    assert_eq!(
        verify_cleartext(&store, "alice", &"a".repeat(100_000), NOW)?,
        None
    );
    // Expiry is exclusive: at expires_at the token is no longer valid.
    assert!(verify_cleartext(&store, "alice", &token, rec.expires_at - 1)?.is_some());
    assert_eq!(
        verify_cleartext(&store, "alice", &token, rec.expires_at)?,
        None
    );
    Ok(())
}

#[test]
fn revoked_token_fails_both_ways_and_its_siblings_do_not() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    let r = req("alice", IdentityKind::Human, HOUR);
    let (t1, a) = issue_token(&store, &r, NOW, &mut rng)?;
    let (t2, b) = issue_token(&store, &r, NOW, &mut rng)?;
    assert!(store.revoke_token(&a.id, NOW + 1)?);

    assert_eq!(verify_cleartext(&store, "alice", &t1, NOW + 2)?, None);
    assert_eq!(
        verify_cleartext(&store, "alice", &t2, NOW + 2)?,
        Some(b.clone())
    );
    let cands = scram_candidates(&store, "alice", NOW + 2)?.ok_or("no candidates")?;
    assert_eq!(cands.tokens, vec![b]);
    assert!(cands
        .match_proof(b"m", &proof_for(&t1, &cands, b"m"))
        .is_none());
    assert!(cands
        .match_proof(b"m", &proof_for(&t2, &cands, b"m"))
        .is_some());
    Ok(())
}

#[test]
fn kind_mismatch_is_refused_while_tokens_are_active() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    issue_token(
        &store,
        &req("bot", IdentityKind::Agent, HOUR),
        NOW,
        &mut rng,
    )?;
    let err = issue_token(
        &store,
        &req("bot", IdentityKind::Human, HOUR),
        NOW,
        &mut rng,
    );
    assert!(matches!(
        err,
        Err(IdentityError::KindMismatch {
            existing: IdentityKind::Agent,
            requested: IdentityKind::Human,
            ..
        })
    ));
    // Once nothing is active the identity may change kind.
    let later = NOW + 2 * 3600;
    assert!(issue_token(
        &store,
        &req("bot", IdentityKind::Human, HOUR),
        later,
        &mut rng
    )
    .is_ok());
    Ok(())
}

#[test]
fn names_ttl_and_groups_are_checked() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    let bad_identity = issue_token(
        &store,
        &req("-rf", IdentityKind::Human, HOUR),
        NOW,
        &mut rng,
    );
    assert!(matches!(
        bad_identity,
        Err(IdentityError::InvalidName {
            what: "identity",
            ..
        })
    ));

    let mut bad_group = req("alice", IdentityKind::Human, HOUR);
    bad_group.groups.push("no spaces".into());
    let res = issue_token(&store, &bad_group, NOW, &mut rng);
    assert!(matches!(
        res,
        Err(IdentityError::InvalidName { what: "group", .. })
    ));

    for ttl in [0, u64::MAX] {
        let res = issue_token(
            &store,
            &req("alice", IdentityKind::Human, ttl),
            NOW,
            &mut rng,
        );
        assert!(
            matches!(res, Err(IdentityError::InvalidTtl { .. })),
            "{ttl}"
        );
    }
    assert!(store.list_tokens()?.is_empty(), "nothing stored on refusal");

    let mut dup = req("alice", IdentityKind::Human, HOUR);
    dup.groups = vec!["b".into(), "a".into(), "b".into()];
    let (_, rec) = issue_token(&store, &dup, NOW, &mut rng)?;
    assert_eq!(rec.groups, ["b", "a"]);
    Ok(())
}

#[test]
fn unknown_identity_gets_a_stable_fake_salt() -> TestResult {
    let (_dir, store, mut rng) = setup()?;
    issue_token(
        &store,
        &req("alice", IdentityKind::Human, HOUR),
        NOW,
        &mut rng,
    )?;
    let ghost = scram_candidates_or_fake(&store, "ghost", NOW, b"server secret")?;
    assert_eq!(
        ghost,
        scram_candidates_or_fake(&store, "ghost", NOW, b"server secret")?
    );
    assert_eq!((ghost.salt.len(), ghost.iterations), (16, 4096));
    assert!(ghost.tokens.is_empty());
    assert!(ghost.match_proof(b"m", &[0u8; 32]).is_none());
    let real = scram_candidates_or_fake(&store, "alice", NOW, b"server secret")?;
    assert_eq!(real.tokens.len(), 1);
    Ok(())
}

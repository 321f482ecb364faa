//! Wiring of `gatehouse login` on the admin listener (`console::login_api`): credentials are
//! Gatehouse tokens issued in the token store for the identity the provider vouched for
//! (kind human, the provider's groups), audited as `login` events with the provider, issuer
//! and subject; logout revokes the caller's token. While a credential lives, the provider is
//! asked again with its refresh token (`spawn_recheck`): a refusal, or another identity or
//! other groups than the credential carries, revokes it at once.

use console::login_api::{LoginApi, LoginHooks, LoginStep};
use model::{AuditEvent, AuditKind, IdpRef, Outcome};
use proxy::ProxyState;
use std::sync::Arc;

pub fn login_api(state: &ProxyState, postgres_addr: String) -> LoginApi {
    let (tokens, audit, clock) = (
        state.tokens.clone(),
        state.audit.clone(),
        state.clock.clone(),
    );
    let issue: console::login_api::IssueCredential =
        Arc::new(move |v, max_ttl, refresh, whence| {
            let now = clock.now_secs();
            let req = identity::IssueRequest {
                identity: v.identity.name.clone(),
                kind: v.identity.kind,
                groups: v.identity.groups.clone(),
                ttl_secs: u64::try_from(max_ttl.max(1)).unwrap_or(1),
            };
            let idp = IdpRef {
                provider: v.provider.clone(),
                issuer: v.issuer.clone(),
                subject: v.subject.clone(),
            };
            // The evidence's slot first: no credential exists without its record.
            let slot = audit.reserve().map_err(|e| format!("audit trail: {e}"))?;
            let (token, rec) =
                identity::issue_token(tokens.as_ref(), &req, now, &mut rand::rngs::OsRng)
                    .map_err(|e| e.to_string())?;
            if let Err(e) = tokens.set_token_idp(&rec.id, &idp, refresh) {
                // Never handed out: a credential the provider cannot be asked about again must
                // not exist.
                let _ = tokens.revoke_token(&rec.id, now);
                return Err(e.to_string());
            }
            let mut ev = event(&clock.rfc3339(), &v.identity.name);
            ev.identity_kind = Some(v.identity.kind.as_str().to_owned());
            ev.groups.clone_from(&v.identity.groups);
            ev.idp = Some(idp);
            ev.client_addr = Some(whence.client.to_string());
            ev.statement = Some(format!(
                "credential {} issued for login {}, expires at {}",
                rec.id, whence.login, rec.expires_at
            ));
            slot.send(ev);
            Ok((token, rec.expires_at))
        });
    let (tokens, audit, clock) = (
        state.tokens.clone(),
        state.audit.clone(),
        state.clock.clone(),
    );
    let live = state.live.clone();
    let revoke: console::login_api::Revoke = Arc::new(move |token| {
        let now = clock.now_secs();
        let Some(rec) =
            identity::verify_bearer(tokens.as_ref(), token, now).map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        let idp = tokens.token_idp(&rec.id).map_err(|e| e.to_string())?;
        revoke_recorded(
            &live,
            &*tokens,
            &audit,
            clock.as_ref(),
            &rec,
            idp,
            "at logout",
        )
    });
    let (audit, clock) = (state.audit.clone(), state.clock.clone());
    let record: console::login_api::RecordLogin = Arc::new(move |provider, step| {
        let mut ev = event(&clock.rfc3339(), "");
        ev.identity = None;
        match step {
            LoginStep::Started { flow, whence } => {
                ev.client_addr = Some(whence.client.to_string());
                ev.statement = Some(format!(
                    "{flow} login {} with identity provider {provider:?} started",
                    whence.login
                ));
            }
            LoginStep::Refused { why, whence } => {
                ev.client_addr = Some(whence.client.to_string());
                ev.statement = Some(format!(
                    "login {} with identity provider {provider:?} refused",
                    whence.login
                ));
                ev.outcome = Outcome::Error {
                    sqlstate: "28000".into(),
                    message: why.to_owned(),
                };
                tracing::info!(provider, reason = why, "login refused");
            }
        }
        if audit.submit(ev).is_err() {
            tracing::warn!(provider, "a login step could not be audited");
        }
    });
    let clock = state.clock.clone();
    let now: console::login_api::NowSecs = Arc::new(move || clock.now_secs());
    let entropy = state.entropy.clone();
    let random: console::login_api::Random = Arc::new(move |buf| entropy.fill(buf));
    let hooks = LoginHooks {
        issue,
        revoke,
        record,
        now,
        random,
    };
    LoginApi::new(state.providers.clone(), hooks, postgres_addr)
}

fn event(at: &str, identity: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(AuditKind::Login, "login", at.to_owned());
    ev.identity = Some(identity.to_owned());
    ev
}

/// Revokes `rec` with its `login` event (the audit slot is taken first: no revocation goes
/// unrecorded, and none is skipped because the trail failed after it).
fn revoke_recorded(
    live: &proxy::live::LiveSessions,
    tokens: &dyn store::TokenStore,
    audit: &audit::AuditHandle,
    clock: &dyn proxy::Clock,
    rec: &model::TokenRecord,
    idp: Option<IdpRef>,
    why: &str,
) -> Result<bool, String> {
    let slot = audit.reserve().map_err(|e| format!("audit trail: {e}"))?;
    let revoked = tokens
        .revoke_token(&rec.id, clock.now_secs())
        .map_err(|e| e.to_string())?;
    let mut ev = event(&clock.rfc3339(), &rec.identity);
    ev.identity_kind = Some(rec.kind.as_str().to_owned());
    ev.groups.clone_from(&rec.groups);
    ev.idp = idp;
    ev.statement = Some(format!("credential {} revoked {why}", rec.id));
    slot.send(ev);
    // Its open sessions end now (other processes' revocations are found by the sweep).
    live.end_token(&rec.id, "its credential was revoked");
    Ok(revoked)
}

/// Every `recheck_secs` of its provider, each live credential from `gatehouse login` with a
/// refresh token is refreshed at the provider. Refused (the person was disabled, their
/// session ended, the grant was revoked), a renewed identity that does not verify or gives
/// another subject, identity or other groups than the credential carries: the credential is
/// revoked at once (the person logs in again for the groups they have now). A provider that
/// cannot be reached or is busy changes nothing until it answers. Each provider has its own
/// task, and each refresh a time limit, so one slow provider delays no other's revocations.
/// Credentials of a provider no longer configured are revoked at start.
pub fn spawn_recheck(state: &ProxyState) {
    let (tokens, audit, clock) = (
        state.tokens.clone(),
        state.audit.clone(),
        state.clock.clone(),
    );
    match tokens.refreshable_tokens(clock.now_secs()) {
        Ok(live) => {
            for (rec, provider, _) in live {
                if state.providers.by_name(&provider).is_none() {
                    let why = format!("its identity provider {provider:?} is no longer configured");
                    revoke_logged(
                        &state.live,
                        &*tokens,
                        &audit,
                        clock.as_ref(),
                        &rec,
                        None,
                        &why,
                    );
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "re-checking logins: token store"),
    }
    for p in state.providers.iter() {
        if p.spec.client_id.is_none() || p.spec.recheck_secs <= 0 {
            continue;
        }
        let (p, tokens, audit, clock) = (p.clone(), tokens.clone(), audit.clone(), clock.clone());
        let sessions = state.live.clone();
        tokio::spawn(async move {
            let every = p.spec.recheck_secs;
            let period = std::time::Duration::from_secs(u64::try_from(every).unwrap_or(1));
            let mut interval = tokio::time::interval(period);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                interval.tick().await;
                let now = clock.now_secs();
                let live = match tokens.refreshable_tokens(now) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "re-checking logins: token store");
                        continue;
                    }
                };
                for (rec, provider, refresh) in live {
                    // First asked about one period after it was issued.
                    if provider != p.spec.name || now < rec.created_at + every {
                        continue;
                    }
                    let idp = tokens.token_idp(&rec.id).ok().flatten();
                    let asked = recheck(&p, &*tokens, &rec, idp.as_ref(), &refresh, now);
                    let verdict = tokio::time::timeout(RECHECK_TIMEOUT, asked)
                        .await
                        .unwrap_or(Err(None));
                    if let Err(Some(why)) = verdict {
                        revoke_logged(&sessions, &*tokens, &audit, clock.as_ref(), &rec, idp, &why);
                    }
                }
            }
        });
    }
}

/// Longest one re-check of one login may take (the provider's answers included).
const RECHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

fn revoke_logged(
    live: &proxy::live::LiveSessions,
    tokens: &dyn store::TokenStore,
    audit: &audit::AuditHandle,
    clock: &dyn proxy::Clock,
    rec: &model::TokenRecord,
    idp: Option<IdpRef>,
    why: &str,
) {
    match revoke_recorded(
        live,
        tokens,
        audit,
        clock,
        rec,
        idp,
        &format!("because {why}"),
    ) {
        Ok(_) => {
            tracing::info!(identity = %rec.identity, credential = %rec.id, reason = why, "credential revoked")
        }
        // Not revoked now: tried again at the next tick.
        Err(e) => {
            tracing::error!(identity = %rec.identity, credential = %rec.id, error = %e, "a credential to revoke could not be revoked")
        }
    }
}

/// One refresh of `rec`'s login. `Err(Some(why))`: revoke; `Err(None)`: nothing known (the
/// provider could not be asked, or its keys could not be fetched).
async fn recheck(
    p: &identity::oidc::Provider,
    tokens: &dyn store::TokenStore,
    rec: &model::TokenRecord,
    idp: Option<&IdpRef>,
    refresh: &str,
    now: i64,
) -> Result<(), Option<String>> {
    use identity::oidc::{Refreshed, Refusal};
    let v = match p.refresh(refresh).await {
        Refreshed::Tokens(v) => v,
        Refreshed::Refused(e) => {
            return Err(Some(format!(
                "the identity provider refused to renew the login ({e})"
            )))
        }
        Refreshed::Unavailable(e) => {
            tracing::warn!(provider = %p.spec.name, error = %e, "re-checking a login: the identity provider is unavailable");
            return Err(None);
        }
    };
    if let Some(new) = v.get("refresh_token").and_then(serde_json::Value::as_str) {
        if let Err(e) = tokens.set_refresh_token(&rec.id, new) {
            tracing::warn!(credential = %rec.id, error = %e, "keeping the rotated refresh token");
        }
    }
    // The renewed identity: from a new ID token, else from the userinfo endpoint with the
    // new access token (OIDC Core §12.2 lets a refresh answer carry no ID token).
    let renewed = match v.get("id_token").and_then(serde_json::Value::as_str) {
        Some(id_token) => {
            let purpose = identity::oidc::Purpose::Login { nonce: None };
            match identity::oidc::peek(id_token) {
                Ok(peeked) => p.verify(id_token, &peeked, now, purpose).await,
                Err(r) => Err(r),
            }
        }
        None => {
            let access = v.get("access_token").and_then(serde_json::Value::as_str);
            let info = match access {
                Some(a) => p.userinfo(a).await,
                None => Ok(None),
            };
            match info {
                Ok(Some(claims)) => identity::oidc::map_claims(&p.spec, &claims),
                Ok(None) => {
                    return Err(Some(
                        "the identity provider's renewal names no one (no ID token, no userinfo)"
                            .to_owned(),
                    ))
                }
                Err(e) => {
                    tracing::warn!(provider = %p.spec.name, error = %e, "re-checking a login: userinfo");
                    return Err(None);
                }
            }
        }
    };
    let verified = match renewed {
        Ok(v) => v,
        // Keys that cannot be fetched say nothing about the person.
        Err(Refusal::KeysUnavailable(e)) => {
            tracing::warn!(provider = %p.spec.name, error = %e, "re-checking a login: keys");
            return Err(None);
        }
        Err(r) => return Err(Some(format!("the renewed identity was refused ({r})"))),
    };
    if idp.is_some_and(|i| i.subject != verified.subject) {
        return Err(Some(format!(
            "the identity provider now names subject {:?}",
            verified.subject
        )));
    }
    let mut had = rec.groups.clone();
    had.sort();
    had.dedup();
    if verified.identity.name != rec.identity {
        return Err(Some(format!(
            "the identity provider now names {:?}",
            verified.identity.name
        )));
    }
    if verified.identity.groups != had {
        return Err(Some(format!(
            "the identity provider now gives groups {:?}, not {:?}",
            verified.identity.groups, had
        )));
    }
    Ok(())
}

//! Wiring of `gatehouse login` on the admin listener (`console::login_api`): credentials are
//! Gatehouse tokens issued in the token store for the identity the provider vouched for
//! (kind human, the provider's groups), audited as `login` events with the provider, issuer
//! and subject; logout revokes the caller's token.

use console::login_api::LoginApi;
use model::{AuditEvent, AuditKind, IdpRef, Outcome};
use proxy::ProxyState;
use std::sync::Arc;

pub fn login_api(state: &ProxyState, postgres_addr: String) -> LoginApi {
    let (tokens, audit, clock) = (
        state.tokens.clone(),
        state.audit.clone(),
        state.clock.clone(),
    );
    let issue: console::login_api::IssueCredential = Arc::new(move |v, max_ttl| {
        let now = clock.now_secs();
        let req = identity::IssueRequest {
            identity: v.identity.name.clone(),
            kind: v.identity.kind,
            groups: v.identity.groups.clone(),
            ttl_secs: u64::try_from(max_ttl.max(1)).unwrap_or(1),
        };
        let mut ev = event(&clock.rfc3339(), &v.identity.name);
        ev.identity_kind = Some(v.identity.kind.as_str().to_owned());
        ev.groups.clone_from(&v.identity.groups);
        ev.idp = Some(IdpRef {
            provider: v.provider.clone(),
            issuer: v.issuer.clone(),
            subject: v.subject.clone(),
        });
        // The evidence's slot first: no credential exists without its record.
        let slot = audit.reserve().map_err(|e| format!("audit trail: {e}"))?;
        let (token, rec) =
            identity::issue_token(tokens.as_ref(), &req, now, &mut rand::rngs::OsRng)
                .map_err(|e| e.to_string())?;
        if let Some(idp) = &ev.idp {
            tokens
                .set_token_idp(&rec.id, idp)
                .map_err(|e| e.to_string())?;
        }
        ev.statement = Some(format!(
            "credential {} issued, expires at {}",
            rec.id, rec.expires_at
        ));
        slot.send(ev);
        Ok((token, rec.expires_at))
    });
    let (tokens, audit, clock) = (
        state.tokens.clone(),
        state.audit.clone(),
        state.clock.clone(),
    );
    let revoke: console::login_api::Revoke = Arc::new(move |token| {
        let now = clock.now_secs();
        let Some(rec) =
            identity::verify_bearer(tokens.as_ref(), token, now).map_err(|e| e.to_string())?
        else {
            return Ok(false);
        };
        let slot = audit.reserve().map_err(|e| format!("audit trail: {e}"))?;
        let revoked = tokens
            .revoke_token(&rec.id, now)
            .map_err(|e| e.to_string())?;
        let mut ev = event(&clock.rfc3339(), &rec.identity);
        ev.identity_kind = Some(rec.kind.as_str().to_owned());
        ev.statement = Some(format!("credential {} revoked at logout", rec.id));
        slot.send(ev);
        Ok(revoked)
    });
    let (audit, clock) = (state.audit.clone(), state.clock.clone());
    let record_failure: console::login_api::RecordFailure = Arc::new(move |provider, why| {
        let mut ev = event(&clock.rfc3339(), "");
        ev.identity = None;
        ev.target = None;
        ev.statement = Some(format!("login with identity provider {provider:?} refused"));
        ev.outcome = Outcome::Error {
            sqlstate: "28000".into(),
            message: why.to_owned(),
        };
        if audit.submit(ev).is_err() {
            tracing::warn!(provider, "a refused login could not be audited");
        }
        tracing::info!(provider, reason = why, "login refused");
    });
    let clock = state.clock.clone();
    let now: console::login_api::NowSecs = Arc::new(move || clock.now_secs());
    let entropy = state.entropy.clone();
    let random: console::login_api::Random = Arc::new(move |buf| entropy.fill(buf));
    LoginApi::new(
        state.providers.clone(),
        issue,
        revoke,
        record_failure,
        now,
        random,
        postgres_addr,
    )
}

fn event(at: &str, identity: &str) -> AuditEvent {
    let mut ev = AuditEvent::new(AuditKind::Login, "login", at.to_owned());
    ev.identity = Some(identity.to_owned());
    ev
}

//! Client authentication with Gatehouse tokens: SCRAM-SHA-256 by default (so plain `psql`
//! works without TLS and the token never crosses the wire), or a cleartext PasswordMessage
//! when the connection is TLS and the operator asked for it.
//!
//! With `[tls] client_auth = "password"`, the password may also be a JWT from one of the
//! `[[identity_providers]]` (a CI job's or an agent platform's workload token): verified
//! against that provider's keys and rules, its claims give the identity and groups. The
//! startup `user` must be that identity or the provider's name. Never without TLS: a JWT is
//! a bearer credential.
//!
//! Over TLS, SCRAM-SHA-256-PLUS is offered first (as PostgreSQL does), bound to Gatehouse's
//! certificate (`tls-server-end-point`), so `channel_binding=require` clients know no one
//! terminated TLS between them and Gatehouse. Without TLS only SCRAM-SHA-256 is offered.

use crate::error::SessionError;
use crate::live::Credential;
use crate::server::ProxyState;
use crate::stream::MaybeTls;
use base64::Engine;
use bytes::BytesMut;
use model::{Identity, IdpRef, TokenRecord};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wire_pg::frontend::{password, tag};
use wire_pg::{decode_frame, encode, scram, Frame};

/// SASL messages are small, and a password message holds at most a JWT (whose own limit,
/// `identity::oidc::MAX_JWT_BYTES`, is lower, so an oversized JWT is refused with that reason
/// in the audit trail); anything larger during authentication is hostile.
const MAX_AUTH_MESSAGE: usize = 24 * 1024;

/// Proves `user` holds a valid token (or, over TLS, a JWT an identity provider signed); on
/// success the client has been sent everything up to (not including) AuthenticationOk. The
/// identity provider that vouched, when one did.
pub async fn authenticate(
    state: &ProxyState,
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    user: &str,
) -> Result<Authenticated, SessionError> {
    let record = if stream.is_tls() && state.config.cleartext_over_tls {
        match cleartext(state, stream, buf, user).await? {
            Cleartext::Token(record) => record,
            Cleartext::Jwt(identity, idp, expires_at) => {
                return Ok(Authenticated {
                    identity,
                    idp: Some(idp),
                    credential: Credential {
                        token_id: None,
                        expires_at: Some(expires_at),
                    },
                })
            }
        }
    } else {
        scram_exchange(state, stream, buf, user).await?
    };
    let record = record.ok_or(SessionError::AuthFailed)?;
    // A credential from `gatehouse login`: its sessions name the provider that vouched.
    let idp = state
        .tokens
        .token_idp(&record.id)
        .map_err(|e| SessionError::Internal(format!("token store: {e}")))?;
    Ok(Authenticated {
        identity: record.identity(),
        idp,
        credential: Credential {
            token_id: Some(record.id.clone()),
            expires_at: Some(record.expires_at),
        },
    })
}

/// Who logged in, who vouched for them, and with what (which ends their sessions when it
/// stops being valid).
pub struct Authenticated {
    pub identity: Identity,
    pub idp: Option<IdpRef>,
    pub credential: Credential,
}

enum Cleartext {
    Token(Option<TokenRecord>),
    /// The identity, its provider, the JWT's `exp`.
    Jwt(Identity, IdpRef, i64),
}

async fn cleartext(
    state: &ProxyState,
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    user: &str,
) -> Result<Cleartext, SessionError> {
    let mut out = BytesMut::new();
    encode::auth_cleartext(&mut out);
    stream.write_all(&out).await?;
    let frame = read_password_frame(stream, buf).await?;
    let token = password::cleartext(&frame)?;
    let now = state.clock.now_secs();
    if identity::oidc::looks_like_jwt(&token) && !state.providers.is_empty() {
        return jwt(state, user, &token, now).await;
    }
    identity::verify_cleartext(state.tokens.as_ref(), user, &token, now)
        .map(Cleartext::Token)
        .map_err(|e| SessionError::Internal(format!("token store: {e}")))
}

/// A JWT presented as the password: verified, then the startup user checked against it.
async fn jwt(
    state: &ProxyState,
    user: &str,
    token: &str,
    now: i64,
) -> Result<Cleartext, SessionError> {
    let purpose = identity::oidc::Purpose::Password;
    let v = state
        .providers
        .verify(token, now, purpose)
        .await
        .map_err(|r| SessionError::AuthRefused(r.to_string()))?;
    if user != v.identity.name && user != v.provider {
        return Err(SessionError::AuthRefused(format!(
            "the token is for identity {:?} (provider {:?}), not user {user:?}",
            v.identity.name, v.provider
        )));
    }
    if !v.ignored_groups.is_empty() {
        tracing::debug!(identity = %v.identity.name, ignored = ?v.ignored_groups, "groups from the token not mapped");
    }
    let idp = IdpRef {
        provider: v.provider,
        issuer: v.issuer,
        subject: v.subject,
    };
    Ok(Cleartext::Jwt(v.identity, idp, v.expires_at))
}

async fn scram_exchange(
    state: &ProxyState,
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    user: &str,
) -> Result<Option<TokenRecord>, SessionError> {
    let now = state.clock.now_secs();
    let candidates = identity::scram_candidates(state.tokens.as_ref(), user, now)
        .map_err(|e| SessionError::Internal(format!("token store: {e}")))?;
    // Unknown identities get a stable, plausible salt so the exchange looks the same.
    let (salt, iterations, tokens) = match candidates {
        Some(c) => (c.salt, c.iterations, c.tokens),
        None => (
            identity::fake_salt(&state.config.fake_salt_secret, user),
            4096,
            Vec::new(),
        ),
    };

    // The binding data is that of the certificate this connection was shown: the one in the
    // client TLS configuration (see `client_tls`).
    let offer = match state.config.tls_end_point.as_deref() {
        Some(end_point) if matches!(stream, MaybeTls::ServerTls(_)) => {
            scram::Offer::Plus { end_point }
        }
        _ => scram::Offer::Plain,
    };
    let mut out = BytesMut::new();
    encode::auth_sasl(&mut out, offer.mechanisms());
    stream.write_all(&out).await?;

    let frame = read_password_frame(stream, buf).await?;
    let (mechanism, client_first) = password::sasl_initial(&frame)?;
    let mut nonce = [0u8; 18];
    state.entropy.fill(&mut nonce);
    let nonce = base64::engine::general_purpose::STANDARD.encode(nonce);
    let (awaiting, server_first) =
        scram::start(offer, &mechanism, &client_first, &salt, iterations, &nonce)
            .map_err(refusal)?;
    out.clear();
    encode::auth_sasl_continue(&mut out, &server_first);
    stream.write_all(&out).await?;

    let frame = read_password_frame(stream, buf).await?;
    let keys: Vec<_> = tokens
        .iter()
        .map(|t| (t.scram.stored_key, t.scram.server_key))
        .collect();
    match awaiting.finish(&password::sasl_response(&frame), &keys) {
        Ok(v) => {
            out.clear();
            encode::auth_sasl_final(&mut out, &v.server_final);
            stream.write_all(&out).await?;
            Ok(tokens.into_iter().nth(v.candidate))
        }
        Err(scram::ScramError::Proof | scram::ScramError::Nonce) => Ok(None),
        Err(e) => Err(refusal(e)),
    }
}

/// What the client is told when a SCRAM message breaks the rules (PostgreSQL's wording);
/// a wrong proof is `AuthFailed` instead, indistinguishable from an unknown identity.
fn refusal(e: scram::ScramError) -> SessionError {
    SessionError::Protocol(match e {
        scram::ScramError::Mechanism => "client selected an invalid SASL authentication mechanism",
        scram::ScramError::ChannelBinding => "SCRAM channel binding check failed",
        scram::ScramError::Downgrade => {
            "SCRAM channel binding negotiation error: the client supports channel binding \
             but thinks the server does not, though the server offered it"
        }
        scram::ScramError::Malformed | scram::ScramError::Proof | scram::ScramError::Nonce => {
            "malformed SCRAM message"
        }
    })
}

async fn read_password_frame(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
) -> Result<Frame, SessionError> {
    let frame = read_frame(stream, buf, MAX_AUTH_MESSAGE).await?;
    if frame.tag() != tag::PASSWORD {
        return Err(SessionError::Protocol("expected a password message"));
    }
    Ok(frame)
}

/// Reads one whole frame, buffering as needed.
pub async fn read_frame(
    stream: &mut MaybeTls,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Frame, SessionError> {
    loop {
        if let Some(f) = decode_frame(buf, max)? {
            return Ok(f);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(SessionError::Protocol(
                "connection closed during authentication",
            ));
        }
    }
}

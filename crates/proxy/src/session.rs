//! One client connection from accept to close: handshake, authentication, upstream login,
//! then the two relay halves. Every phase's end is audited.

use crate::auth;
use crate::cancel::CancelTarget;
use crate::error::SessionError;
use crate::events::EventCtx;
use crate::handshake::{self, Opening};
use crate::relay_down::Down;
use crate::relay_up::Up;
use crate::server::ProxyState;
use crate::stream::MaybeTls;
use crate::upstream;
use bytes::BytesMut;
use model::{AuditKind, Identity, Outcome};
use std::net::SocketAddr;
use std::sync::atomic::AtomicU8;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Time a client has to finish the handshake and authentication.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn run(state: ProxyState, tcp: TcpStream, addr: SocketAddr) {
    let mut id = [0u8; 12];
    state.entropy.fill(&mut id);
    let mut ctx = EventCtx {
        session: id.iter().map(|b| format!("{b:02x}")).collect(),
        client_addr: Some(addr.to_string()),
        ..EventCtx::default()
    };
    let opening = match tokio::time::timeout(
        LOGIN_TIMEOUT,
        handshake::open(tcp, state.config.tls.clone()),
    )
    .await
    {
        Ok(Ok(o)) => o,
        Ok(Err(e)) => {
            tracing::debug!(%addr, error = %e, "handshake failed");
            return;
        }
        Err(_) => return,
    };
    match opening {
        Opening::Cancel {
            process_id,
            secret_key,
        } => forward_cancel(&state, process_id, secret_key).await,
        Opening::Startup {
            mut stream,
            params,
            leftover,
        } => {
            let user = wire_pg::startup::StartupPacket::param(&params, "user")
                .unwrap_or_default()
                .to_owned();
            ctx.user = Some(user.clone());
            ctx.application_name =
                wire_pg::startup::StartupPacket::param(&params, "application_name")
                    .map(str::to_owned);
            ctx.target =
                wire_pg::startup::StartupPacket::param(&params, "database").map(str::to_owned);
            if let Err(e) = submit(&state, &ctx, AuditKind::Connect, Outcome::Ok) {
                send_fatal(&mut stream, &e, &user).await;
                return;
            }
            let result = session(&state, &mut ctx, stream, &params, leftover).await;
            let outcome = match &result {
                Ok(()) => Outcome::Ok,
                Err(e) => Outcome::Error {
                    sqlstate: e.sqlstate().into(),
                    message: e.to_string(),
                },
            };
            let _ = submit(&state, &ctx, AuditKind::Disconnect, outcome);
        }
    }
}

async fn session(
    state: &ProxyState,
    ctx: &mut EventCtx,
    mut stream: MaybeTls,
    params: &[(String, String)],
    mut buf: BytesMut,
) -> Result<(), SessionError> {
    let mut credential = crate::live::Credential::default();
    let login = tokio::time::timeout(
        LOGIN_TIMEOUT,
        login(state, ctx, &mut stream, params, &mut buf, &mut credential),
    );
    let (identity, target, up) = match login.await {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let user = ctx.user.clone().unwrap_or_default();
            send_fatal(&mut stream, &e, &user).await;
            return Err(e);
        }
        Err(_) => return Err(SessionError::Protocol("login timed out")),
    };
    // Registered before the client hears AuthenticationOk: a credential revoked from now on
    // ends this session.
    let (_live, ended) = state.live.register(credential);
    let cancelled = Arc::new(crate::cancel::HeldCancel::default());
    let (client_key, _cancel) = match register_cancel(state, &target, &up, &cancelled) {
        Some(k) => k,
        None => {
            let e = SessionError::Internal("no unused cancel key".into());
            send_fatal(&mut stream, &e, "").await;
            return Err(e);
        }
    };
    // Settings the login left in force (from the role, the database or the startup packet)
    // must not make the server read statements differently from Gatehouse.
    for (k, v) in &up.params {
        if crate::lexing::watched(k) && crate::lexing::unsafe_setting(&k.to_ascii_lowercase(), v) {
            let e = SessionError::UnsafeSetting(format!("{k} = {v}"));
            send_fatal(&mut stream, &e, "").await;
            return Err(e);
        }
    }
    let view = crate::relay_down::ServerView {
        encoding: crate::lexing::EncodingCell::default(),
        app: crate::startup_params::AppName::new(&identity),
    };
    let mut out = BytesMut::new();
    wire_pg::encode::auth_ok(&mut out);
    for (k, v) in &up.params {
        if k.eq_ignore_ascii_case("client_encoding") && !view.encoding.follow(v) {
            let e = SessionError::UnsafeSetting(format!("{k} = {v}"));
            send_fatal(&mut stream, &e, "").await;
            return Err(e);
        }
        let shown = if k.eq_ignore_ascii_case("application_name") {
            view.app.for_client(v)
        } else {
            v
        };
        wire_pg::encode::parameter_status(&mut out, k, shown);
    }
    wire_pg::encode::backend_key_data(&mut out, client_key.0, client_key.1);
    wire_pg::encode::ready_for_query(&mut out, b'I');
    stream.write_all(&out).await?;
    tracing::info!(session = %ctx.session, identity = %identity.name, target = %target.name, "session started");
    let active = metrics::gauge!("gatehouse_sessions_active");
    active.increment(1.0);
    let base = policy::RequestContext {
        target: target.name.clone(),
        environment: target.environment.clone(),
        application_name: ctx.application_name.clone().unwrap_or_default(),
        source_ip: ctx
            .client_addr
            .as_deref()
            .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
            .map(|a| a.ip()),
        ..Default::default()
    };
    let masking = state
        .catalogs
        .get(&target.name)
        .map(|cell| crate::guard::MaskingCtx {
            sensitive: target.sensitive.clone(),
            catalog: cell.clone(),
            upstream_user: target.user.clone(),
        });
    let guard =
        crate::guard::SessionGuard::new(state.policy.clone(), identity.clone(), base, masking);
    let detectors = state
        .detectors
        .clone()
        .filter(|_| !target.sensitive.is_empty() || state.config.detect_all_text);
    let result = relay(
        state,
        Arc::new(ctx.clone()),
        (stream, buf),
        up,
        guard,
        detectors,
        (view, cancelled, ended),
    )
    .await;
    active.decrement(1.0);
    result
}

/// The key the client is given: the upstream's process ID and a secret of Gatehouse's own.
fn register_cancel(
    state: &ProxyState,
    target: &Arc<crate::config::TargetConfig>,
    up: &upstream::Upstream,
    held: &Arc<crate::cancel::HeldCancel>,
) -> Option<((i32, i32), crate::cancel::CancelGuard)> {
    // A secret is 32 random bits: a few draws find an unused pair unless the entropy is broken.
    for _ in 0..16 {
        let mut secret = [0u8; 4];
        state.entropy.fill(&mut secret);
        let key = (up.process_id, i32::from_be_bytes(secret));
        let t = CancelTarget {
            target: target.clone(),
            process_id: up.process_id,
            secret_key: up.secret_key,
            held: held.clone(),
        };
        if let Some(guard) = state.cancels.register(key, t) {
            return Some((key, guard));
        }
    }
    None
}

/// Authentication, target selection and upstream login.
async fn login(
    state: &ProxyState,
    ctx: &mut EventCtx,
    stream: &mut MaybeTls,
    params: &[(String, String)],
    buf: &mut BytesMut,
    credential: &mut crate::live::Credential,
) -> Result<
    (
        Identity,
        Arc<crate::config::TargetConfig>,
        upstream::Upstream,
    ),
    SessionError,
> {
    let user = ctx.user.clone().unwrap_or_default();
    let startup = match crate::startup_params::upstream_params(params) {
        Ok(s) => s,
        Err(e) => {
            refused(state, ctx, &e);
            return Err(e);
        }
    };
    let identity = match auth::authenticate(state, stream, buf, &user).await {
        Ok(a) => {
            ctx.idp = a.idp;
            *credential = a.credential;
            a.identity
        }
        Err(e) => {
            let outcome = Outcome::Error {
                sqlstate: e.sqlstate().into(),
                message: e.to_string(),
            };
            let _ = submit(state, ctx, AuditKind::AuthFailure, outcome);
            return Err(e);
        }
    };
    ctx.identity = Some(identity.clone());
    let target_name = ctx.target.clone().unwrap_or_default();
    let Some(target) = state.config.targets.get(&target_name).cloned() else {
        let e = SessionError::UnknownTarget(target_name);
        refused(state, ctx, &e);
        return Err(e);
    };
    submit(state, ctx, AuditKind::Authenticated, Outcome::Ok)?;
    let startup = crate::startup_params::with_identity(startup, &identity, ctx, &target);
    match upstream::connect(&target, &startup).await {
        Ok(up) => Ok((identity, target, up)),
        Err(e) => {
            tracing::warn!(session = %ctx.session, target = %target.name, error = %e, "upstream login failed");
            refused(state, ctx, &e);
            Err(e)
        }
    }
}

fn refused(state: &ProxyState, ctx: &EventCtx, e: &SessionError) {
    let outcome = Outcome::Error {
        sqlstate: e.sqlstate().into(),
        message: e.to_string(),
    };
    let _ = submit(state, ctx, AuditKind::Refused, outcome);
}

async fn relay(
    state: &ProxyState,
    ctx: Arc<EventCtx>,
    (stream, buf): (MaybeTls, BytesMut),
    up: upstream::Upstream,
    guard: crate::guard::SessionGuard,
    detectors: Option<Arc<masking::Detectors>>,
    (view, cancelled, ended): (
        crate::relay_down::ServerView,
        Arc<crate::cancel::HeldCancel>,
        tokio::sync::watch::Receiver<Option<String>>,
    ),
) -> Result<(), SessionError> {
    let (client_r, client_w) = crate::stream::split(stream);
    let (up_r, up_w) = crate::stream::split(up.stream);
    let pipeline = Arc::new(crate::pipeline::Pipeline::default());
    let tx_status = Arc::new(AtomicU8::new(b'I'));
    let origins = crate::result::OriginsCell::default();
    let binder = crate::result::Binder {
        masking: guard.masking(),
        safety_net: state.config.detect_all_text && detectors.is_some(),
        origins: origins.clone(),
        catalog: guard.catalog(),
    };
    let up_half = Up {
        state: state.clone(),
        ctx,
        client: client_r,
        upstream: up_w,
        buf,
        pipeline: pipeline.clone(),
        guard,
        origins,
        encoding: view.encoding.clone(),
        tx_status: tx_status.clone(),
        cancelled,
        ended: ended.clone(),
    };
    let down_half = Down {
        upstream: up_r,
        client: client_w,
        buf: up.buf,
        pipeline: pipeline.clone(),
        tx_status,
        mask_key: state.mask_key.clone(),
        detectors,
        binder,
        view,
        ended,
    };
    // Both halves run in this one task: a response and the next request are handled by the
    // thread that was woken for them, with no cross-thread wake-up between the halves.
    let up = up_half.run();
    let down = down_half.run();
    tokio::pin!(up, down);
    let result = tokio::select! {
        // The upstream ended (or the client is gone): stop reading the client (by dropping
        // the client half's future).
        r = &mut down => r,
        r = &mut up => match r {
            // Terminate or EOF from the client: let the last responses drain, briefly.
            Ok(()) => tokio::time::timeout(Duration::from_secs(5), down).await.unwrap_or(Ok(())),
            // The client half failed (often writing to an upstream that just ended the
            // session): what the server said last, its FATAL included, still goes out.
            Err(e) => {
                let _ = tokio::time::timeout(Duration::from_secs(5), &mut down).await;
                Err(e)
            }
        }
    };
    // Whatever ended the session (including the drain above timing out), statements still
    // in flight are audited with an unknown outcome rather than vanishing.
    let reason = match &result {
        Ok(()) => "the session ended before the server answered".to_owned(),
        Err(e) => format!("the session ended before the server answered: {e}"),
    };
    pipeline.close();
    crate::relay_down::abandon(&mut pipeline.lock(), &reason);
    result
}

/// Hands a connection-level event to the audit writer.
fn submit(
    state: &ProxyState,
    ctx: &EventCtx,
    kind: AuditKind,
    outcome: Outcome,
) -> Result<(), SessionError> {
    metrics::counter!("gatehouse_connection_events_total", "kind" => kind.as_str()).increment(1);
    let mut ev = ctx.event(kind, state.clock.rfc3339());
    ev.outcome = outcome;
    match state.audit.submit(ev) {
        Ok(()) => Ok(()),
        Err(e) => match state.config.on_audit_failure {
            crate::config::AuditFailureMode::Block => {
                Err(SessionError::AuditUnavailable(e.to_string()))
            }
            crate::config::AuditFailureMode::Allow => {
                metrics::counter!("gatehouse_audit_events_missed_total").increment(1);
                Ok(())
            }
        },
    }
}

async fn send_fatal(stream: &mut MaybeTls, e: &SessionError, user: &str) {
    let mut out = BytesMut::new();
    wire_pg::encode::error(
        &mut out,
        "FATAL",
        e.sqlstate(),
        &e.client_message(user),
        None,
        None,
    );
    let _ = stream.write_all(&out).await;
    let _ = stream.shutdown().await;
}

async fn forward_cancel(state: &ProxyState, process_id: i32, secret_key: i32) {
    if let Some(t) = state.cancels.lookup((process_id, secret_key)) {
        // A statement held for approval is withdrawn; nothing of the session runs upstream
        // then, so there is nothing to forward the cancel to.
        if t.held.cancel() {
            return;
        }
        if let Err(e) = upstream::cancel(&t.target, t.process_id, t.secret_key).await {
            tracing::warn!(error = %e, "cancel forwarding failed");
        }
    }
}

//! `gatehouse serve`: wires the store, the audit writer, the proxy and the admin endpoint,
//! and shuts them down in order on SIGINT/SIGTERM (the audit queue is drained last).

use crate::config::Config;
use anyhow::Context;
use proxy::{OsEntropy, ProxyState, SystemClock};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub fn run(path: &Path) -> anyhow::Result<ExitCode> {
    let config = Config::load(path)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(config, None))?;
    Ok(ExitCode::SUCCESS)
}

/// Runs until a signal (or `stop` turns true). Prints the bound address on stderr.
pub async fn serve(mut config: Config, stop: Option<watch::Receiver<bool>>) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data_dir {}", config.data_dir.display()))?;
    let tokens = Arc::new(store::SqliteStore::open(&config.data_dir)?);
    let log = store::SqliteStore::open_audit_log(&config.data_dir)?;
    let (audit, writer) = audit::AuditWriter::spawn(
        Box::new(log),
        audit::WriterConfig {
            capacity: config.audit_queue,
            max_batch: config.audit_batch,
        },
    )?;
    config.proxy.fake_salt_secret = server_secret(&config.data_dir)?;
    let policies = config
        .policy
        .load()
        .map_err(|e| anyhow::anyhow!("policies:\n  {}", e.join("\n  ")))?;
    tracing::info!(policies = policies.len(), mode = ?config.policy.mode, "policies loaded");
    let engine = Arc::new(proxy::PolicyEngine::new(policies, config.policy.mode));
    tokio::spawn(crate::reload::watch(config.policy.clone(), engine.clone()));
    let mut state = ProxyState::new(
        Arc::new(config.proxy),
        tokens,
        audit.clone(),
        Arc::new(SystemClock),
        Arc::new(OsEntropy),
        engine,
    );
    state.approvals = crate::serve_approvals::registry(&state, &config.data_dir)?;
    state.providers = identity_providers(&state.config.identity_providers)?;
    crate::serve_login::spawn_recheck(&state);
    proxy::live::spawn_sweeper(
        state.live.clone(),
        state.tokens.clone(),
        state.clock.clone(),
    );
    crate::serve_approvals::spawn_sweeper(&state);
    crate::serve_webhooks::spawn(&state, config.webhooks);
    state
        .load_catalogs(mask_key(&state.config.fake_salt_secret))
        .await
        .map_err(|e| anyhow::anyhow!("sensitive columns:\n  {}", e.join("\n  ")))?;
    let listener = TcpListener::bind(config.listen_postgres)
        .await
        .with_context(|| format!("binding {}", config.listen_postgres))?;
    tracing::info!(addr = %listener.local_addr()?, "gatehouse listening for PostgreSQL clients");
    if let Some(admin) = config.listen_admin {
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .context("installing the metrics recorder")?;
        let l = TcpListener::bind(admin)
            .await
            .with_context(|| format!("binding {admin}"))?;
        tracing::info!(addr = %admin, "admin endpoint (/healthz, /metrics)");
        let a = audit.clone();
        let api = crate::serve_approvals::approvals_api(&state, &config.data_dir)?;
        let login = (!state.providers.is_empty())
            .then(|| crate::serve_login::login_api(&state, config.listen_postgres.to_string()));
        tokio::spawn(console::serve(
            l,
            Arc::new(move || a.is_healthy()),
            metrics,
            Some(api),
            login,
        ));
    }
    let (tx, rx) = watch::channel(false);
    let threads = proxy::SessionThreads::start(config.session_threads)
        .context("starting the session threads")?;
    let stopping = state.clone();
    let server = tokio::spawn(async move {
        proxy::serve(listener, state, &threads, rx).await;
        threads
    });
    wait_for_stop(stop).await;
    tracing::info!("shutting down");
    let _ = tx.send(true);
    // Held statements are withdrawn and recorded while the audit writer still accepts.
    stopping
        .withdraw_holds(std::time::Duration::from_secs(3))
        .await;
    let threads = server.await;
    // Sessions keep running while the writer drains: a statement already forwarded still
    // gets its answer and its event; new statements are refused (no slot is reserved).
    writer.shutdown().await?;
    if let Ok(threads) = threads {
        threads.stop().await;
    }
    Ok(())
}

/// The configured identity providers, their discovery documents and keys fetched in the
/// background: a provider that is down is logged and retried at its first token, and never
/// stops the server (existing credentials keep working).
fn identity_providers(
    specs: &[identity::oidc::ProviderSpec],
) -> anyhow::Result<Arc<identity::oidc::Providers>> {
    if specs.is_empty() {
        return Ok(Arc::default());
    }
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("gatehouse/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client for identity providers")?;
    let providers = Arc::new(identity::oidc::Providers::new(specs.to_vec(), http));
    let warm = providers.clone();
    tokio::spawn(async move {
        for (name, e) in warm.warm().await {
            tracing::warn!(provider = %name, error = %e, "identity provider unavailable; its tokens are refused until it answers");
        }
    });
    Ok(providers)
}

async fn wait_for_stop(stop: Option<watch::Receiver<bool>>) {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    let external = async move {
        match stop {
            Some(mut rx) => {
                while !*rx.borrow() {
                    if rx.changed().await.is_err() {
                        return;
                    }
                }
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
        _ = external => {}
    }
}

/// The key of the `hash` mask strategy, derived from the installation secret so masked
/// values are stable across restarts but not guessable from outside.
fn mask_key(secret: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"gatehouse mask key\0");
    h.update(secret);
    h.finalize().to_vec()
}

/// A per-installation secret (kept in `data_dir/server.secret`, mode 0600) from which the
/// salts shown to unknown identities are derived, stable across restarts.
fn server_secret(dir: &Path) -> anyhow::Result<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("server.secret");
    if let Ok(s) = std::fs::read(&path) {
        if s.len() >= 32 {
            return Ok(s);
        }
    }
    let mut secret = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut f, &secret)?;
    Ok(secret)
}

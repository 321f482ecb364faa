//! Policy reloads: on SIGHUP and when a policy file changes (checked every two seconds). A
//! policy set that fails to load is logged and the previous one stays in force.

use crate::config::PolicyConfig;
use proxy::PolicyEngine;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub async fn watch(config: PolicyConfig, engine: Arc<PolicyEngine>) {
    let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot watch SIGHUP; policy reload on file change only");
            None
        }
    };
    let mut seen = stamps(&config);
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    loop {
        let signalled = async {
            match hup.as_mut() {
                Some(h) => h.recv().await.is_some(),
                None => std::future::pending().await,
            }
        };
        let forced = tokio::select! {
            s = signalled => s,
            _ = tick.tick() => false,
        };
        let now = stamps(&config);
        if forced || now != seen {
            seen = now;
            reload(&config, &engine);
        }
    }
}

fn reload(config: &PolicyConfig, engine: &PolicyEngine) {
    match config.load() {
        Ok(p) => {
            tracing::info!(policies = p.len(), "policies reloaded");
            engine.replace(p);
        }
        Err(errors) => {
            tracing::error!(errors = %errors.join("; "), "policy reload failed; keeping the previous policies");
        }
    }
}

fn stamps(config: &PolicyConfig) -> Vec<Option<SystemTime>> {
    config
        .paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

//! The accept loop and the state every session shares.

use crate::cancel::CancelRegistry;
use crate::clock::{Clock, Entropy};
use crate::config::ProxyConfig;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What sessions share. Cheap to clone.
#[derive(Clone)]
pub struct ProxyState {
    pub config: Arc<ProxyConfig>,
    pub tokens: Arc<dyn store::TokenStore>,
    pub audit: audit::AuditHandle,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub policy: Arc<crate::guard::PolicyEngine>,
    pub(crate) cancels: CancelRegistry,
}

impl ProxyState {
    pub fn new(
        config: Arc<ProxyConfig>,
        tokens: Arc<dyn store::TokenStore>,
        audit: audit::AuditHandle,
        clock: Arc<dyn Clock>,
        entropy: Arc<dyn Entropy>,
        policy: Arc<crate::guard::PolicyEngine>,
    ) -> Self {
        ProxyState {
            config,
            tokens,
            audit,
            clock,
            entropy,
            policy,
            cancels: CancelRegistry::default(),
        }
    }
}

/// Accepts PostgreSQL clients until `shutdown` turns true. Each connection runs in its own
/// task; a failure in one never affects another.
pub async fn serve(listener: TcpListener, state: ProxyState, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    let state = state.clone();
                    tokio::spawn(async move { crate::session::run(state, tcp, addr).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => {
                if *shutdown.borrow() {
                    return;
                }
            }
        }
    }
}

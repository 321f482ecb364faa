//! The accept loop and the state every session shares.

use crate::cancel::CancelRegistry;
use crate::clock::{Clock, Entropy};
use crate::config::ProxyConfig;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod threads;
pub use threads::SessionThreads;

/// What sessions share. Cheap to clone.
#[derive(Clone)]
pub struct ProxyState {
    pub config: Arc<ProxyConfig>,
    pub tokens: Arc<dyn store::TokenStore>,
    pub audit: audit::AuditHandle,
    pub clock: Arc<dyn Clock>,
    pub entropy: Arc<dyn Entropy>,
    pub policy: Arc<crate::guard::PolicyEngine>,
    /// Upstream catalogs of targets with sensitive columns (for lineage).
    pub(crate) catalogs: Arc<std::collections::HashMap<String, Arc<crate::catalog::CatalogCell>>>,
    /// Key of the `hash` mask strategy.
    pub(crate) mask_key: Arc<[u8]>,
    /// Value detectors (built when some target has sensitive columns).
    pub(crate) detectors: Option<Arc<masking::Detectors>>,
    pub(crate) cancels: CancelRegistry,
    /// Statements held for approval, shared with the admin API.
    pub approvals: Arc<approvals::Registry>,
    /// Turns true when the proxy begins to shut down: statements held for approval are
    /// withdrawn (and recorded) before the audit writer drains.
    pub stopping: Arc<watch::Sender<bool>>,
    /// `[[identity_providers]]` at run time (their keys fetched and cached): JWTs presented
    /// as passwords over TLS are verified against them.
    pub providers: Arc<identity::oidc::Providers>,
    /// Sessions by the credential they logged in with (ended when it stops being valid).
    pub live: Arc<crate::live::LiveSessions>,
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
            catalogs: Arc::default(),
            mask_key: Arc::from(Vec::new()),
            detectors: None,
            cancels: CancelRegistry::default(),
            approvals: Arc::new(approvals::Registry::new(None)),
            stopping: Arc::new(watch::Sender::new(false)),
            providers: Arc::default(),
            live: Arc::default(),
        }
    }

    /// Begins an orderly shutdown: every held statement is withdrawn and recorded; waits
    /// (at most `within`) until no session waits on an approval any more.
    pub async fn withdraw_holds(&self, within: std::time::Duration) {
        self.stopping.send_replace(true);
        let until = tokio::time::Instant::now() + within;
        while self.approvals.waiting() > 0 && tokio::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}

impl ProxyState {
    /// Loads the catalog of every target with sensitive columns and checks that each
    /// configured sensitive column exists; every problem is reported. Also starts the
    /// periodic refresh.
    pub async fn load_catalogs(&mut self, mask_key: Vec<u8>) -> Result<(), Vec<String>> {
        let mut cells = std::collections::HashMap::new();
        let mut errors = Vec::new();
        for t in self
            .config
            .targets
            .values()
            .filter(|t| !t.sensitive.is_empty())
        {
            match crate::catalog::load(t).await {
                Ok(snap) => {
                    for c in t.sensitive.columns.keys() {
                        if !snap.has_column(&c.schema, &c.table, &c.column) {
                            errors.push(format!(
                                "sensitive column {c} of target {} does not exist upstream",
                                t.name
                            ));
                        }
                    }
                    let cell = Arc::new(crate::catalog::CatalogCell::new(snap));
                    tokio::spawn(crate::catalog::refresh(t.clone(), cell.clone()));
                    cells.insert(t.name.clone(), cell);
                }
                Err(e) => errors.push(format!("target {}: loading the catalog: {e}", t.name)),
            }
        }
        if !cells.is_empty() || self.config.detect_all_text {
            match masking::Detectors::new() {
                Ok(d) => self.detectors = Some(Arc::new(d)),
                Err(e) => errors.push(format!("value detectors: {e}")),
            }
        }
        self.catalogs = Arc::new(cells);
        self.mask_key = Arc::from(mask_key);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// Accepts PostgreSQL clients until `shutdown` turns true. Each connection runs in its own
/// task; a failure in one never affects another.
pub async fn serve(
    listener: TcpListener,
    state: ProxyState,
    threads: &SessionThreads,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    // Handed to a session thread as a plain socket: it is registered with
                    // that thread's event loop there.
                    let tcp = match tcp.into_std() {
                        Ok(t) => t,
                        Err(e) => {
                            tracing::warn!(error = %e, "accepted socket unusable");
                            continue;
                        }
                    };
                    let state = state.clone();
                    threads.spawn(move || async move {
                        match tokio::net::TcpStream::from_std(tcp) {
                            Ok(tcp) => crate::session::run(state, tcp, addr).await,
                            Err(e) => tracing::warn!(error = %e, "accepted socket unusable"),
                        }
                    });
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

//! The notifications side of `gatehouse serve`: a task of its own follows the approval
//! registry's events and, for each new request, has every webhook of its approver groups told
//! (`webhooks` crate: payload, signature, retries). Each delivery's outcome is an audit step of
//! the request: `notified`, or `notify_failed` once the last attempt failed.
//!
//! Never on the data path: the registry's broadcast does not wait for this task, and a
//! receiver that falls behind (a burst of requests while deliveries are slow) is told it
//! lagged, logs how many events it missed, and goes on. A notification that fails changes
//! nothing about its request, which stays pending for the CLI and the API.

use approvals::{EventKind, Request};
use proxy::ProxyState;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::Semaphore;
use webhooks::{Backoff, Delivery, Webhook};

/// Deliveries in flight at once; more wait for a slot (and the event stream may lag).
const MAX_IN_FLIGHT: usize = 32;

/// Starts the notifier when some webhook is configured.
pub fn spawn(state: &ProxyState, hooks: Vec<Webhook>) {
    if hooks.is_empty() {
        return;
    }
    // reqwest is built without a crypto provider: the process's one is aws-lc.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = match webhooks::deliver::client() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; no notifications");
            return;
        }
    };
    // Subscribed before this returns, so no request opened after it is missed.
    let mut events = state.approvals.subscribe();
    let notifier = Arc::new(Notifier {
        hooks,
        client,
        console_url: state.config.approvals.console_url.clone(),
        clock: state.clock.clone(),
        audit: state.audit.clone(),
        slots: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
    });
    tracing::info!(webhooks = notifier.hooks.len(), "approval notifications on");
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) if ev.kind == EventKind::Opened => {
                    notifier.clone().announce(ev.request).await
                }
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        missed,
                        "approval notifications fell behind; some requests were not announced"
                    );
                }
                Err(RecvError::Closed) => return,
            }
        }
    });
}

struct Notifier {
    hooks: Vec<Webhook>,
    client: reqwest::Client,
    console_url: Option<String>,
    clock: Arc<dyn proxy::Clock>,
    audit: audit::AuditHandle,
    slots: Arc<Semaphore>,
}

impl Notifier {
    /// One delivery task per webhook that wants `request`.
    async fn announce(self: Arc<Self>, request: Request) {
        let request = Arc::new(request);
        for (i, hook) in self.hooks.iter().enumerate() {
            if !hook.wants(&request) {
                continue;
            }
            let Ok(slot) = self.slots.clone().acquire_owned().await else {
                return;
            };
            let this = self.clone();
            let request = request.clone();
            tokio::spawn(async move {
                this.deliver(i, &request).await;
                drop(slot);
            });
        }
    }

    async fn deliver(&self, i: usize, request: &Request) {
        let Some(hook) = self.hooks.get(i) else {
            return;
        };
        let body = webhooks::body(hook.format, request, self.console_url.as_deref());
        let clock = self.clock.clone();
        let now = move || clock.now_secs();
        let outcome = webhooks::deliver(&self.client, hook, &body, Backoff::default(), &now).await;
        let (step, detail) = match &outcome {
            Delivery::Delivered { attempts, status } => {
                ("notified", format!("HTTP {status} on attempt {attempts}"))
            }
            Delivery::Failed { attempts, error } => {
                tracing::warn!(request = %request.id, webhook = %hook.name, attempts, error = %error, "approval notification failed; the request stays pending");
                (
                    "notify_failed",
                    format!("{error} after {attempts} attempt(s)"),
                )
            }
        };
        let by = format!("webhook:{}", hook.name);
        let ev = crate::serve_approvals::step_event(
            request,
            step,
            Some(&by),
            Some(&detail),
            self.clock.rfc3339(),
        );
        if self.audit.submit(ev).is_err() {
            tracing::warn!(request = %request.id, webhook = %hook.name, step, "approval notification could not be audited");
        }
    }
}

//! The admin HTTP endpoint: `/healthz` for load balancers and `/metrics` for Prometheus.
//! It reports on the proxy; it owns no database sockets.
#![forbid(unsafe_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Answers whether the proxy can do its job (for Gatehouse: the audit writer is healthy).
pub type HealthCheck = Arc<dyn Fn() -> bool + Send + Sync>;

#[derive(Clone)]
struct AppState {
    health: HealthCheck,
    metrics: PrometheusHandle,
}

pub fn router(health: HealthCheck, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(AppState { health, metrics })
}

async fn healthz(State(s): State<AppState>) -> (StatusCode, &'static str) {
    if (s.health)() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "audit trail unavailable\n")
    }
}

async fn render_metrics(State(s): State<AppState>) -> String {
    s.metrics.render()
}

/// Serves the admin endpoint until the listener fails.
pub async fn serve(listener: TcpListener, health: HealthCheck, metrics: PrometheusHandle) {
    if let Err(e) = axum::serve(listener, router(health, metrics)).await {
        tracing::error!(error = %e, "admin endpoint stopped");
    }
}

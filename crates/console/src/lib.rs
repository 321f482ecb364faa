//! The admin HTTP endpoint: `/healthz` for load balancers, `/metrics` for Prometheus, and the
//! approvals API (`approvals_api`). It owns no database sockets.
#![forbid(unsafe_code)]

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use std::sync::Arc;
use tokio::net::TcpListener;

pub mod approvals_api;
pub mod login_api;

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

/// Serves the admin endpoint until the listener fails; with the approvals API when given.
pub async fn serve(
    listener: TcpListener,
    health: HealthCheck,
    metrics: PrometheusHandle,
    approvals: Option<approvals_api::ApprovalsApi>,
    login: Option<login_api::LoginApi>,
) {
    let mut app = router(health, metrics);
    if let Some(api) = approvals {
        app = app.merge(approvals_api::routes(api));
    }
    if let Some(api) = login {
        app = app.merge(login_api::routes(api));
    }
    // Handlers may ask for the client's address (the login API bounds logins per address).
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin endpoint stopped");
    }
}

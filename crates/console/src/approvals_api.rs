//! The approvals API on the admin listener (JSON): the pending requests, the finished ones
//! (history), one request, an approver's decision, and a stream of what happens to requests
//! (server-sent events, `events`). Approvers authenticate as themselves with their own
//! Gatehouse token (`Authorization: Bearer …`); only people may use it, and the rules of who
//! may decide or see a request are the `approvals` crate's.

use approvals::{Registry, Request, VoteError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use model::{Identity, IdentityKind};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;

mod events;

pub use events::StreamSlots;

/// Who a bearer token belongs to (`None`: unknown, expired or revoked).
pub type Authenticate = Arc<dyn Fn(&str) -> Option<Identity> + Send + Sync>;
/// Records a vote in the audit trail: the request after it, the approver, approve or deny.
pub type Recorder = Box<dyn FnOnce(&Request, &Identity, bool) + Send>;
/// Takes the audit trail's slot for a vote before it is counted (`Err`: the trail cannot take
/// it, so no vote is counted): a decision never exists without its evidence.
pub type RecordVote = Arc<dyn Fn() -> Result<Recorder, String> + Send + Sync>;
/// Epoch milliseconds.
pub type Now = Arc<dyn Fn() -> i64 + Send + Sync>;
/// Finished requests, most recently decided first: `(offset, limit)` pages through them
/// (a blocking read of the store; called off the async workers).
pub type History = Arc<dyn Fn(usize, usize) -> Result<Vec<Request>, String> + Send + Sync>;

#[derive(Clone)]
pub struct ApprovalsApi {
    pub registry: Arc<Registry>,
    pub authenticate: Authenticate,
    pub record: RecordVote,
    pub now_ms: Now,
    /// Where finished requests are read from (`None`: no store, no history).
    pub history: Option<History>,
    /// How often an idle event stream sends a keep-alive comment.
    pub keep_alive: Duration,
    /// Event streams open at once (each holds a registry subscription).
    pub streams: StreamSlots,
}

impl ApprovalsApi {
    /// Keep-alive interval of the event stream unless told otherwise.
    pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
    /// History entries per call unless `limit` says otherwise, and at most.
    pub const HISTORY_DEFAULT: usize = 50;
    pub const HISTORY_MAX: usize = 500;
    /// Finished requests looked through for one history call (what the caller may not see is
    /// skipped; the registry keeps about this many in memory too).
    pub const HISTORY_SCAN: usize = Registry::MAX_FINISHED;
}

#[derive(Deserialize)]
struct VoteBody {
    #[serde(default)]
    reason: String,
}

type Answer = (StatusCode, Json<serde_json::Value>);

fn error(status: StatusCode, message: impl Into<String>) -> Answer {
    (status, Json(serde_json::json!({ "error": message.into() })))
}

pub fn routes(api: ApprovalsApi) -> Router {
    Router::new()
        .route("/api/approvals", get(list))
        .route("/api/approvals/history", get(history))
        .route("/api/approvals/events", get(events::stream))
        .route("/api/approvals/:id", get(show))
        .route("/api/approvals/:id/approve", post(approve))
        .route("/api/approvals/:id/deny", post(deny))
        .with_state(api)
}

/// The bearer token of a request.
pub(crate) fn bearer(headers: &HeaderMap) -> Result<&str, Answer> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "a bearer token is required"))
}

/// The caller, who must be a person with a valid token.
fn caller(api: &ApprovalsApi, headers: &HeaderMap) -> Result<Identity, Answer> {
    caller_by_token(api, bearer(headers)?)
}

fn caller_by_token(api: &ApprovalsApi, token: &str) -> Result<Identity, Answer> {
    let who = (api.authenticate)(token).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "invalid, expired or revoked token",
        )
    })?;
    if who.kind != IdentityKind::Human {
        return Err(error(
            StatusCode::FORBIDDEN,
            "agents cannot use the approvals API",
        ));
    }
    Ok(who)
}

fn as_json(r: &Request) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(o) = v.as_object_mut() {
        o.insert("identity".into(), r.spec.requester.clone().into());
        o.insert("expires_at".into(), rfc3339_ms(r.expires_at_ms).into());
        o.insert("created_at".into(), rfc3339_ms(r.created_at_ms).into());
    }
    v
}

async fn list(State(api): State<ApprovalsApi>, headers: HeaderMap) -> Answer {
    let who = match caller(&api, &headers) {
        Ok(w) => w,
        Err(e) => return e,
    };
    // Only what the caller may decide (or asked for): statements carry data.
    let pending: Vec<_> = api
        .registry
        .pending()
        .iter()
        .filter(|r| api.registry.may_see(r, &who))
        .map(as_json)
        .collect();
    (StatusCode::OK, Json(pending.into()))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

/// Finished requests the caller may see, most recently decided first, at most `limit`.
async fn history(
    State(api): State<ApprovalsApi>,
    headers: HeaderMap,
    Query(q): Query<HistoryQuery>,
) -> Answer {
    let who = match caller(&api, &headers) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let Some(read) = api.history.clone() else {
        return error(
            StatusCode::NOT_FOUND,
            "no approval store: finished requests are not kept",
        );
    };
    let limit = q
        .limit
        .unwrap_or(ApprovalsApi::HISTORY_DEFAULT)
        .clamp(1, ApprovalsApi::HISTORY_MAX);
    let registry = api.registry.clone();
    let found = tokio::task::spawn_blocking(move || {
        const PAGE: usize = 200;
        let mut out = Vec::new();
        let mut offset = 0;
        while out.len() < limit && offset < ApprovalsApi::HISTORY_SCAN {
            let page = read(offset, PAGE)?;
            let n = page.len();
            out.extend(page.into_iter().filter(|r| registry.may_see(r, &who)));
            if n < PAGE {
                break;
            }
            offset += n;
        }
        out.truncate(limit);
        Ok::<_, String>(out)
    })
    .await;
    match found {
        Ok(Ok(v)) => (
            StatusCode::OK,
            Json(v.iter().map(as_json).collect::<Vec<_>>().into()),
        ),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "approval history could not be read");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the approval store cannot be read now",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "approval history task failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

async fn show(
    State(api): State<ApprovalsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Answer {
    let who = match caller(&api, &headers) {
        Ok(w) => w,
        Err(e) => return e,
    };
    match api.registry.get(&id) {
        Some(r) if api.registry.may_see(&r, &who) => (StatusCode::OK, Json(as_json(&r))),
        // Not told apart from an unknown id.
        _ => error(StatusCode::NOT_FOUND, format!("no approval request {id}")),
    }
}

async fn approve(
    State(api): State<ApprovalsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<VoteBody>>,
) -> Answer {
    vote(api, headers, id, body, true)
}

async fn deny(
    State(api): State<ApprovalsApi>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Option<Json<VoteBody>>,
) -> Answer {
    vote(api, headers, id, body, false)
}

fn vote(
    api: ApprovalsApi,
    headers: HeaderMap,
    id: String,
    body: Option<Json<VoteBody>>,
    approve: bool,
) -> Answer {
    let who = match caller(&api, &headers) {
        Ok(w) => w,
        Err(e) => return e,
    };
    let reason = body.map(|b| b.0.reason).unwrap_or_default();
    let record = match (api.record)() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(request = %id, error = %e, "approval vote refused: the audit trail cannot record it");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the audit trail cannot record a vote now; try again",
            );
        }
    };
    // Recorded before the waiting session is told, so the vote precedes its release.
    let recorded = |r: &approvals::Request| record(r, &who, approve);
    match api
        .registry
        .vote_recorded(&id, &who, approve, &reason, (api.now_ms)(), recorded)
    {
        Ok((request, _)) => (StatusCode::OK, Json(as_json(&request))),
        Err(e) => {
            let status = match &e {
                VoteError::NotFound(_) => StatusCode::NOT_FOUND,
                VoteError::NotPending { .. } | VoteError::AlreadyVoted => StatusCode::CONFLICT,
                VoteError::NoReason => StatusCode::BAD_REQUEST,
                VoteError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                VoteError::OwnRequest | VoteError::Agent | VoteError::NotAnApprover(_) => {
                    StatusCode::FORBIDDEN
                }
            };
            error(status, e.to_string())
        }
    }
}

/// Epoch milliseconds as RFC 3339 UTC (civil-from-days, no clock read).
fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps() {
        assert_eq!(super::rfc3339_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339_ms(1_795_000_000_000), "2026-11-18T11:06:40Z");
    }
}

//! `GET /api/approvals/events`: what happens to approval requests, as server-sent events
//! (`text/event-stream`), for consoles and `gatehouse approvals watch`.
//!
//! Each registry event the caller may see (the same rule as the list: requester, approver
//! groups, break-glass group) is one SSE event: `event: <opened|voted|finished|used>` and
//! `data: <the request as the list shows it>`. A receiver that fell behind the registry's
//! buffer gets `event: lagged` with `data: {"missed": N}` and goes on with what is still
//! there (the client re-reads the list to catch up). An idle stream sends keep-alive comments.
//!
//! The token is checked again before each event is sent: a stream opened with a token that
//! was revoked or expired since ends instead of showing more statements. Streams open at once
//! are bounded ([`StreamSlots`]), since each one holds a subscription to the registry.

use super::{as_json, bearer, caller_by_token, error, ApprovalsApi};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// How many event streams may be open at once (shared by clones).
#[derive(Clone, Debug)]
pub struct StreamSlots {
    open: Arc<AtomicUsize>,
    max: usize,
}

impl StreamSlots {
    pub const DEFAULT_MAX: usize = 64;

    pub fn new(max: usize) -> Self {
        StreamSlots {
            open: Arc::new(AtomicUsize::new(0)),
            max,
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    fn take(&self) -> Option<Slot> {
        self.open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(self.open.clone()))
    }
}

impl Default for StreamSlots {
    fn default() -> Self {
        StreamSlots::new(Self::DEFAULT_MAX)
    }
}

/// One open stream; given back when the stream is dropped (the client went away).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one stream carries between events.
struct Watch {
    api: ApprovalsApi,
    token: String,
    rx: tokio::sync::broadcast::Receiver<approvals::Event>,
    _slot: Slot,
}

pub(super) async fn stream(State(api): State<ApprovalsApi>, headers: HeaderMap) -> Response {
    let token = match bearer(&headers) {
        Ok(t) => t.to_owned(),
        Err(e) => return e.into_response(),
    };
    if let Err(e) = caller_by_token(&api, &token) {
        return e.into_response();
    }
    let Some(slot) = api.streams.take() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many event streams are open; try again later",
        )
        .into_response();
    };
    // Subscribed before the response goes out: nothing after it is missed.
    let watch = Watch {
        rx: api.registry.subscribe(),
        api,
        token,
        _slot: slot,
    };
    let keep_alive = KeepAlive::new().interval(watch.api.keep_alive);
    let first = Event::default().comment("gatehouse approval events");
    let events = futures_util::stream::unfold(watch, next);
    let all = futures_util::StreamExt::chain(
        futures_util::stream::once(async move { Ok::<_, Infallible>(first) }),
        events,
    );
    Sse::new(all).keep_alive(keep_alive).into_response()
}

/// The next event the caller may see; `None` ends the stream.
async fn next(mut w: Watch) -> Option<(Result<Event, Infallible>, Watch)> {
    loop {
        let event = match w.rx.recv().await {
            Ok(e) => e,
            Err(RecvError::Lagged(missed)) => {
                let e = Event::default()
                    .event("lagged")
                    .data(serde_json::json!({ "missed": missed }).to_string());
                return Some((Ok(e), w));
            }
            Err(RecvError::Closed) => return None,
        };
        // Checked again for every event: a revoked token sees nothing more.
        let Ok(who) = caller_by_token(&w.api, &w.token) else {
            tracing::info!("approval event stream ended: its token is no longer valid");
            return None;
        };
        if !w.api.registry.may_see(&event.request, &who) {
            continue;
        }
        let data = as_json(&event.request);
        let e = match Event::default().event(event.kind.as_str()).json_data(&data) {
            Ok(e) => e,
            Err(err) => {
                tracing::warn!(request = %event.request.id, error = %err, "approval event not encodable");
                continue;
            }
        };
        return Some((Ok(e), w));
    }
}

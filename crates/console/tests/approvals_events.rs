//! The approvals API's event stream and history through a real HTTP client (reqwest) against
//! the router on a local listener: who may open a stream, what it carries (only what the
//! caller may see), keep-alives, a lagging reader, a token revoked mid-stream, the bound on
//! open streams.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use approvals::{Registry, Request, RequestSpec, State};
use console::approvals_api::{ApprovalsApi, History, StreamSlots};
use model::{Identity, IdentityKind};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

struct Server {
    base: String,
    registry: Arc<Registry>,
    /// Valid tokens and whose they are (remove one to revoke it).
    tokens: Arc<Mutex<HashMap<String, Identity>>>,
    http: reqwest::Client,
}

fn person(name: &str, kind: IdentityKind, groups: &[&str]) -> Identity {
    Identity {
        name: name.into(),
        kind,
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
    }
}

fn spec(requester: &str, groups: &[&str], statement: &str) -> RequestSpec {
    RequestSpec {
        requester: requester.into(),
        requester_kind: "human".into(),
        requester_groups: vec![],
        session: "s1".into(),
        client_addr: None,
        application_name: None,
        target: "app".into(),
        environment: None,
        statement: statement.into(),
        params: vec![],
        command: "delete".into(),
        tables: vec!["public.orders".into()],
        columns: vec![],
        policy_id: "p".into(),
        reason: "writes need a DBA".into(),
        approver_groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        quorum: 1,
        in_transaction: false,
        estimated_rows: None,
        transaction: Vec::new(),
        changed_rows: Vec::new(),
    }
}

async fn start(history: Option<History>, max_streams: usize) -> Server {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let registry = Arc::new(Registry::new(Some("breakglass".into())));
    let tokens: Arc<Mutex<HashMap<String, Identity>>> = Arc::new(Mutex::new(HashMap::from([
        (
            "t-bob".to_owned(),
            person("bob", IdentityKind::Human, &["dba"]),
        ),
        (
            "t-carol".to_owned(),
            person("carol", IdentityKind::Human, &["dev"]),
        ),
        (
            "t-bot".to_owned(),
            person("bot", IdentityKind::Agent, &["dba"]),
        ),
    ])));
    let t = tokens.clone();
    let api = ApprovalsApi {
        registry: registry.clone(),
        authenticate: Arc::new(move |token: &str| t.lock().unwrap().get(token).cloned()),
        record: Arc::new(|| {
            let r: console::approvals_api::Recorder = Box::new(|_, _, _| {});
            Ok(r)
        }),
        now_ms: Arc::new(|| 1_000),
        history,
        keep_alive: Duration::from_millis(200),
        streams: StreamSlots::new(max_streams),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, console::approvals_api::routes(api))
            .await
            .unwrap();
    });
    Server {
        base,
        registry,
        tokens,
        http: reqwest::Client::new(),
    }
}

impl Server {
    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut r = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        tokio::time::timeout(WAIT, r.send()).await.unwrap().unwrap()
    }

    fn open(&self, id: &str, requester: &str, groups: &[&str]) -> Request {
        self.registry
            .open(
                id.into(),
                spec(requester, groups, "DELETE FROM orders WHERE id = 1"),
                format!("key-{id}"),
                1_000,
                60_000,
            )
            .unwrap()
            .0
    }
}

/// Reads a stream into SSE frames (blocks separated by a blank line).
struct Frames {
    resp: reqwest::Response,
    buf: String,
}

impl Frames {
    /// The next frame, `None` when the server ended the stream.
    async fn next(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame = self.buf[..end].to_owned();
                self.buf.drain(..end + 2);
                return Some(frame);
            }
            let chunk = tokio::time::timeout(WAIT, self.resp.chunk())
                .await
                .expect("no event in time")
                .unwrap()?;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next frame that is an event (not a comment): its kind and data as JSON.
    async fn event(&mut self) -> (String, serde_json::Value) {
        loop {
            let frame = self.next().await.expect("the stream ended");
            let mut kind = None;
            let mut data = None;
            for line in frame.lines() {
                if let Some(k) = line.strip_prefix("event: ") {
                    kind = Some(k.to_owned());
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = Some(serde_json::from_str(d).unwrap());
                }
            }
            if let (Some(k), Some(d)) = (kind, data) {
                return (k, d);
            }
            assert!(
                frame.lines().all(|l| l.starts_with(':')),
                "a frame that is neither an event nor a comment: {frame:?}"
            );
        }
    }
}

async fn stream(s: &Server, token: &str) -> Frames {
    let resp = s.get("/api/approvals/events", Some(token)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    Frames {
        resp,
        buf: String::new(),
    }
}

#[tokio::test]
async fn only_people_with_a_valid_token_open_a_stream() {
    let s = start(None, 4).await;
    assert_eq!(s.get("/api/approvals/events", None).await.status(), 401);
    assert_eq!(
        s.get("/api/approvals/events", Some("t-nobody"))
            .await
            .status(),
        401
    );
    assert_eq!(
        s.get("/api/approvals/events", Some("t-bot")).await.status(),
        403
    );
    assert_eq!(s.get("/api/approvals/history", None).await.status(), 401);
}

#[tokio::test]
async fn opened_then_voted_and_only_what_the_caller_may_see() {
    let s = start(None, 4).await;
    let mut bob = stream(&s, "t-bob").await;
    let mut carol = stream(&s, "t-carol").await;
    // Not bob's to see (another group), then his.
    s.open("ap_hidden", "alice", &["finance"]);
    s.open("ap_1", "alice", &["dba"]);
    let (kind, data) = bob.event().await;
    assert_eq!(kind, "opened");
    assert_eq!(data["id"], "ap_1", "{data}");
    assert_eq!(data["identity"], "alice");
    assert_eq!(data["state"], "pending");
    assert_eq!(data["statement"], "DELETE FROM orders WHERE id = 1");

    let resp = s
        .http
        .post(format!("{}/api/approvals/ap_1/approve", s.base))
        .bearer_auth("t-bob")
        .json(&serde_json::json!({ "reason": "ticket 42" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let (kind, data) = bob.event().await;
    assert_eq!(kind, "voted");
    assert_eq!(data["id"], "ap_1");
    assert_eq!(data["state"], "approved");
    assert_eq!(data["votes"][0]["approver"], "bob");

    let used = s.registry.consume("ap_1", "s2", 2_000).unwrap();
    assert_eq!(used.state, State::Approved);
    let (kind, data) = bob.event().await;
    assert_eq!(kind, "used");
    assert_eq!(data["used_by_session"], "s2");

    // Carol (neither requester nor approver) saw none of it: her first event is her own.
    s.open("ap_carol", "carol", &["dba"]);
    let (kind, data) = carol.event().await;
    assert_eq!((kind.as_str(), &data["id"]), ("opened", &"ap_carol".into()));
}

#[tokio::test]
async fn an_idle_stream_sends_keep_alive_comments() {
    let s = start(None, 4).await;
    let mut bob = stream(&s, "t-bob").await;
    // The opening comment, then keep-alives (every 200 ms here).
    let mut comments = 0;
    while comments < 3 {
        let frame = bob.next().await.expect("stream ended");
        assert!(frame.starts_with(':'), "{frame:?}");
        comments += 1;
    }
}

#[tokio::test]
async fn a_revoked_token_ends_the_stream_before_the_next_event() {
    let s = start(None, 4).await;
    let mut bob = stream(&s, "t-bob").await;
    s.tokens.lock().unwrap().remove("t-bob");
    s.open("ap_1", "alice", &["dba"]);
    while let Some(frame) = bob.next().await {
        assert!(!frame.contains("ap_1"), "shown to a revoked token: {frame}");
    }
}

#[tokio::test]
async fn a_reader_that_falls_behind_is_told_and_goes_on() {
    let s = start(None, 4).await;
    let mut bob = stream(&s, "t-bob").await;
    // Far more than the registry's buffer (1,024) and the socket buffers hold, while the
    // client reads nothing: the server's receiver lags.
    let big = "x".repeat(16 * 1024);
    for i in 0..4_000 {
        s.registry
            .open(
                "ap_same".into(),
                spec("alice", &["dba"], &format!("{i} {big}")),
                String::new(),
                1_000,
                60_000,
            )
            .unwrap();
    }
    s.open("ap_last", "alice", &["dba"]);
    let mut lagged = 0;
    loop {
        let (kind, data) = bob.event().await;
        if kind == "lagged" {
            assert!(data["missed"].as_u64().unwrap_or(0) > 0, "{data}");
            lagged += 1;
        } else if data["id"] == "ap_last" {
            break;
        }
    }
    assert!(lagged >= 1, "the reader was never told it lagged");
}

#[tokio::test]
async fn open_streams_are_bounded() {
    let s = start(None, 1).await;
    let first = stream(&s, "t-bob").await;
    assert_eq!(
        s.get("/api/approvals/events", Some("t-bob")).await.status(),
        503
    );
    drop(first);
    // The slot comes back once the server notices the client went away.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let resp = s.get("/api/approvals/events", Some("t-bob")).await;
        if resp.status() == 200 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn finished(id: &str, requester: &str, groups: &[&str], state: State) -> Request {
    Request {
        id: id.into(),
        spec: spec(requester, groups, "DELETE FROM orders"),
        created_at_ms: 1_000,
        expires_at_ms: 60_000,
        state,
        votes: vec![],
        withdrawn_because: None,
        grant_key: String::new(),
        decided_at_ms: Some(2_000),
        used_at_ms: None,
        used_by_session: None,
    }
}

#[tokio::test]
async fn history_lists_finished_requests_the_caller_may_see() {
    // 450 finished requests, newest first; every third one is another group's.
    let all: Vec<Request> = (0..450)
        .map(|i| {
            let groups: &[&str] = if i % 3 == 2 { &["finance"] } else { &["dba"] };
            finished(&format!("ap_{i:03}"), "alice", groups, State::Denied)
        })
        .collect();
    let history: History =
        Arc::new(move |offset, limit| Ok(all.iter().skip(offset).take(limit).cloned().collect()));
    let s = start(Some(history), 4).await;
    let resp = s.get("/api/approvals/history?limit=5", Some("t-bob")).await;
    assert_eq!(resp.status(), 200);
    let v: Vec<serde_json::Value> = resp.json().await.unwrap();
    let ids: Vec<&str> = v.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["ap_000", "ap_001", "ap_003", "ap_004", "ap_006"]);
    assert_eq!(v[0]["state"], "denied");
    // Past one page of the store, and the default limit.
    let v: Vec<serde_json::Value> = s
        .get("/api/approvals/history?limit=500", Some("t-bob"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.len(), 300);
    let v: Vec<serde_json::Value> = s
        .get("/api/approvals/history", Some("t-bob"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v.len(), ApprovalsApi::HISTORY_DEFAULT);
    // Carol sees none of them.
    let v: Vec<serde_json::Value> = s
        .get("/api/approvals/history", Some("t-carol"))
        .await
        .json()
        .await
        .unwrap();
    assert!(v.is_empty());
}

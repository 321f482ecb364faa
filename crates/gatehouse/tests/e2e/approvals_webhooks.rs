//! Webhook notifications of new approval requests, received by a local HTTP server started
//! here: each delivery's signature checks out (computed independently, HMAC-SHA256 over
//! `timestamp.body`), a receiver that fails the first attempt gets a second, the payloads
//! carry the request, a webhook for other groups hears nothing, a webhook nobody answers ends
//! in `notify_failed`, and none of it keeps the held statement from being approved.

use crate::harness::{Gatehouse, Options, WAIT, WEBHOOK_SECRET, WEBHOOK_SECRET_ENV};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use hmac::Mac;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SETUP: &str = "CREATE TABLE orders (id int PRIMARY KEY, amount int);
INSERT INTO orders VALUES (1, 10), (2, 20), (3, 30);";

const POLICIES: &str = r#"
@id("orders-writes-need-a-dba")
@reason("writes to orders need a DBA")
@approval("dba, oncall")
forbid(principal, action, resource)
when { context.tables_written.contains("public.orders") };
"#;

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Hit {
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    answered: u16,
}

type Hits = Arc<Mutex<Vec<Hit>>>;

/// `/json` fails its first request with 500 and takes the rest; every other path takes all.
async fn receive(
    State(hits): State<Hits>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let mut hits = hits.lock().unwrap();
    let path = uri.path().to_owned();
    let first = !hits.iter().any(|h| h.path == path);
    let status = if path == "/json" && first {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    hits.push(Hit {
        path,
        headers,
        body: body.to_vec(),
        answered: status.as_u16(),
    });
    status
}

async fn receiver() -> (u16, Hits) {
    let hits: Hits = Arc::default();
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (port, hits)
}

fn header<'a>(hit: &'a Hit, name: &str) -> &'a str {
    hit.headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

/// What a receiver does (docs/approvals.md, Notifications): recompute the MAC over
/// `timestamp.body` and refuse timestamps more than five minutes away.
fn check_signature(hit: &Hit) {
    let ts = header(hit, "x-gatehouse-timestamp");
    let sig = header(hit, "x-gatehouse-signature");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).unwrap();
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(&hit.body);
    let expected = format!("v1={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(sig, expected, "signature of {hit:?}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let ts: i64 = ts.parse().unwrap();
    assert!((now - ts).abs() < 300, "timestamp {ts} far from {now}");
    assert_eq!(header(hit, "content-type"), "application/json");
}

fn hits_on(hits: &Hits, path: &str) -> Vec<Hit> {
    hits.lock()
        .unwrap()
        .iter()
        .filter(|h| h.path == path)
        .cloned()
        .collect()
}

fn step_by<'a>(events: &'a [Value], id: &str, step: &str, by: &str) -> Option<&'a Value> {
    events.iter().find(|e| {
        e["approval"]["request"] == id && e["approval"]["step"] == step && e["approval"]["by"] == by
    })
}

#[tokio::test]
async fn webhooks_are_signed_retried_and_audited_and_the_request_stays_approvable() {
    let (port, hits) = receiver().await;
    // A port nobody listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let hook = |name: &str, url: String, extra: &str| {
        format!(
            "[[approvals.webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\n\
             secret_env = \"{WEBHOOK_SECRET_ENV}\"\n{extra}\n"
        )
    };
    let base = format!("http://127.0.0.1:{port}");
    let extra_toml = [
        "[approvals]\ntimeout_secs = 60\n".to_owned(),
        hook("dba-json", format!("{base}/json"), "groups = [\"dba\"]"),
        hook(
            "oncall-slack",
            format!("{base}/slack"),
            "groups = [\"oncall\"]\nformat = \"slack\"",
        ),
        hook(
            "security",
            format!("{base}/security"),
            "groups = [\"security\"]",
        ),
        hook(
            "dead",
            format!("http://127.0.0.1:{dead}/hook"),
            "max_attempts = 2",
        ),
    ]
    .concat();
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: POLICIES.into(),
        extra_toml,
    })
    .await;
    let alice = gh.issue("alice", "human", &["dev"]).await;
    let bob = gh.issue("bob", "human", &["dba"]).await;

    let c = gh.connect("alice", &alice).await;
    let held = tokio::spawn(async move { c.simple_query("DELETE FROM orders WHERE id = 1").await });

    // The JSON webhook: refused once, delivered on the second attempt.
    let deadline = tokio::time::Instant::now() + WAIT;
    while hits_on(&hits, "/json").len() < 2 || hits_on(&hits, "/slack").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "deliveries: {:?}",
            hits.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let json = hits_on(&hits, "/json");
    assert_eq!(json.len(), 2, "one retry, then delivered: {json:?}");
    assert_eq!((json[0].answered, json[1].answered), (500, 200));
    assert_eq!(header(&json[0], "x-gatehouse-attempt"), "1");
    assert_eq!(header(&json[1], "x-gatehouse-attempt"), "2");
    for h in &json {
        check_signature(h);
    }
    assert_eq!(json[0].body, json[1].body, "the same document each attempt");
    let doc: Value = serde_json::from_slice(&json[1].body).unwrap();
    assert_eq!(doc["event"], "approval.requested");
    let r = &doc["request"];
    let id = r["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("ap_"), "{doc}");
    assert_eq!(r["statement"], "DELETE FROM orders WHERE id = 1");
    assert_eq!(r["requester"], "alice");
    assert_eq!(r["requester_kind"], "human");
    assert_eq!(r["target"], "app");
    assert_eq!(r["tables"], serde_json::json!(["public.orders"]));
    assert_eq!(r["approver_groups"], serde_json::json!(["dba", "oncall"]));
    let admin = gh.admin_port.unwrap();
    assert_eq!(
        doc["links"]["approve"],
        format!("http://127.0.0.1:{admin}/api/approvals/{id}/approve")
    );
    assert_eq!(
        doc["cli"]["approve"],
        format!("gatehouse approvals approve {id} --reason TEXT")
    );

    // The Slack webhook (for oncall, one of the request's groups): text and blocks.
    let slack = hits_on(&hits, "/slack");
    assert_eq!(slack.len(), 1, "{slack:?}");
    check_signature(&slack[0]);
    let msg: Value = serde_json::from_slice(&slack[0].body).unwrap();
    let text = msg["text"].as_str().unwrap_or_default();
    assert!(text.contains(&id) && text.contains("alice"), "{msg}");
    let blocks = msg["blocks"].to_string();
    assert!(
        blocks.contains("DELETE FROM orders WHERE id = 1"),
        "{blocks}"
    );
    assert!(
        blocks.contains(&format!("/api/approvals/{id}/deny")),
        "{blocks}"
    );

    // The audit trail: delivered after two attempts, and the dead receiver given up on.
    let events = gh
        .wait_events("notified and notify_failed", |ev| {
            step_by(ev, &id, "notified", "webhook:dba-json").is_some()
                && step_by(ev, &id, "notified", "webhook:oncall-slack").is_some()
                && step_by(ev, &id, "notify_failed", "webhook:dead").is_some()
        })
        .await;
    let notified = step_by(&events, &id, "notified", "webhook:dba-json").unwrap();
    assert_eq!(notified["kind"], "approval");
    assert_eq!(notified["approval"]["reason"], "HTTP 200 on attempt 2");
    assert_eq!(notified["identity"], "alice");
    let failed = step_by(&events, &id, "notify_failed", "webhook:dead").unwrap();
    assert_eq!(
        failed["approval"]["reason"],
        "could not connect after 2 attempt(s)"
    );
    assert!(
        hits_on(&hits, "/security").is_empty(),
        "a webhook for another group hears nothing"
    );

    // Still pending, and still approvable.
    let out = gh
        .cli(&[
            "approvals",
            "approve",
            &id,
            "--reason",
            "ticket 7",
            "--token",
            &bob,
        ])
        .await;
    assert_eq!(out.code, 0, "{out:?}");
    let rows = tokio::time::timeout(WAIT, held)
        .await
        .expect("the held statement ran after approval")
        .unwrap()
        .unwrap();
    assert!(
        rows.iter()
            .any(|m| matches!(m, tokio_postgres::SimpleQueryMessage::CommandComplete(1))),
        "{rows:?}"
    );
    let c = crate::harness::upstream().connect(&gh.db.name).await;
    let left: i64 = c
        .query_one("SELECT count(*) FROM orders", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 2);
    // Only the new request was announced: approving it sends nothing more.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hits_on(&hits, "/json").len(), 2);
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

use super::*;
use approvals::Request;
use serde_json::Value;
use std::time::Duration;

/// Built from JSON (as the store keeps it), so fields the approvals crate adds with a
/// default do not break these tests.
fn request() -> Request {
    serde_json::from_value(serde_json::json!({
        "id": "ap_0123456789abcdef",
        "requester": "alice",
        "requester_kind": "human",
        "requester_groups": ["dev"],
        "session": "s1",
        "client_addr": "10.0.0.7:51234",
        "application_name": "psql",
        "target": "app",
        "environment": "production",
        "statement": "DELETE FROM orders WHERE note = '<!channel> & ```x```'",
        "params": ["4111-****", null],
        "command": "DELETE",
        "tables": ["public.orders"],
        "columns": [],
        "policy_id": "orders-writes-need-a-dba",
        "reason": "writes to orders need a DBA",
        "approver_groups": ["dba", "oncall"],
        "quorum": 1,
        "in_transaction": false,
        "estimated_rows": 12,
        "created_at_ms": 1_764_460_800_000i64,
        "expires_at_ms": 1_764_461_100_000i64,
        "state": "pending",
        "votes": [],
        "withdrawn_because": null,
    }))
    .unwrap()
}

fn hook(groups: &[&str]) -> Webhook {
    Webhook {
        name: "dba".into(),
        url: "https://user:pw@hooks.example.com/services/T000/B000/XXXX".into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        format: Format::Json,
        secret: Secret::new("s3cret"),
        max_attempts: 3,
    }
}

#[test]
fn hmac_is_rfc_4231() {
    // The primitive is HMAC-SHA256 as RFC 4231 defines it (test case 2, key "Jefe").
    use hmac::Mac;
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
    m.update(b"what do ya want for nothing?");
    assert_eq!(
        hex::encode(m.finalize().into_bytes()),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    // Ours is the same construction over "ts.body".
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"Jefe").unwrap();
    m.update(b"1764460800.{\"a\":1}");
    let expected = format!("v1={}", hex::encode(m.finalize().into_bytes()));
    assert_eq!(signature(b"Jefe", 1_764_460_800, b"{\"a\":1}"), expected);
}

#[test]
fn verify_accepts_ours_and_rejects_the_rest() {
    let body = br#"{"event":"approval.requested"}"#;
    let ts = 1_764_460_800;
    let sig = signature(b"k", ts, body);
    assert_eq!(verify(b"k", "1764460800", &sig, body, ts + 10, 300), Ok(()));
    // Several values (a key rotation): any one may match.
    let two = format!("v1=00ff, {sig}");
    assert_eq!(verify(b"k", "1764460800", &two, body, ts, 300), Ok(()));
    assert_eq!(
        verify(b"other", "1764460800", &sig, body, ts, 300),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify(b"k", "1764460800", &sig, b"{}", ts, 300),
        Err(VerifyError::Mismatch)
    );
    // The timestamp is part of the MAC: moving it breaks the signature.
    assert_eq!(
        verify(b"k", "1764460801", &sig, body, ts, 300),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(
        verify(b"k", "1764460800", &sig, body, ts + 301, 300),
        Err(VerifyError::Stale { age_secs: 301 })
    );
    assert_eq!(
        verify(b"k", "1764460800", &sig, body, ts - 301, 300),
        Err(VerifyError::Stale { age_secs: -301 })
    );
    assert_eq!(
        verify(b"k", "soon", &sig, body, ts, 300),
        Err(VerifyError::BadTimestamp)
    );
    let bare = sig.trim_start_matches("v1=");
    assert_eq!(
        verify(b"k", "1764460800", bare, body, ts, 300),
        Err(VerifyError::BadSignature)
    );
}

#[test]
fn backoff_doubles_up_to_its_cap() {
    let b = Backoff::default();
    let secs: Vec<u64> = (1..=9).map(|n| b.delay(n).as_secs()).collect();
    assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(b.delay(u32::MAX), Duration::from_secs(60));
    let fast = Backoff {
        base: Duration::from_millis(10),
        max: Duration::from_millis(35),
    };
    assert_eq!(fast.delay(1), Duration::from_millis(10));
    assert_eq!(fast.delay(2), Duration::from_millis(20));
    assert_eq!(fast.delay(3), Duration::from_millis(35));
}

#[test]
fn a_webhook_is_for_its_groups() {
    let r = request();
    assert!(hook(&[]).wants(&r), "no groups: every request");
    assert!(hook(&["oncall"]).wants(&r));
    assert!(!hook(&["security"]).wants(&r));
}

#[test]
fn debug_hides_the_url_path_and_the_secret() {
    let text = format!("{:?}", hook(&[]));
    assert!(text.contains("hooks.example.com"), "{text}");
    for secret in ["XXXX", "services", "pw", "s3cret"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[test]
fn json_payload_carries_the_request_and_links() {
    let r = request();
    let v: Value =
        serde_json::from_slice(&body(Format::Json, &r, Some("https://gh.example.com/"))).unwrap();
    assert_eq!(v["event"], "approval.requested");
    let q = &v["request"];
    assert_eq!(q["id"], "ap_0123456789abcdef");
    assert_eq!(q["requester"], "alice");
    assert_eq!(q["requester_kind"], "human");
    assert_eq!(q["target"], "app");
    assert_eq!(q["environment"], "production");
    assert_eq!(q["statement"], r.spec.statement.as_str());
    assert_eq!(q["params"], serde_json::json!(["4111-****", null]));
    assert_eq!(q["tables"], serde_json::json!(["public.orders"]));
    assert_eq!(q["approver_groups"], serde_json::json!(["dba", "oncall"]));
    assert_eq!(q["quorum"], 1);
    assert_eq!(q["estimated_rows"], 12);
    assert_eq!(q["policy_id"], "orders-writes-need-a-dba");
    assert_eq!(q["expires_at"], "2025-11-30T00:05:00Z");
    assert_eq!(
        v["links"]["approve"],
        "https://gh.example.com/api/approvals/ap_0123456789abcdef/approve"
    );
    assert_eq!(
        v["links"]["deny"],
        "https://gh.example.com/api/approvals/ap_0123456789abcdef/deny"
    );
    assert_eq!(
        v["cli"]["approve"],
        "gatehouse approvals approve ap_0123456789abcdef --reason TEXT"
    );
    // Nothing beyond what approvers see: no session or client address.
    assert!(q.get("client_addr").is_none() && q.get("session").is_none());

    let v: Value = serde_json::from_slice(&body(Format::Json, &r, None)).unwrap();
    assert!(v["links"]["approve"].is_null(), "no console URL, no links");
    assert!(v["cli"]["deny"].as_str().unwrap().contains("deny ap_"));
}

#[test]
fn slack_payload_has_text_and_blocks_and_escapes_the_client() {
    let r = request();
    let v: Value =
        serde_json::from_slice(&body(Format::Slack, &r, Some("https://gh.example.com"))).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.contains("alice") && text.contains("ap_0123456789abcdef"),
        "{text}"
    );
    let blocks = v["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    let all = serde_json::to_string(blocks).unwrap();
    for needle in [
        "DELETE FROM orders",
        "&lt;!channel&gt; &amp;",
        "`public.orders`",
        "*Estimated rows*\\n12",
        "`dba`, `oncall` (quorum 1)",
        "POST https://gh.example.com/api/approvals/ap_0123456789abcdef/approve",
        "POST https://gh.example.com/api/approvals/ap_0123456789abcdef/deny",
        "gatehouse approvals approve ap_0123456789abcdef --reason TEXT",
        "$1 = `4111-****`",
        "$2 = NULL",
    ] {
        assert!(all.contains(needle), "{needle} not in {all}");
    }
    assert!(!all.contains("<!channel>"), "{all}");
    // The statement's own ``` cannot close the code block early.
    let statement = blocks[1]["text"]["text"].as_str().unwrap();
    let inner = &statement[3..statement.len() - 3];
    assert!(!inner.contains("```"), "{statement}");
}

#[test]
fn slack_statement_is_cut_to_fit() {
    let mut r = request();
    r.spec.statement = format!("SELECT '{}'", "é".repeat(5_000));
    let v: Value = serde_json::from_slice(&body(Format::Slack, &r, None)).unwrap();
    let statement = v["blocks"][1]["text"]["text"].as_str().unwrap();
    assert!(statement.chars().count() < 3_000, "{}", statement.len());
    assert!(statement.contains("(cut; see the request)"));
}

/// A receiver on a local port that answers each connection with the next status of
/// `statuses` (the last one repeats), and counts the requests.
async fn receiver(statuses: Vec<u16>) -> (String, std::sync::Arc<std::sync::atomic::AtomicU32>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            let n = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as usize;
            let status = statuses[n.min(statuses.len() - 1)];
            let mut buf = vec![0u8; 65536];
            let mut got = Vec::new();
            // Read the head and the body (Content-Length) before answering.
            loop {
                let k = s.read(&mut buf).await.unwrap_or(0);
                if k == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..k]);
                let text = String::from_utf8_lossy(&got).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if got.len() >= end + 4 + len {
                        break;
                    }
                }
            }
            let answer =
                format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = s.write_all(answer.as_bytes()).await;
        }
    });
    (url, count)
}

fn fast() -> Backoff {
    Backoff {
        base: Duration::from_millis(5),
        max: Duration::from_millis(20),
    }
}

#[tokio::test]
async fn retries_until_delivered_and_stops_at_the_last_attempt() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = deliver::client().unwrap();
    let now = || 1_764_460_800i64;

    let (url, count) = receiver(vec![500, 503, 200]).await;
    let h = Webhook { url, ..hook(&[]) };
    let got = deliver(&client, &h, b"{}", fast(), &now).await;
    assert_eq!(
        got,
        Delivery::Delivered {
            attempts: 3,
            status: 200
        }
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);

    let (url, count) = receiver(vec![500]).await;
    let h = Webhook { url, ..hook(&[]) };
    let got = deliver(&client, &h, b"{}", fast(), &now).await;
    assert_eq!(
        got,
        Delivery::Failed {
            attempts: 3,
            error: "HTTP 500".into()
        }
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 3);

    // A permanent refusal is not retried; a rate limit is.
    let (url, count) = receiver(vec![404]).await;
    let h = Webhook { url, ..hook(&[]) };
    let got = deliver(&client, &h, b"{}", fast(), &now).await;
    assert_eq!(
        got,
        Delivery::Failed {
            attempts: 1,
            error: "HTTP 404".into()
        }
    );
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    let (url, _) = receiver(vec![429, 204]).await;
    let h = Webhook { url, ..hook(&[]) };
    let got = deliver(&client, &h, b"{}", fast(), &now).await;
    assert_eq!(
        got,
        Delivery::Delivered {
            attempts: 2,
            status: 204
        }
    );
}

#[tokio::test]
async fn nobody_listening_fails_after_the_last_attempt() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let client = deliver::client().unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = Webhook {
        url: format!("http://127.0.0.1:{port}/hook"),
        max_attempts: 2,
        ..hook(&[])
    };
    let got = deliver(&client, &h, b"{}", fast(), &|| 0).await;
    assert_eq!(
        got,
        Delivery::Failed {
            attempts: 2,
            error: "could not connect".into()
        }
    );
}

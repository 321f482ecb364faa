//! What a webhook is sent about a new request: our generic JSON document, or a Slack
//! incoming-webhook message (`text` for notifications and clients without blocks, `blocks`
//! for the layout).
//!
//! Both carry what an approver decides on (statement, parameters as the value detectors
//! show them, requester, target, tables, the row estimate, the policy and its reason) and
//! how to act: the admin API's approve/deny endpoints under the console URL (POST, with the
//! approver's own token) and the CLI line. Everything that came from a client (statement,
//! names) is escaped for Slack so it cannot mention a channel, forge a link or end the code
//! block it is shown in.

use crate::Format;
use approvals::Request;
use serde_json::{json, Value};

/// The event name of a new request in the JSON document.
pub const EVENT_REQUESTED: &str = "approval.requested";
/// Slack refuses section texts over 3,000 characters; the statement is cut well below.
const SLACK_STATEMENT_MAX: usize = 2_500;
/// Slack's limit for a section field.
const SLACK_FIELD_MAX: usize = 1_900;

/// Where an approver acts on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Links {
    /// `POST` here (with `{"reason": …}` and a bearer token) to approve; none without a
    /// console URL.
    pub approve: Option<String>,
    pub deny: Option<String>,
    /// `GET` the request.
    pub show: Option<String>,
    pub cli_approve: String,
    pub cli_deny: String,
}

impl Links {
    pub fn new(console_url: Option<&str>, id: &str) -> Links {
        let base = console_url
            .map(|u| u.trim_end_matches('/'))
            .filter(|u| !u.is_empty());
        let at = |tail: &str| base.map(|b| format!("{b}/api/approvals/{id}{tail}"));
        Links {
            approve: at("/approve"),
            deny: at("/deny"),
            show: at(""),
            cli_approve: format!("gatehouse approvals approve {id} --reason TEXT"),
            cli_deny: format!("gatehouse approvals deny {id} --reason TEXT"),
        }
    }
}

/// The body sent for a new `request` in `format`.
pub fn body(format: Format, request: &Request, console_url: Option<&str>) -> Vec<u8> {
    let links = Links::new(console_url, &request.id);
    let doc = match format {
        Format::Json => json(request, &links),
        Format::Slack => slack(request, &links),
    };
    // Serialising a `Value` cannot fail; an empty body would fail the receiver's checks.
    serde_json::to_vec(&doc).unwrap_or_default()
}

fn rfc3339_ms(ms: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The generic document: `event`, the `request` as approvers see it, `links` and `cli`.
pub fn json(r: &Request, links: &Links) -> Value {
    let s = &r.spec;
    json!({
        "event": EVENT_REQUESTED,
        "request": {
            "id": r.id,
            "requester": s.requester,
            "requester_kind": s.requester_kind,
            "target": s.target,
            "environment": s.environment,
            "statement": s.statement,
            "params": s.params,
            "command": s.command,
            "tables": s.tables,
            "columns": s.columns,
            "policy_id": s.policy_id,
            "reason": s.reason,
            "approver_groups": s.approver_groups,
            "quorum": s.quorum,
            "estimated_rows": s.estimated_rows,
            "in_transaction": s.in_transaction,
            "created_at": rfc3339_ms(r.created_at_ms),
            "expires_at": rfc3339_ms(r.expires_at_ms),
        },
        "links": {
            "approve": links.approve,
            "deny": links.deny,
            "request": links.show,
        },
        "cli": {
            "approve": links.cli_approve,
            "deny": links.cli_deny,
        },
    })
}

/// A Slack incoming-webhook message.
pub fn slack(r: &Request, links: &Links) -> Value {
    let s = &r.spec;
    let text = format!(
        "Approval needed: {} wants to run {} on {} (request {})",
        escape(&s.requester),
        escape(&s.command),
        escape(&s.target),
        r.id
    );
    let mut fields = vec![
        field(
            "Requester",
            &format!("{} ({})", code(&s.requester), escape(&s.requester_kind)),
        ),
        field(
            "Target",
            &match &s.environment {
                Some(env) => format!("{} ({})", code(&s.target), escape(env)),
                None => code(&s.target),
            },
        ),
        field("Tables", &list(&s.tables)),
        field(
            "Estimated rows",
            &s.estimated_rows
                .map_or_else(|| "unknown".to_owned(), |n| n.to_string()),
        ),
        field(
            "Approvers",
            &format!("{} (quorum {})", list(&s.approver_groups), s.quorum),
        ),
        field(
            "Policy",
            &format!("{}: {}", code(&s.policy_id), escape(&s.reason)),
        ),
    ];
    if let Some(at) = rfc3339_ms(r.expires_at_ms) {
        fields.push(field("Expires", &at));
    }
    if !s.params.is_empty() {
        let shown: Vec<String> = s
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| match p {
                Some(v) => format!("${} = {}", i + 1, code(v)),
                None => format!("${} = NULL", i + 1),
            })
            .collect();
        fields.push(field("Parameters", &shown.join("\n")));
    }
    let mut act = Vec::new();
    if let (Some(a), Some(d)) = (&links.approve, &links.deny) {
        act.push(format!("*Approve:* `POST {a}`"));
        act.push(format!("*Deny:* `POST {d}`"));
    }
    act.push(format!("*CLI:* `{}`", links.cli_approve));
    json!({
        "text": text,
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": format!("Approval needed: {}", r.id)},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": format!("```{}```", code_block(&s.statement))},
            },
            {"type": "section", "fields": fields},
            {"type": "section", "text": {"type": "mrkdwn", "text": act.join("\n")}},
        ],
    })
}

fn field(label: &str, value: &str) -> Value {
    json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", cut(value, SLACK_FIELD_MAX))})
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".into();
    }
    items.iter().map(|t| code(t)).collect::<Vec<_>>().join(", ")
}

/// Slack's three control characters (`&`, `<`, `>`): escaped, nothing can become a link or
/// a mention.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Inline code: a backtick inside would end it, so it is shown as a look-alike.
fn code(s: &str) -> String {
    format!("`{}`", escape(&s.replace('`', "\u{2CB}")))
}

/// The statement in a code block, escaped, cut to fit, and unable to close the block.
fn code_block(s: &str) -> String {
    escape(&cut(s, SLACK_STATEMENT_MAX)).replace("```", "`\u{200B}`\u{200B}`")
}

fn cut(s: &str, max_chars: usize) -> String {
    match s.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}… (cut; see the request)", &s[..at]),
        None => s.to_owned(),
    }
}

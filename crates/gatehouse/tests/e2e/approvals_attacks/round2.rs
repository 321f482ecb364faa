//! Second red-team round on approvals: the extended protocol held at Execute, one-time
//! grants, and approval at COMMIT. Every test asserts the SECURE behaviour: a failing test is a
//! finding (kept `#[ignore = "finding: ..."]` until the product is fixed).
//!
//! Findings when written (against 5e30873), all fixed since (the SQL EXECUTE ones by refusing
//! an SQL EXECUTE that needs approval; the stale re-decision by deciding a prepared statement
//! again at Bind whenever the search path or the policies changed; the commit-mode ones by
//! ending a hold only when the server reported the transaction idle):
//! - a one-time grant for `EXECUTE s` is keyed on that text only: re-Parse `s` as another
//!   statement (same policy) and the grant runs it (an unbounded DELETE ran on an approval of
//!   `DELETE … WHERE id = 1`); the approver of `EXECUTE s(…)` never sees what `s` is;
//! - without masking, a Parse is never decided again: parsed under `search_path = scratch`
//!   (or before a policy reload adding `@approval`), it runs after `SET search_path = public`
//!   (the server re-analyses it) or after the reload, against public.orders, unapproved;
//! - approval at COMMIT forgets the waiting writes (then COMMIT goes through unapproved) when a
//!   needing-approval simple-Query write is sent in a failed transaction, or when a string
//!   holds a ROLLBACK that never ran (`SELECT 1/0; ROLLBACK`); ROLLBACK TO SAVEPOINT then
//!   revives the transaction with the writes (psycopg's ClientCursor with nested transaction
//!   blocks does exactly this);
//! - a held COMMIT shows extended-protocol writes as `$1` text, without their values;
//! - a released portal closed by SQL CLOSE stays released: a cursor of the same name run by
//!   Execute is audited as the approved statement, a second `executed` step of the request.

#[allow(unused_imports)]
use super::*;

const COMMIT_POLICY: &str = r#"
@id("ledger-commit-review")
@reason("ledger changes are reviewed before they commit")
@approval("dba")
@approval_mode("commit")
forbid(principal, action, resource)
when { context.tables_written.contains("public.ledger") };
"#;

/// The suite's setup plus a schema of the attacker's own with a table named like the
/// protected one (writes to it need no approval).
const SETUP_SCRATCH: &str = "
CREATE SCHEMA scratch;
CREATE TABLE scratch.orders (id int PRIMARY KEY, amount int);
INSERT INTO scratch.orders VALUES (1, 1), (2, 2), (3, 3);
";

/// Approvals with a short wait for agents and requests (and grants) that outlive it.
async fn start_grants(policies: &str) -> Gatehouse {
    Gatehouse::start_with(Options {
        admin: true,
        setup_sql: format!("{SETUP}{SETUP_SCRATCH}"),
        policies: policies.into(),
        extra_toml: "[approvals]\ntimeout_secs = 30\nin_transaction_timeout_secs = 30\nagent_timeout_secs = 1\nrequest_ttl_secs = 60\ngrant_window_secs = 60\n".into(),
    })
    .await
}

async fn ledger(gh: &Gatehouse) -> String {
    direct_one(
        gh,
        "SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM ledger",
    )
    .await
}

/// The request id and state of a refusal's DETAIL (`request: ID; state: S`).
fn refusal_of(r: &Reply) -> Option<(String, String)> {
    let d = r.error()?.field(b'D')?;
    let rest = d.strip_prefix("request: ")?;
    let (id, state) = rest.split_once("; state: ")?;
    Some((id.to_owned(), state.to_owned()))
}

/// An agent's statement: the notice, then (its wait being short) a refusal with state
/// `pending`; the request id.
async fn agent_pending(c: &mut RawPg, msgs: &[bytes::BytesMut]) -> String {
    c.send(msgs).await;
    let r = c.read_ready(1).await;
    let (id, state) = refusal_of(&r).unwrap_or_else(|| panic!("not pending: {}", r.describe()));
    assert_eq!(state, "pending", "{}", r.describe());
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    id
}

fn binary_bind(portal: &str, statement: &str, params: &[Option<&[u8]>]) -> bytes::BytesMut {
    use bytes::BufMut;
    let mut body = BytesMut::new();
    body.put_slice(portal.as_bytes());
    body.put_u8(0);
    body.put_slice(statement.as_bytes());
    body.put_u8(0);
    body.put_i16(1);
    body.put_i16(1); // every parameter binary
    body.put_i16(params.len() as i16);
    for p in params {
        match p {
            None => body.put_i32(-1),
            Some(v) => {
                body.put_i32(v.len() as i32);
                body.put_slice(v);
            }
        }
    }
    body.put_i16(0);
    crate::raw::message(b'B', &body)
}

/// The status byte of the last ReadyForQuery in `r`.
fn status_of(r: &Reply) -> Option<u8> {
    r.msgs
        .iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .and_then(|m| m.body.first().copied())
}

mod commit;
mod grants;
mod prepared;
pub(super) mod session;

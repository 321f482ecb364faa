//! The planner's estimate of the rows a held statement affects, for approvers and automatic
//! approval rules: `EXPLAIN (FORMAT JSON)` on a side connection of Gatehouse's own to the
//! target (the catalog loader's login and credentials), never the client's session.
//!
//! What keeps it from doing harm:
//! - Only one INSERT / UPDATE / DELETE / MERGE / SELECT is explained, as the analyser reads it
//!   (one statement, understood, no dangerous function families); and it is sent with the
//!   extended protocol, where the server itself refuses more than one command in a Parse.
//! - EXPLAIN without ANALYZE runs nothing. Planning can still evaluate functions on constants
//!   (immutable ones, folded at plan time): the transaction is `READ ONLY`, so those cannot
//!   write through SQL (what PostgreSQL lets a read-only transaction do, they can), and
//!   `statement_timeout` bounds them. The transaction is rolled back.
//! - Time: 2 s for the statement on the server, 3 s for everything (connect included); at
//!   most [`CONCURRENT`] estimates at once process-wide. Anything that fails or takes longer
//!   is `None` (logged at debug): an unknown estimate, never an error for the client.
//!
//! Not done: statements with `$n` parameters (PostgreSQL 15 cannot EXPLAIN them without
//! values; 16's `GENERIC_PLAN` could), the session's temporary tables (another session's
//! are not visible here), and the session's settings (planner settings, search_path: the
//! caller passes the search path the session resolves names with).

use crate::auth::read_frame;
use crate::catalog::{query, text_row};
use crate::config::TargetConfig;
use crate::upstream::{self, Upstream, MAX_UPSTREAM_MESSAGE};
use bytes::BytesMut;
use serde_json::Value;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use wire_pg::backend::{self, tag};
use wire_pg::encode;

/// Everything, connecting included.
const TIMEOUT: Duration = Duration::from_secs(3);
/// The server's own limit on the EXPLAIN (planning only).
const STATEMENT_TIMEOUT: &str = "2s";
/// Side connections open at once, for all targets: held statements must not be a way to
/// open many connections to a database.
pub const CONCURRENT: usize = 4;
static PERMITS: Semaphore = Semaphore::const_new(CONCURRENT);
/// Commands whose plan says how many rows they reach.
const EXPLAINABLE: [&str; 5] = ["INSERT", "UPDATE", "DELETE", "MERGE", "SELECT"];
/// How deep a plan is walked for the nodes that write.
const MAX_PLAN_DEPTH: usize = 64;

/// The planner's estimate of the rows `sql` affects on `target` (a write: the rows fed to
/// its ModifyTable nodes, summed; a read: the rows it returns), or `None` when it cannot be
/// had. `search_path` is the session's (as `current_schemas(false)` lists it; temporary
/// schemas are skipped); empty means the target user's default.
pub async fn estimate_rows(
    target: &TargetConfig,
    sql: &str,
    search_path: &[String],
) -> Option<u64> {
    if let Err(why) = explainable(sql) {
        tracing::debug!(target = %target.name, why, "no row estimate");
        return None;
    }
    let run = async {
        let _permit = PERMITS
            .acquire()
            .await
            .map_err(|_| "no estimate slot".to_owned())?;
        explain(target, sql, search_path).await
    };
    match tokio::time::timeout(TIMEOUT, run).await {
        Ok(Ok(rows)) => Some(rows),
        Ok(Err(why)) => {
            tracing::debug!(target = %target.name, why, "no row estimate");
            None
        }
        Err(_) => {
            tracing::debug!(target = %target.name, "no row estimate: timed out");
            None
        }
    }
}

/// One statement of a kind EXPLAIN can size, understood and without dangerous functions.
fn explainable(sql: &str) -> Result<(), &'static str> {
    let analysis = sql::analyze(sql, &sql::AnalyzeContext::default());
    let [facts] = analysis.statements.as_slice() else {
        return Err("not exactly one statement");
    };
    if analysis.error.is_some() || facts.opaque.is_some() {
        return Err("the statement is not understood");
    }
    if !facts.dangerous.is_empty() {
        return Err("the statement calls dangerous functions");
    }
    if !EXPLAINABLE.contains(&facts.command.as_str()) {
        return Err("not an INSERT, UPDATE, DELETE, MERGE or SELECT");
    }
    Ok(())
}

/// Connects, explains in a read-only transaction, rolls back, says goodbye.
async fn explain(target: &TargetConfig, sql: &str, search_path: &[String]) -> Result<u64, String> {
    let params = vec![
        (
            "application_name".to_owned(),
            "gatehouse:estimate".to_owned(),
        ),
        ("user".to_owned(), target.user.clone()),
        ("database".to_owned(), target.database.clone()),
        // The text is read as the analyser read it: UTF-8, standard strings.
        (
            "options".to_owned(),
            "-c client_encoding=UTF8 -c standard_conforming_strings=on".to_owned(),
        ),
    ];
    let mut up = upstream::connect(target, &params)
        .await
        .map_err(|e| e.to_string())?;
    let mut setup = format!("BEGIN READ ONLY; SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'");
    if let Some(path) = search_path_sql(search_path)? {
        setup.push_str("; ");
        setup.push_str(&path);
    }
    query(&mut up, &setup).await.map_err(|e| e.to_string())?;
    let plan = explain_json(&mut up, sql).await;
    // Nothing ran, but nothing is left open either.
    let _ = query(&mut up, "ROLLBACK").await;
    let mut out = BytesMut::new();
    encode::terminate(&mut out);
    let _ = up.stream.write_all(&out).await;
    rows_from_plan(&plan?).ok_or_else(|| "no row count in the plan".to_owned())
}

/// `SET LOCAL search_path` to the session's schemas, quoted; `None` for the default.
fn search_path_sql(path: &[String]) -> Result<Option<String>, String> {
    let schemas: Vec<String> = path
        .iter()
        .filter(|s| !s.starts_with("pg_temp"))
        .map(|s| {
            if s.contains('\0') {
                return Err("a schema name with NUL".to_owned());
            }
            Ok(format!("\"{}\"", s.replace('"', "\"\"")))
        })
        .collect::<Result<_, _>>()?;
    if path.is_empty() {
        return Ok(None);
    }
    if schemas.is_empty() {
        // Only temporary schemas: nothing to resolve against but pg_catalog.
        return Ok(Some("SET LOCAL search_path = ''".into()));
    }
    Ok(Some(format!(
        "SET LOCAL search_path = {}",
        schemas.join(", ")
    )))
}

/// `EXPLAIN (FORMAT JSON) sql` through Parse/Bind/Execute/Sync: the server refuses a Parse
/// of several commands, whatever the text hides.
async fn explain_json(up: &mut Upstream, sql: &str) -> Result<String, String> {
    let mut out = BytesMut::new();
    encode::parse(&mut out, "", &format!("EXPLAIN (FORMAT JSON) {sql}"), &[]);
    encode::bind(&mut out, "", "", &[], &[]);
    encode::execute(&mut out, "", 0);
    encode::sync(&mut out);
    up.stream.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut plan = None;
    let mut failure = None;
    loop {
        let frame = read_frame(&mut up.stream, &mut up.buf, MAX_UPSTREAM_MESSAGE)
            .await
            .map_err(|e| e.to_string())?;
        match frame.tag() {
            tag::DATA_ROW => {
                let row = text_row(&frame).map_err(|e| e.to_string())?;
                plan = row.into_iter().next().flatten();
            }
            tag::ERROR_RESPONSE => {
                let e = backend::error_fields(&frame).map_err(|e| e.to_string())?;
                failure = Some(format!("EXPLAIN: {} {}", e.code, e.message));
            }
            tag::READY_FOR_QUERY => break,
            _ => {}
        }
    }
    match (failure, plan) {
        (Some(e), _) => Err(e),
        (None, Some(p)) => Ok(p),
        (None, None) => Err("EXPLAIN returned no plan".into()),
    }
}

/// The rows a plan affects: the rows fed to every ModifyTable node (a write, also one in a
/// WITH), summed; with no such node, the top node's rows (a read). ModifyTable's own "Plan
/// Rows" is 0 without RETURNING, so its input is what counts.
pub(crate) fn rows_from_plan(json: &str) -> Option<u64> {
    let v: Value = serde_json::from_str(json).ok()?;
    let top = v.get(0)?.get("Plan")?;
    let mut written = None;
    modify_rows(top, 0, &mut written);
    written.or_else(|| plan_rows(top))
}

fn modify_rows(node: &Value, depth: usize, sum: &mut Option<u64>) {
    if depth > MAX_PLAN_DEPTH {
        return;
    }
    let children = node.get("Plans").and_then(Value::as_array);
    if node.get("Node Type").and_then(Value::as_str) == Some("ModifyTable") {
        let input = children.and_then(|c| {
            c.iter()
                .find(|p| p.get("Parent Relationship").and_then(Value::as_str) == Some("Outer"))
                .or_else(|| c.first())
        });
        if let Some(rows) = input.or(Some(node)).and_then(plan_rows) {
            *sum = Some(sum.unwrap_or(0).saturating_add(rows));
        }
    }
    for child in children.into_iter().flatten() {
        modify_rows(child, depth + 1, sum);
    }
}

fn plan_rows(node: &Value) -> Option<u64> {
    let rows = node.get("Plan Rows")?;
    rows.as_u64().or_else(|| {
        // Printed as a whole number; a float is rounded, never negative.
        let f = rows.as_f64()?;
        (f.is_finite() && f >= 0.0).then(|| f.round().min(u64::MAX as f64) as u64)
    })
}

#[cfg(test)]
mod tests;

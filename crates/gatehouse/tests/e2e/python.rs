//! psycopg 3 and SQLAlchemy through the proxy, via `tests/python/e2e_clients.py`.
//!
//! Python comes from `$GATEHOUSE_TEST_PYTHON` or the repository's `.venv` (which `make test`
//! creates with psycopg[binary] and sqlalchemy). Without either the test FAILS: a missing
//! client is a broken set-up, not a reason to skip.

use crate::harness::{of_kind, Gatehouse};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

pub(crate) fn repo_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../..").canonicalize().unwrap_or(here)
}

pub(crate) fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("GATEHOUSE_TEST_PYTHON").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "GATEHOUSE_TEST_PYTHON={} does not exist",
            p.display()
        );
        return p;
    }
    let venv = repo_root().join(".venv/bin/python");
    assert!(
        venv.is_file(),
        "no Python for the psycopg/SQLAlchemy tests: set GATEHOUSE_TEST_PYTHON or create the \
         venv with `make test` (or: python3 -m venv {root}/.venv && {root}/.venv/bin/pip install \
         'psycopg[binary]' sqlalchemy)",
        root = repo_root().display()
    );
    venv
}

#[tokio::test]
async fn psycopg_and_sqlalchemy() {
    let python = python();
    let script = repo_root().join("tests/python/e2e_clients.py");
    assert!(script.is_file(), "{} is missing", script.display());
    let gh = Gatehouse::start().await;
    let token = gh.issue("py-agent", "agent", &["etl"]).await;

    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(&script)
        .args(["127.0.0.1", &gh.port.to_string(), "py-agent", "app"])
        .env("PGPASSWORD", &token)
        .env_remove("PGHOST")
        .env_remove("PGSERVICE")
        .env("PGSSLMODE", "prefer")
        .stdin(Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the Python clients timed out")
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let r: Value = serde_json::from_str(stdout.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no JSON result ({e}):\n{stdout}\n{stderr}"));

    // psycopg 3
    assert_eq!(r["params"], json!([42, "héllo", true, "00ff41", "2.50"]));
    assert_eq!(r["binary"], json!([1i64 << 41, "bin"]));
    assert_eq!(r["prepared"], json!([0, 1, 4, 9, 16, 25]));
    assert_eq!(r["identity"], "py-agent");
    assert_eq!(r["application_name"], "gatehouse:py-agent/psycopg-e2e");
    assert_eq!(r["duplicate_sqlstate"], "23505");
    assert_eq!(r["after_rollback"], json!([1]));
    assert_eq!(r["executemany"], json!([101, 1, 109]));
    assert_eq!(r["pipeline"], json!([0, 10, 20, 30, 40, 50, 60, 70]));
    let copy_out: Vec<i64> = (200..300).collect();
    assert_eq!(r["copy_out"], json!(copy_out));
    assert_eq!(r["division_sqlstate"], "22012");
    assert_eq!(r["after_error"], "still alive");

    // SQLAlchemy
    assert_eq!(
        r["core_rows"],
        json!([["Ada", "ada@example.com"], ["Grace", null]])
    );
    assert_eq!(r["core_count"], 3);
    assert_eq!(r["orm_integrity_sqlstate"], "23505");
    assert_eq!(
        r["orm_notes"],
        json!([[1, "ada", "hello"], [2, "grace", "world"]])
    );
    assert_eq!(r["orm_updated"], "updated");
    assert_eq!(r["sqlalchemy_identity"], "py-agent");

    // The Python sessions are in the audit trail under the agent's identity, with the
    // parameters psycopg sent server-side.
    let events = gh
        .wait_events("psycopg statement with params", |evs| {
            evs.iter().any(|e| {
                e["kind"] == "statement"
                    && e["application_name"] == "psycopg-e2e"
                    && e["params"].as_array().is_some_and(|p| p.len() == 5)
            })
        })
        .await;
    let with_params = events
        .iter()
        .find(|e| {
            e["application_name"] == "psycopg-e2e"
                && e["params"].as_array().is_some_and(|p| p.len() == 5)
        })
        .unwrap();
    assert_eq!(with_params["identity"], "py-agent");
    assert_eq!(with_params["identity_kind"], "agent");
    assert_eq!(with_params["groups"], json!(["etl"]));
    assert_eq!(with_params["params"][0], "41");
    assert_eq!(with_params["params"][1], "héllo");
    assert!(with_params["params"][2].is_null());
    assert_eq!(with_params["params"][3], "\\x00ff41");
    assert_eq!(with_params["params"][4], "1.25");
    let sqlalchemy_stmts = of_kind(&events, "statement")
        .into_iter()
        .filter(|e| e["application_name"] == "sqlalchemy-e2e")
        .count();
    assert!(
        sqlalchemy_stmts > 5,
        "SQLAlchemy statements audited: {sqlalchemy_stmts}"
    );
}

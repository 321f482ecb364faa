//! `gatehouse policy check|test|explain` without a database: exit codes, file:line errors,
//! pass/fail per case.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

fn gatehouse(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn config(dir: &Path, policy: &str) -> String {
    std::fs::write(dir.join("extra.cedar"), policy).unwrap();
    let path = dir.join("gatehouse.toml");
    std::fs::write(
        &path,
        "data_dir = \"data\"\n[[targets]]\nname = \"app\"\nupstream = \"postgresql://app@127.0.0.1:1/app\"\n\
         [policy]\npaths = [\"extra.cedar\"]\n",
    )
    .unwrap();
    path.display().to_string()
}

const APPROVAL: &str = r#"
@id("prod-writes-need-approval")
@reason("writes to orders need approval")
@approval("dba")
forbid(principal, action == Gatehouse::Action::"write", resource)
when { context.tables_written.contains("public.orders") };
"#;

#[test]
fn check_reports_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        "permit(principal, action, resource)\nforbid(principal,",
    );
    let (code, text) = gatehouse(&["policy", "check", "--config", &cfg]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("extra.cedar:2:"), "{text}");
    let cfg = config(dir.path(), APPROVAL);
    let (code, text) = gatehouse(&["policy", "check", "--config", &cfg]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn test_cases_pass_and_fail() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), APPROVAL);
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"
[[case]]
identity = "alice"
sql = "INSERT INTO orders (id) VALUES (1)"
expect = "needs_approval"
policy = "prod-writes-need-approval"
[[case]]
identity = "alice"
sql = "DELETE FROM customers"
expect = "deny"
[[case]]
name = "wrong on purpose"
identity = "alice"
sql = "SELECT 1"
expect = "deny"
"#,
    )
    .unwrap();
    let (code, text) = gatehouse(&["policy", "test", "--config", &cfg, cases.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("2 passed, 1 failed"), "{text}");
    assert!(
        text.contains("FAIL  wrong on purpose: expected deny, got allow"),
        "{text}"
    );
}

#[test]
fn explain_shows_facts_and_decision() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), APPROVAL);
    let (code, text) = gatehouse(&[
        "policy",
        "explain",
        "--config",
        &cfg,
        "--identity",
        "bot",
        "--kind",
        "agent",
        "--sql",
        "WITH d AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM d",
    ]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("\"public.orders\""), "{text}");
    assert!(text.contains("\"decision\": \"deny\""), "{text}");
    assert!(text.contains("builtin.unfiltered-write"), "{text}");
}

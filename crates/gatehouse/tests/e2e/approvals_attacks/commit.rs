//! Approving the outcome (`@approval_mode("commit")`): the write runs inside the client's
//! transaction and the COMMIT waits, showing the approver the writes and their row counts.
//! Approve → committed; deny → rolled back and the client's COMMIT fails. Every other way of
//! committing while writes wait is refused, and nothing outside a transaction block escapes
//! approval.

use super::*;

const COMMIT_POLICY: &str = r#"
@id("ledger-commit-review")
@reason("ledger changes are reviewed before they commit")
@approval("dba")
@approval_mode("commit")
forbid(principal, action, resource)
when { context.tables_written.contains("public.ledger") };
"#;

async fn ledger(gh: &Gatehouse) -> String {
    direct_one(
        gh,
        "SELECT string_agg(id || ':' || amount, ',' ORDER BY id) FROM ledger",
    )
    .await
}

/// psycopg 3 (extended protocol writes, a simple COMMIT) through commit(), approved and denied.
#[tokio::test]
async fn psycopg_commit_waits_approve_commits_deny_rolls_back() {
    let gh = start_with(COMMIT_POLICY, 30, 30).await;
    let who = cast(&gh).await;
    for (verdict, before, expected) in [
        ("approve", "1:10,2:20", "1:15,2:20"),
        ("deny", "1:15,2:20", "1:15,2:20"),
    ] {
        let python = crate::python::python();
        let script = crate::python::repo_root().join("tests/python/commit_hold.py");
        let mut cmd = tokio::process::Command::new(&python);
        cmd.arg(&script)
            .args(["127.0.0.1", &gh.port.to_string(), "alice", "app"])
            .env("PGPASSWORD", &who.alice)
            .env_remove("PGHOST")
            .env_remove("PGSERVICE")
            .stdin(std::process::Stdio::null());
        let run = tokio::spawn(async move { cmd.output().await });
        let req = wait_pending(&gh, &who.bob, "COMMIT").await;
        // The approver sees the writes the COMMIT would make durable, with row counts.
        assert_eq!(
            req["transaction"],
            serde_json::json!([{
                "statement": "UPDATE ledger SET amount = amount + $1 WHERE id = $2",
                "params": ["5", "1"],
                "rows": 1
            }]),
            "{req}"
        );
        assert_eq!(req["command"], "COMMIT");
        // And the rows the COMMIT would make durable, as they stand in the transaction.
        let changed = &req["changed_rows"][0];
        assert_eq!(changed["table"], "public.ledger", "{req}");
        assert_eq!(
            changed["columns"],
            serde_json::json!(["id", "amount"]),
            "{req}"
        );
        let now: Vec<&str> = before.split(',').collect();
        let was: i64 = now[0].trim_start_matches("1:").parse().unwrap_or(0);
        assert_eq!(
            changed["rows"],
            serde_json::json!([["1", (was + 5).to_string()]]),
            "{req}"
        );
        assert_eq!(req["tables"], serde_json::json!(["public.ledger"]));
        assert_eq!(ledger(&gh).await, before, "not committed while held");
        let (status, body) = vote(&gh, &who.bob, &id_of(&req), verdict, "reviewed").await;
        assert_eq!(status, 200, "{body}");
        let out = tokio::time::timeout(WAIT, run)
            .await
            .unwrap_or_else(|_| panic!("psycopg still waiting"))
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stdout}{stderr}");
        let got: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{stdout}: {e}"));
        assert_eq!(got["rowcount"], 1, "{got}");
        assert_eq!(got["after"], 1, "the connection still works: {got}");
        assert!(
            got["notices"].to_string().contains("held for approval"),
            "{got}"
        );
        if verdict == "approve" {
            assert_eq!(got["committed"], true, "{got}");
        } else {
            assert_eq!(got["committed"], false, "{got}");
            assert_eq!(got["sqlstate"], "42501", "{got}");
            assert!(
                got["message"].to_string().contains("denied by bob"),
                "{got}"
            );
            // Rolled back by Gatehouse: the client is told it is idle.
            assert_eq!(got["status"], "IDLE", "{got}");
        }
        assert_eq!(ledger(&gh).await, expected, "after {verdict}");
    }
    let events = gh.audit_events().await;
    let deferred = events
        .iter()
        .filter(|e| e["kind"] == "statement" && e["decision"] == "held_at_commit")
        .count();
    assert_eq!(deferred, 2, "{events:?}");
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

/// Simple protocol: outside a transaction block the write itself is held; inside, only the
/// COMMIT. Every other way out of a transaction whose writes wait is refused or rolls back.
#[tokio::test]
async fn no_other_way_to_commit_while_writes_wait() {
    let gh = start_with(COMMIT_POLICY, 30, 30).await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;

    // Autocommit: there is no COMMIT to hold, so the statement is held.
    let id = raw_hold(&mut c, "UPDATE ledger SET amount = 0 WHERE id = 2").await;
    let (status, _) = vote(&gh, &who.bob, &id, "deny", "no").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert_eq!(ledger(&gh).await, "1:10,2:20");

    // In a transaction block the write runs; COMMIT inside a longer string, by Execute of a
    // prepared COMMIT, and PREPARE TRANSACTION are refused.
    c.send(&[rawpg::parse("c", "COMMIT")]).await;
    c.send(&[rawpg::sync()]).await;
    let _ = c.read_ready(1).await;
    let r = c.simple("BEGIN").await;
    assert!(r.sqlstate().is_none(), "{}", r.describe());
    let r = c.simple("UPDATE ledger SET amount = 0 WHERE id = 2").await;
    assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
    for (msgs, what) in [
        (vec![rawpg::query("SELECT 1; COMMIT")], "COMMIT in a string"),
        (
            vec![
                rawpg::bind("", "c", &[], &[]),
                rawpg::execute("", 0),
                rawpg::sync(),
            ],
            "COMMIT by Execute",
        ),
    ] {
        c.send(&msgs).await;
        let r = c.read_ready(1).await;
        assert_eq!(
            r.sqlstate().as_deref(),
            Some("42501"),
            "{what}: {}",
            r.describe()
        );
        assert!(
            !command_tags(&r).iter().any(|t| t == "COMMIT"),
            "{what}: {}",
            r.describe()
        );
        assert_eq!(ledger(&gh).await, "1:10,2:20", "{what} committed");
        // The refusal failed the transaction: roll back and start again.
        let _ = c.simple("ROLLBACK").await;
        let _ = c.simple("BEGIN").await;
        let r = c.simple("UPDATE ledger SET amount = 0 WHERE id = 2").await;
        assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
    }
    let r = c.simple("PREPARE TRANSACTION 'gh_x'").await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert_eq!(ledger(&gh).await, "1:10,2:20");
    let _ = c.simple("ROLLBACK").await;

    // ROLLBACK drops what waited: the next transaction's COMMIT without writes is not held.
    let _ = c.simple("BEGIN").await;
    let r = c.simple("UPDATE ledger SET amount = 0 WHERE id = 2").await;
    assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
    let _ = c.simple("ROLLBACK").await;
    let _ = c.simple("BEGIN").await;
    let r = c.simple("COMMIT").await;
    assert!(hold_id(&r).is_none(), "{}", r.describe());
    assert_eq!(command_tags(&r), ["COMMIT"], "{}", r.describe());

    // Approved: the COMMIT goes upstream and the writes are durable.
    let _ = c.simple("BEGIN").await;
    let r = c.simple("UPDATE ledger SET amount = 7 WHERE id = 2").await;
    assert_eq!(command_tags(&r), ["UPDATE 1"], "{}", r.describe());
    let id = raw_hold(&mut c, "COMMIT").await;
    let (status, body) = vote(&gh, &who.bob, &id, "approve", "fine").await;
    assert_eq!(status, 200, "{body}");
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["COMMIT"], "{}", r.describe());
    assert_eq!(ledger(&gh).await, "1:10,2:7");
    assert_eq!(orders_state(&gh).await, ORDERS_AT_START);
    let (code, text) = gh.verify().await;
    assert_eq!(code, 0, "{text}");
}

/// The rows shown to the approver of a held COMMIT: sensitive columns masked; reading them
/// leaves the client's transaction exactly as it was (its own savepoint and settings intact).
#[tokio::test]
async fn changed_rows_are_shown_masked_and_the_transaction_is_untouched() {
    let policy = r#"
@id("notes-commit-review")
@reason("notes are reviewed before they commit")
@approval("dba")
@approval_mode("commit")
forbid(principal, action, resource)
when { context.tables_written.contains("public.notes") };
"#;
    let gh = Gatehouse::start_with(Options {
        admin: true,
        setup_sql: SETUP.into(),
        policies: policy.into(),
        extra_toml: "[approvals]\ntimeout_secs = 30\n\n[[sensitive]]\ntarget = \"app\"\ncolumns = [\"public.notes.body\"]\n".into(),
    })
    .await;
    let who = cast(&gh).await;
    let mut c = RawPg::login(gh.port, "alice", &who.alice).await;
    for sql in [
        "BEGIN",
        "INSERT INTO notes VALUES (7, 'secret text')",
        "SAVEPOINT mine",
        "INSERT INTO notes VALUES (10, 'inside the savepoint')",
    ] {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    c.send(&[rawpg::query("COMMIT")]).await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (_, req) = show(&gh, &who.bob, &id).await;
    // Rows written inside the client's own savepoint carry another transaction id: not shown.
    assert_eq!(
        req["changed_rows"],
        serde_json::json!([{
            "table": "public.notes",
            "columns": ["id", "body"],
            "rows": [["7", "[masked]"]]
        }]),
        "{req}"
    );
    let (status, _) = vote(&gh, &who.bob, &id, "deny", "not now").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(r.sqlstate().as_deref(), Some("42501"), "{}", r.describe());
    assert_eq!(count(&gh, "notes").await, 0);

    // Untouched: approved, everything the client wrote (its savepoint's rows too) commits.
    for sql in [
        "BEGIN",
        "INSERT INTO notes VALUES (8, 'x')",
        "SAVEPOINT mine",
        "INSERT INTO notes VALUES (9, 'y')",
    ] {
        let r = c.simple(sql).await;
        assert!(r.sqlstate().is_none(), "{sql}: {}", r.describe());
    }
    c.send(&[rawpg::query("COMMIT")]).await;
    let r = c.read_until_tag(b'N').await;
    let id = hold_id(&r).unwrap_or_else(|| panic!("not held: {}", r.describe()));
    let (status, _) = vote(&gh, &who.bob, &id, "approve", "fine").await;
    assert_eq!(status, 200);
    let r = c.read_ready(1).await;
    assert_eq!(command_tags(&r), ["COMMIT"], "{}", r.describe());
    assert_eq!(count(&gh, "notes").await, 2);
    // The session goes on, its settings as they were.
    let r = c.simple("SHOW statement_timeout").await;
    assert_eq!(r.cells(), ["0"], "{}", r.describe());
}

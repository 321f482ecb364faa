//! `psql` as a subprocess: libpq's SCRAM, multi-statement `-c`, `\copy` both ways and the
//! exit status of a failing statement.

use crate::harness::{pg_tool, Gatehouse, WAIT};
use std::process::Stdio;

struct Psql {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn psql(gh: &Gatehouse, user: &str, token: &str, args: &[&str]) -> Psql {
    let mut cmd = tokio::process::Command::new(pg_tool("psql"));
    cmd.arg(gh.conninfo(user))
        .args(["-X", "-q", "-At"])
        .args(args)
        .env("PGPASSWORD", token)
        // No ambient libpq settings may leak in (service files, another host, sslmode).
        .env_remove("PGHOST")
        .env_remove("PGPORT")
        .env_remove("PGSERVICE")
        .env("PGSSLMODE", "prefer")
        .current_dir(gh.dir.path())
        .stdin(Stdio::null());
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .expect("psql timed out")
        .expect("psql runs");
    Psql {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[tokio::test]
async fn psql_multi_statement_copy_and_errors() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;

    // A multi-statement -c string is one simple Query.
    let out = psql(
        &gh,
        "alice",
        &token,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "CREATE TABLE pets (id int, name text); \
             INSERT INTO pets VALUES (1, 'Rex'), (2, 'Tom, the cat'); \
             SELECT count(*) FROM pets",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(out.stdout.lines().last(), Some("2"), "{}", out.stdout);

    // \copy FROM a client-side file (COPY FROM STDIN) and TO one (COPY TO STDOUT).
    let csv_in = gh.dir.path().join("in.csv");
    let mut rows = String::new();
    for i in 3..=1002 {
        rows.push_str(&format!("{i},\"pet \"\"{i}\"\", ok\"\n"));
    }
    std::fs::write(&csv_in, &rows).unwrap();
    let out = psql(
        &gh,
        "alice",
        &token,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "\\copy pets FROM 'in.csv' WITH (FORMAT csv)",
            "-c",
            "\\copy (SELECT * FROM pets WHERE id > 2 ORDER BY id) TO 'out.csv' WITH (FORMAT csv)",
            "-c",
            "SELECT count(*), max(id) FROM pets",
        ],
    )
    .await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    assert_eq!(
        out.stdout.lines().last(),
        Some("1002|1002"),
        "{}",
        out.stdout
    );
    let copied = std::fs::read_to_string(gh.dir.path().join("out.csv")).unwrap();
    assert_eq!(copied, rows, "\\copy out must return what \\copy in stored");

    // A failing statement: psql reports the server's error and exits non-zero, and the
    // statements before it in the same -c string are rolled back (one implicit transaction).
    let out = psql(
        &gh,
        "alice",
        &token,
        &[
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            "INSERT INTO pets VALUES (9999, 'ghost'); SELECT * FROM no_such_table",
        ],
    )
    .await;
    assert_ne!(
        out.code, 0,
        "a failing statement must fail psql: {}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("relation \"no_such_table\" does not exist"),
        "{}",
        out.stderr
    );
    let out = psql(
        &gh,
        "alice",
        &token,
        &["-c", "SELECT count(*) FROM pets WHERE id = 9999"],
    )
    .await;
    assert_eq!((out.code, out.stdout.trim()), (0, "0"), "{}", out.stderr);

    // A wrong token: libpq's usual message and exit status 2 (connection failure).
    let out = psql(&gh, "alice", "not-the-token", &["-c", "SELECT 1"]).await;
    assert_eq!(out.code, 2, "{} {}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("password authentication failed for user \"alice\""),
        "{}",
        out.stderr
    );
}

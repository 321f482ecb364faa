//! tokio-postgres through the proxy: both query protocols, pipelining, COPY both ways, cancel,
//! transactions that fail, notices and LISTEN/NOTIFY.

use crate::harness::{connect_with_messages, db_error, Gatehouse, WAIT};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio_postgres::{AsyncMessage, NoTls, SimpleQueryMessage};

fn simple_rows(msgs: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
            }
            _ => None,
        })
        .collect()
}

fn command_counts(msgs: &[SimpleQueryMessage]) -> Vec<u64> {
    msgs.iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn simple_query_protocol_with_multi_statement_strings() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;

    c.batch_execute(
        "CREATE TABLE kv (k int PRIMARY KEY, v text); \
         INSERT INTO kv VALUES (1, 'one'), (2, 'two'); \
         INSERT INTO kv VALUES (3, NULL); \
         UPDATE kv SET v = upper(v) WHERE k = 2",
    )
    .await
    .unwrap();

    let msgs = c
        .simple_query(
            "SELECT k, v FROM kv ORDER BY k; SELECT count(*) FROM kv; DELETE FROM kv WHERE k = 3",
        )
        .await
        .unwrap();
    assert_eq!(
        simple_rows(&msgs),
        vec![
            vec![Some("1".into()), Some("one".into())],
            vec![Some("2".into()), Some("TWO".into())],
            vec![Some("3".into()), None],
            vec![Some("3".into())],
        ]
    );
    assert_eq!(command_counts(&msgs), vec![3, 1, 1]);

    // An empty query string and a string of only a comment are answered, not hung.
    c.batch_execute("").await.unwrap();
    c.batch_execute("-- nothing").await.unwrap();
    let n: i64 = c
        .query_one("SELECT count(*) FROM kv", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test]
async fn extended_protocol_with_typed_parameters() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute(
        "CREATE TABLE t (i int4, b int8, s text, n int4, blob bytea, f float8, ok bool)",
    )
    .await
    .unwrap();

    let blob: Vec<u8> = (0u8..=255).chain([0, 0, 255]).collect();
    let insert = c
        .prepare("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .await
        .unwrap();
    // The same prepared statement bound twice (named statement, reused).
    let n = c
        .execute(
            &insert,
            &[
                &42i32,
                &(1i64 << 40),
                &"héllo 'quoted' \\ text",
                &None::<i32>,
                &blob,
                &2.5f64,
                &true,
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = c
        .execute(
            &insert,
            &[
                &7i32,
                &-1i64,
                &"",
                &Some(5i32),
                &Vec::<u8>::new(),
                &-0.125f64,
                &false,
            ],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);

    let row = c
        .query_one(
            "SELECT i, b, s, n, blob, f, ok FROM t WHERE i = $1",
            &[&42i32],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    assert_eq!(row.get::<_, i64>(1), 1i64 << 40);
    assert_eq!(row.get::<_, &str>(2), "héllo 'quoted' \\ text");
    assert_eq!(row.get::<_, Option<i32>>(3), None);
    assert_eq!(row.get::<_, Vec<u8>>(4), blob);
    assert_eq!(row.get::<_, f64>(5), 2.5);
    assert!(row.get::<_, bool>(6));

    // A parameter compared server-side, text and NULL in the same statement.
    let rows = c
        .query(
            "SELECT i FROM t WHERE s = $1 OR n IS NOT DISTINCT FROM $2 ORDER BY i",
            &[&"", &Some(5i32)],
        )
        .await
        .unwrap();
    let is: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(is, vec![7]);

    // Unnamed statements (query_typed uses the unnamed statement and portal).
    let rows = c
        .query_typed(
            "SELECT $1::text || '!', length($2::bytea)",
            &[
                (&"hi", tokio_postgres::types::Type::TEXT),
                (&vec![1u8, 2, 3], tokio_postgres::types::Type::BYTEA),
            ],
        )
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, &str>(0), "hi!");
    assert_eq!(rows[0].get::<_, i32>(1), 3);
}

#[tokio::test]
async fn pipelined_queries_on_one_connection() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    let stmt = c
        .prepare("SELECT $1::int4 * 2, repeat('x', $1::int4)")
        .await
        .unwrap();

    // All futures are polled together, so tokio-postgres writes every Parse/Bind/Execute/Sync
    // before reading any response: a deep pipeline through the proxy.
    let futures = (0..50i32).map(|i| {
        let c = &c;
        let stmt = &stmt;
        async move {
            if i % 5 == 0 {
                // Mix in unprepared statements and one that fails in the middle.
                if i == 25 {
                    return c
                        .query("SELECT 1 / $1::int4", &[&0i32])
                        .await
                        .map(|_| (i, -1));
                }
                let r = c.query_one("SELECT $1::int4 + 1000", &[&i]).await?;
                return Ok((i, r.get::<_, i32>(0)));
            }
            let r = c.query_one(stmt, &[&i]).await?;
            assert_eq!(r.get::<_, &str>(1).len(), i as usize);
            Ok::<_, tokio_postgres::Error>((i, r.get::<_, i32>(0)))
        }
    });
    let results = futures_util::future::join_all(futures).await;
    for (i, r) in (0..50i32).zip(results) {
        if i == 25 {
            let e = r.expect_err("division by zero must fail");
            assert_eq!(db_error(&e).0, "22012");
            continue;
        }
        let (got_i, v) = r.unwrap();
        assert_eq!(got_i, i);
        let expected = if i % 5 == 0 { i + 1000 } else { i * 2 };
        assert_eq!(v, expected, "response {i} out of order");
    }
    // The connection is still in sync afterwards.
    let r = c.query_one("SELECT 'after'", &[]).await.unwrap();
    assert_eq!(r.get::<_, &str>(0), "after");
}

#[tokio::test]
async fn copy_in_and_copy_out() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute("CREATE TABLE items (id int, name text)")
        .await
        .unwrap();

    const N: usize = 5000;
    let sink = c
        .copy_in::<_, Bytes>("COPY items (id, name) FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    // Several CopyData messages, rows split across message boundaries.
    let mut text = String::new();
    for i in 0..N {
        text.push_str(&format!("{i}\titem-{i}\n"));
    }
    for chunk in text.as_bytes().chunks(4093) {
        sink.send(Bytes::copy_from_slice(chunk)).await.unwrap();
    }
    let copied = sink.finish().await.unwrap();
    assert_eq!(copied, N as u64);

    let stream = c
        .copy_out("COPY (SELECT id, name FROM items ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    futures_util::pin_mut!(stream);
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(String::from_utf8(out).unwrap(), text);

    // A COPY that fails in the middle (bad data) leaves the table unchanged and the
    // connection usable.
    let sink = c
        .copy_in::<_, Bytes>("COPY items FROM STDIN")
        .await
        .unwrap();
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"1\tok\nnot-a-number\tbad\n"))
        .await
        .unwrap();
    let e = sink.finish().await.expect_err("bad COPY data must fail");
    assert_eq!(db_error(&e).0, "22P02");
    let n: i64 = c
        .query_one("SELECT count(*) FROM items", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, N as i64);
}

#[tokio::test]
async fn cancel_request_reaches_the_upstream() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    let cancel = c.cancel_token();

    let started = Instant::now();
    let sleeper = async { c.simple_query("SELECT pg_sleep(30)").await };
    let canceller = async {
        // Give the query time to start upstream, then cancel it through the proxy.
        tokio::time::sleep(Duration::from_millis(500)).await;
        cancel.cancel_query(NoTls).await
    };
    let (result, cancelled) =
        tokio::time::timeout(WAIT, async { tokio::join!(sleeper, canceller) })
            .await
            .expect("cancel did not end the query in time");
    cancelled.unwrap();
    let e = result.expect_err("the query must be cancelled");
    assert_eq!(db_error(&e).0, "57014", "{e:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    // The same connection works afterwards, and a bogus cancel key cancels nothing.
    let r = c.query_one("SELECT 1::int4", &[]).await.unwrap();
    assert_eq!(r.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn transactions_with_errors() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let c = gh.connect("alice", &token).await;
    c.batch_execute("CREATE TABLE acct (id int PRIMARY KEY, balance int)")
        .await
        .unwrap();
    c.batch_execute("INSERT INTO acct VALUES (1, 100)")
        .await
        .unwrap();

    // Simple protocol: the failing statement aborts the transaction.
    c.batch_execute("BEGIN").await.unwrap();
    c.batch_execute("UPDATE acct SET balance = 0 WHERE id = 1")
        .await
        .unwrap();
    let e = c
        .batch_execute("INSERT INTO acct VALUES (1, 5)")
        .await
        .unwrap_err();
    assert_eq!(db_error(&e).0, "23505");
    let e = c.batch_execute("SELECT 1").await.unwrap_err();
    assert_eq!(db_error(&e).0, "25P02");
    // Extended protocol in the aborted transaction is refused the same way.
    let e = c.query("SELECT $1::int", &[&1i32]).await.unwrap_err();
    assert_eq!(db_error(&e).0, "25P02");
    c.batch_execute("ROLLBACK").await.unwrap();
    let b: i32 = c
        .query_one("SELECT balance FROM acct WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, 100, "the rolled-back update must not be visible");

    // The same through the extended protocol with tokio-postgres' transaction API.
    let mut c = c;
    {
        let tx = c.transaction().await.unwrap();
        tx.execute(
            "UPDATE acct SET balance = balance - $1 WHERE id = 1",
            &[&30i32],
        )
        .await
        .unwrap();
        let e = tx.query("SELECT 1 / $1::int", &[&0i32]).await.unwrap_err();
        assert_eq!(db_error(&e).0, "22012");
        let e = tx.query("SELECT 1", &[]).await.unwrap_err();
        assert_eq!(db_error(&e).0, "25P02");
        tx.rollback().await.unwrap();
    }
    // A failing statement inside a multi-statement string rolls the implicit transaction back.
    let e = c
        .batch_execute("UPDATE acct SET balance = 1 WHERE id = 1; SELECT 1/0; UPDATE acct SET balance = 2 WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(db_error(&e).0, "22012");
    let b: i32 = c
        .query_one("SELECT balance FROM acct WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, 100);

    // A committed transaction is visible.
    let tx = c.transaction().await.unwrap();
    tx.execute("UPDATE acct SET balance = 70 WHERE id = 1", &[])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let b: i32 = c
        .query_one("SELECT balance FROM acct WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(b, 70);
}

#[tokio::test]
async fn notices_reach_the_client() {
    let gh = Gatehouse::start().await;
    let token = gh.issue("alice", "human", &[]).await;
    let (c, mut rx) = connect_with_messages(gh.pg_config("alice", &token)).await;
    c.batch_execute("DO $$ BEGIN RAISE NOTICE 'hello from %', 'plpgsql'; END $$")
        .await
        .unwrap();
    // Notices of a statement arrive before its ReadyForQuery, so one is already queued.
    let msg = tokio::time::timeout(WAIT, rx.recv())
        .await
        .expect("no notice arrived")
        .expect("connection closed");
    match msg {
        AsyncMessage::Notice(n) => {
            assert_eq!(n.message(), "hello from plpgsql");
            assert_eq!(n.code().code(), "00000");
        }
        other => panic!("expected a notice, got {other:?}"),
    }
    // A warning raised by a function called through the extended protocol.
    c.batch_execute(
        "CREATE FUNCTION shout(t text) RETURNS int LANGUAGE plpgsql \
         AS $$ BEGIN RAISE WARNING '%', t; RETURN 1; END $$",
    )
    .await
    .unwrap();
    let r = c
        .query_one("SELECT shout($1)", &[&"careful"])
        .await
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 1);
    let msg = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    let AsyncMessage::Notice(n) = msg else {
        panic!("expected a warning")
    };
    assert_eq!((n.severity(), n.message()), ("WARNING", "careful"));
}

#[tokio::test]
async fn listen_notify_between_two_proxied_sessions() {
    let gh = Gatehouse::start().await;
    let alice = gh.issue("alice", "human", &[]).await;
    let bob = gh.issue("bob", "human", &[]).await;
    let (listener, mut rx) = connect_with_messages(gh.pg_config("alice", &alice)).await;
    let notifier = gh.connect("bob", &bob).await;

    listener.batch_execute("LISTEN jobs").await.unwrap();
    // NotificationResponse names the sending backend by the PID its client was told.
    let notifier_pid: i32 = notifier
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    notifier
        .batch_execute("NOTIFY jobs, 'first'")
        .await
        .unwrap();
    notifier
        .query("SELECT pg_notify('jobs', $1)", &[&"second"])
        .await
        .unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        // The listener is idle: notifications must be pushed to it by the proxy unprompted.
        let m = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("notification not delivered")
            .expect("listener connection closed");
        if let AsyncMessage::Notification(n) = m {
            assert_eq!(n.channel(), "jobs");
            assert_eq!(n.process_id(), notifier_pid);
            got.push(n.payload().to_owned());
        }
    }
    assert_eq!(got, vec!["first", "second"]);
}

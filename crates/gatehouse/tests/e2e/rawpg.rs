//! A raw PostgreSQL v3 client for the session-integrity suite: a real login (SCRAM-SHA-256
//! through `raw::login`, or directly to the upstream with its password), then hand-built
//! frontend messages sent exactly as given, and every backend byte read back until the
//! expected number of ReadyForQuery (or a timeout, or the connection closing), so a test can
//! search the bytes for values that must never arrive.
//!
//! Also a byte tap ([`Tap`]): a TCP relay in front of the proxy that records everything the
//! proxy sends, so tests driving real clients (tokio-postgres, psql) can check every byte too.

use crate::raw::{self, Msg};
use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a raw exchange may wait for its ReadyForQuery before giving up.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// One logged-in raw session.
pub struct RawPg {
    s: TcpStream,
    buf: BytesMut,
}

/// Everything received for one exchange.
#[derive(Debug, Default)]
pub struct Reply {
    pub msgs: Vec<Msg>,
    /// The backend bytes exactly as framed on the wire (tag, length, body).
    pub bytes: Vec<u8>,
    /// The connection closed before the exchange completed.
    pub closed: bool,
    /// No (or not enough) ReadyForQuery within [`REPLY_WAIT`].
    pub timed_out: bool,
}

impl Reply {
    /// The first ErrorResponse.
    pub fn error(&self) -> Option<&Msg> {
        self.msgs.iter().find(|m| m.tag == b'E')
    }

    /// SQLSTATE of the first ErrorResponse.
    pub fn sqlstate(&self) -> Option<String> {
        self.error().and_then(|m| m.field(b'C'))
    }

    /// The cells of every DataRow (text format assumed; NULL as `None`).
    pub fn rows(&self) -> Vec<Vec<Option<String>>> {
        self.msgs
            .iter()
            .filter(|m| m.tag == b'D')
            .map(|m| data_row(&m.body))
            .collect()
    }

    /// Every non-NULL cell of every DataRow, flattened.
    pub fn cells(&self) -> Vec<String> {
        self.rows().into_iter().flatten().flatten().collect()
    }

    /// The tags of the messages received, as characters (for failure messages).
    pub fn tags(&self) -> String {
        self.msgs.iter().map(|m| m.tag as char).collect()
    }

    /// The exchange completed (all ReadyForQuery arrived, connection still open).
    pub fn complete(&self) -> bool {
        !self.closed && !self.timed_out
    }

    /// A short description for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "tags={:?} closed={} timed_out={} error={:?} cells={:?}",
            self.tags(),
            self.closed,
            self.timed_out,
            self.error().map(|e| (e.field(b'C'), e.field(b'M'))),
            self.cells()
        )
    }
}

fn data_row(body: &[u8]) -> Vec<Option<String>> {
    let mut out = Vec::new();
    if body.len() < 2 {
        return out;
    }
    let n = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    for _ in 0..n {
        if at + 4 > body.len() {
            break;
        }
        let len = i32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
        at += 4;
        if len < 0 {
            out.push(None);
            continue;
        }
        let end = (at + len as usize).min(body.len());
        out.push(Some(String::from_utf8_lossy(&body[at..end]).into_owned()));
        at = end;
    }
    out
}

fn frame(m: &Msg) -> Vec<u8> {
    let mut b = Vec::with_capacity(m.body.len() + 5);
    b.push(m.tag);
    b.extend_from_slice(&(m.body.len() as u32 + 4).to_be_bytes());
    b.extend_from_slice(&m.body);
    b
}

impl RawPg {
    /// Logs in to the proxy at `port` as `user` with a Gatehouse token (database `app`).
    pub async fn login(port: u16, user: &str, token: &str) -> RawPg {
        let (s, buf) = raw::login(port, user, token).await;
        RawPg { s, buf }
    }

    /// A session logged in some other way (see `raw::login_with`).
    pub fn from_login(s: TcpStream, buf: BytesMut) -> RawPg {
        RawPg { s, buf }
    }

    /// Logs in directly to a PostgreSQL server (SCRAM or trust), bypassing the proxy.
    pub async fn login_direct(
        host: &str,
        port: u16,
        user: &str,
        password: &str,
        db: &str,
    ) -> RawPg {
        let mut s = TcpStream::connect((host, port))
            .await
            .unwrap_or_else(|e| panic!("connect to {host}:{port}: {e}"));
        let mut buf = BytesMut::new();
        s.write_all(&raw::startup(&[("user", user), ("database", db)]))
            .await
            .unwrap();
        let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
        loop {
            let m = raw::read_msg(&mut s, &mut buf)
                .await
                .expect("closed during direct login");
            match m.tag {
                b'R' => {
                    let code = u32::from_be_bytes([m.body[0], m.body[1], m.body[2], m.body[3]]);
                    let data = &m.body[4..];
                    let mut out = BytesMut::new();
                    match code {
                        0 => {}
                        10 => frontend::sasl_initial_response(
                            "SCRAM-SHA-256",
                            scram.message(),
                            &mut out,
                        )
                        .unwrap(),
                        11 => {
                            scram.update(data).unwrap();
                            frontend::sasl_response(scram.message(), &mut out).unwrap();
                        }
                        12 => scram.finish(data).unwrap(),
                        other => panic!("unexpected authentication request {other}"),
                    }
                    if !out.is_empty() {
                        s.write_all(&out).await.unwrap();
                    }
                }
                b'E' => panic!("direct login refused: {:?}", m.field(b'M')),
                b'Z' => return RawPg { s, buf },
                _ => {}
            }
        }
    }

    /// Writes `frames` in one go.
    pub async fn send(&mut self, frames: &[BytesMut]) {
        let mut all = BytesMut::new();
        for f in frames {
            all.extend_from_slice(f);
        }
        // A proxy that ends the session may close before reading everything.
        let _ = self.s.write_all(&all).await;
        let _ = self.s.flush().await;
    }

    /// Reads until `n` ReadyForQuery messages arrived (or the connection closed, or
    /// [`REPLY_WAIT`] passed).
    pub async fn read_ready(&mut self, n: usize) -> Reply {
        let mut seen = 0;
        self.read_while(|m| {
            if m.tag == b'Z' {
                seen += 1;
            }
            seen < n
        })
        .await
    }

    /// Reads until a message of `tag` arrived (it is included).
    pub async fn read_until_tag(&mut self, tag: u8) -> Reply {
        self.read_while(|m| m.tag != tag).await
    }

    /// Reads messages while `more(msg)` says so (the message that stops it is included).
    async fn read_while(&mut self, mut more: impl FnMut(&Msg) -> bool) -> Reply {
        let mut reply = Reply::default();
        let s = &mut self.s;
        let buf = &mut self.buf;
        let r = tokio::time::timeout(REPLY_WAIT, async {
            loop {
                match raw::read_msg(s, buf).await {
                    None => {
                        reply.closed = true;
                        return;
                    }
                    Some(m) => {
                        reply.bytes.extend_from_slice(&frame(&m));
                        let go_on = more(&m);
                        reply.msgs.push(m);
                        if !go_on {
                            return;
                        }
                    }
                }
            }
        })
        .await;
        if r.is_err() {
            reply.timed_out = true;
        }
        reply
    }

    /// Reads whatever arrives within `wait` (for checking that nothing more was sent).
    pub async fn drain(&mut self, wait: Duration) -> Reply {
        let mut reply = Reply::default();
        let s = &mut self.s;
        let buf = &mut self.buf;
        let _ = tokio::time::timeout(wait, async {
            while let Some(m) = raw::read_msg(s, buf).await {
                reply.bytes.extend_from_slice(&frame(&m));
                reply.msgs.push(m);
            }
            reply.closed = true;
        })
        .await;
        reply
    }

    /// One simple Query, read up to its ReadyForQuery.
    pub async fn simple(&mut self, sql: &str) -> Reply {
        self.send(&[query(sql)]).await;
        self.read_ready(1).await
    }

    /// Closes the socket without a Terminate (a client that vanished).
    pub fn vanish(self) {
        drop(self.s);
    }
}

/// Query (simple protocol).
pub fn query(sql: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::query(sql, &mut b).unwrap();
    b
}

/// Parse of `sql` as statement `name` (parameter types left to the server).
pub fn parse(name: &str, sql: &str) -> BytesMut {
    let mut b = BytesMut::new();
    frontend::parse(name, sql, std::iter::empty(), &mut b).unwrap();
    b
}

/// Bind of `statement` to `portal` with text-format parameters and the given result
/// format codes (empty = all text; one code = for all columns).
pub fn bind(
    portal: &str,
    statement: &str,
    params: &[Option<&str>],
    result_formats: &[i16],
) -> BytesMut {
    let mut body = BytesMut::new();
    put_cstr(&mut body, portal);
    put_cstr(&mut body, statement);
    body.put_i16(0); // all parameters in text format
    body.put_i16(params.len() as i16);
    for p in params {
        match p {
            None => body.put_i32(-1),
            Some(v) => {
                body.put_i32(v.len() as i32);
                body.put_slice(v.as_bytes());
            }
        }
    }
    body.put_i16(result_formats.len() as i16);
    for f in result_formats {
        body.put_i16(*f);
    }
    raw::message(b'B', &body)
}

/// Describe of a statement (`b'S'`) or portal (`b'P'`).
pub fn describe(kind: u8, name: &str) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u8(kind);
    put_cstr(&mut body, name);
    raw::message(b'D', &body)
}

/// Execute of `portal` (0 = all rows).
pub fn execute(portal: &str, max_rows: i32) -> BytesMut {
    let mut body = BytesMut::new();
    put_cstr(&mut body, portal);
    body.put_i32(max_rows);
    raw::message(b'E', &body)
}

/// Close of a statement (`b'S'`) or portal (`b'P'`).
pub fn close(kind: u8, name: &str) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_u8(kind);
    put_cstr(&mut body, name);
    raw::message(b'C', &body)
}

pub fn sync() -> BytesMut {
    raw::message(b'S', &[])
}

pub fn flush() -> BytesMut {
    raw::message(b'H', &[])
}

pub fn copy_data(data: &[u8]) -> BytesMut {
    raw::message(b'd', data)
}

pub fn copy_done() -> BytesMut {
    raw::message(b'c', &[])
}

pub fn copy_fail(why: &str) -> BytesMut {
    let mut body = BytesMut::new();
    put_cstr(&mut body, why);
    raw::message(b'f', &body)
}

fn put_cstr(b: &mut BytesMut, s: &str) {
    b.put_slice(s.as_bytes());
    b.put_u8(0);
}

/// A TCP relay in front of a port that records every byte sent back to its clients.
pub struct Tap {
    pub port: u16,
    seen: Arc<Mutex<Vec<u8>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    /// Starts relaying `127.0.0.1:<free port>` → `127.0.0.1:target`.
    pub async fn start(target: u16) -> Tap {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let rec = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let rec = rec.clone();
                tokio::spawn(relay(client, server, rec));
            }
        });
        Tap { port, seen, task }
    }

    /// Every byte the relayed server has sent to any client so far.
    pub fn received(&self) -> Vec<u8> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(client: TcpStream, server: TcpStream, rec: Arc<Mutex<Vec<u8>>>) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async move {
        let _ = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut b = vec![0u8; 64 * 1024];
        loop {
            let n = match sr.read(&mut b).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            // Recorded before the client can see it, so a test that checks after its
            // client returned sees everything that client saw.
            rec.lock().unwrap().extend_from_slice(&b[..n]);
            if cw.write_all(&b[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}

//! A minimal hand-driven PostgreSQL client over a raw TCP socket, for sending what no real
//! client would: startup packets and messages with hostile lengths, garbage, truncated data.
//! Logging in is real (SCRAM-SHA-256 with a Gatehouse token, via `postgres-protocol`).

use bytes::{Buf, BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::frontend;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One backend message: its tag and body.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// Field `code` of an ErrorResponse/NoticeResponse (`b'C'` SQLSTATE, `b'M'` message, …).
    pub fn field(&self, code: u8) -> Option<String> {
        let mut rest = &self.body[..];
        while let Some((&c, tail)) = rest.split_first() {
            if c == 0 {
                return None;
            }
            let end = tail.iter().position(|b| *b == 0)?;
            if c == code {
                return Some(String::from_utf8_lossy(&tail[..end]).into_owned());
            }
            rest = &tail[end + 1..];
        }
        None
    }
}

pub async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect to the proxy: {e}"))
}

/// A StartupMessage with `params`.
pub fn startup(params: &[(&str, &str)]) -> BytesMut {
    let mut buf = BytesMut::new();
    frontend::startup_message(params.iter().copied(), &mut buf).unwrap();
    buf
}

/// Reads one backend message, buffering in `buf`; `None` at EOF (or a reset connection).
pub async fn read_msg(s: &mut TcpStream, buf: &mut BytesMut) -> Option<Msg> {
    loop {
        if buf.len() >= 5 {
            let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
            assert!(
                (4..1 << 24).contains(&len),
                "implausible backend length {len}"
            );
            if buf.len() > len {
                let tag = buf[0];
                buf.advance(5);
                let body = buf.split_to(len - 4).to_vec();
                return Some(Msg { tag, body });
            }
        }
        match s.read_buf(buf).await {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
    }
}

/// Reads until the proxy closes the connection; returns every message it sent first.
/// Panics if the connection stays open past `timeout`.
pub async fn read_until_closed(
    s: &mut TcpStream,
    buf: &mut BytesMut,
    timeout: Duration,
) -> Vec<Msg> {
    let mut msgs = Vec::new();
    let r = tokio::time::timeout(timeout, async {
        while let Some(m) = read_msg(s, buf).await {
            msgs.push(m);
        }
    })
    .await;
    assert!(
        r.is_ok(),
        "the proxy kept the connection open; got {msgs:?}"
    );
    msgs
}

/// Logs in with SCRAM-SHA-256 and reads up to the first ReadyForQuery.
pub async fn login(port: u16, user: &str, token: &str) -> (TcpStream, BytesMut) {
    let (s, buf, _) =
        login_with(port, startup(&[("user", user), ("database", "app")]), token).await;
    (s, buf)
}

/// Sends `startup` as given, logs in with SCRAM-SHA-256 and reads up to the first
/// ReadyForQuery; returns the other messages the proxy sent meanwhile (ParameterStatus,
/// BackendKeyData, NegotiateProtocolVersion, notices), in order.
pub async fn login_with(
    port: u16,
    startup: BytesMut,
    token: &str,
) -> (TcpStream, BytesMut, Vec<Msg>) {
    let mut s = connect(port).await;
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    s.write_all(&startup).await.unwrap();
    let mut scram = ScramSha256::new(token.as_bytes(), ChannelBinding::unsupported());
    loop {
        let m = read_msg(&mut s, &mut buf)
            .await
            .expect("closed during login");
        match m.tag {
            b'R' => {
                let code = u32::from_be_bytes([m.body[0], m.body[1], m.body[2], m.body[3]]);
                let data = &m.body[4..];
                let mut out = BytesMut::new();
                match code {
                    0 => {}
                    10 => {
                        frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut out)
                            .unwrap();
                    }
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
            b'E' => panic!("login refused: {:?}", m.field(b'M')),
            b'Z' => return (s, buf, seen),
            _ => seen.push(m),
        }
    }
}

/// A frontend message with an explicit tag and body (length computed).
pub fn message(tag: u8, body: &[u8]) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_u8(tag);
    b.put_u32(body.len() as u32 + 4);
    b.put_slice(body);
    b
}

/// A deterministic pseudo-random byte source (xorshift), so failures are reproducible.
pub struct Prng(u64);

impl Prng {
    pub fn new(seed: u64) -> Self {
        Prng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

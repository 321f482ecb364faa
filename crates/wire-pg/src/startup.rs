//! The untagged packets a client may send first: StartupMessage, SSLRequest, GSSENCRequest
//! and CancelRequest. They share one framing (Int32 length, Int32 code, body) and are told
//! apart by the code (protocol docs, "Message Formats").

use crate::buf::Reader;
use crate::WireError;
use bytes::BytesMut;

/// Protocol 3.0, the only version Gatehouse speaks (`196608`). A client asking for a newer
/// minor version of 3 (libpq 18 asks for 3.2) is answered with NegotiateProtocolVersion, as
/// PostgreSQL itself does ("Protocol versioning" in the protocol docs).
pub const PROTOCOL_V3: i32 = 196_608;
/// Prefix of protocol options in the startup packet (`_pq_.name`), negotiated rather than set.
pub const PROTOCOL_OPTION_PREFIX: &str = "_pq_.";
/// `80877103`: SSLRequest.
pub const SSL_REQUEST: i32 = 80_877_103;
/// `80877104`: GSSENCRequest.
pub const GSSENC_REQUEST: i32 = 80_877_104;
/// `80877102`: CancelRequest.
pub const CANCEL_REQUEST: i32 = 80_877_102;
/// PostgreSQL itself refuses startup packets over 10000 bytes (`MAX_STARTUP_PACKET_LENGTH`).
pub const MAX_STARTUP_LEN: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartupPacket {
    SslRequest,
    GssEncRequest,
    Cancel {
        process_id: i32,
        secret_key: i32,
    },
    Startup {
        /// The minor protocol version asked for (major is always 3).
        minor: u16,
        params: Vec<(String, String)>,
    },
}

impl StartupPacket {
    /// The value of a startup parameter (`user`, `database`, `application_name`, …).
    pub fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Decodes one startup-phase packet from the front of `buf`.
pub fn decode_startup(buf: &mut BytesMut) -> Result<Option<StartupPacket>, WireError> {
    let Some(head) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let len = usize::try_from(len).unwrap_or(0);
    if !(8..=MAX_STARTUP_LEN).contains(&len) {
        return Err(WireError::Length {
            len,
            max: MAX_STARTUP_LEN,
        });
    }
    if buf.len() < len {
        return Ok(None);
    }
    let packet = buf.split_to(len);
    let mut r = Reader::new(packet.get(4..).unwrap_or_default(), "startup");
    let code = r.i32()?;
    match code {
        SSL_REQUEST => {
            r.finish()?;
            Ok(Some(StartupPacket::SslRequest))
        }
        GSSENC_REQUEST => {
            r.finish()?;
            Ok(Some(StartupPacket::GssEncRequest))
        }
        CANCEL_REQUEST => {
            let process_id = r.i32()?;
            let secret_key = r.i32()?;
            r.finish()?;
            Ok(Some(StartupPacket::Cancel {
                process_id,
                secret_key,
            }))
        }
        v if v >> 16 == 3 => Ok(Some(StartupPacket::Startup {
            minor: (v & 0xffff) as u16,
            params: startup_params(&mut r)?,
        })),
        other => {
            let major = (other >> 16) as u16;
            let minor = (other & 0xffff) as u16;
            Err(WireError::Version(major, minor))
        }
    }
}

/// Name/value pairs terminated by an empty name.
fn startup_params(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, WireError> {
    let mut params = Vec::new();
    loop {
        let name = r.cstr()?;
        if name.is_empty() {
            r.finish()?;
            return Ok(params);
        }
        let value = r.cstr()?;
        params.push((name.to_owned(), value.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode;

    #[test]
    fn startup_roundtrip() {
        let mut out = BytesMut::new();
        encode::startup(&mut out, &[("user", "alice"), ("database", "app")]);
        let p = decode_startup(&mut out).unwrap().unwrap();
        let StartupPacket::Startup { params, minor: 0 } = p else {
            panic!("not a startup")
        };
        assert_eq!(StartupPacket::param(&params, "user"), Some("alice"));
        assert_eq!(StartupPacket::param(&params, "database"), Some("app"));
    }

    #[test]
    fn ssl_and_cancel() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f][..]);
        assert_eq!(decode_startup(&mut b), Ok(Some(StartupPacket::SslRequest)));
        let mut b = BytesMut::new();
        encode::cancel_request(&mut b, 7, 9);
        assert_eq!(
            decode_startup(&mut b),
            Ok(Some(StartupPacket::Cancel {
                process_id: 7,
                secret_key: 9
            }))
        );
    }

    #[test]
    fn newer_minor_versions_are_startups() {
        // Protocol 3.2 (libpq 18) with a protocol option.
        let mut b = BytesMut::new();
        let body = b"user\0alice\0_pq_.x\0y\0\0";
        b.extend_from_slice(&((8 + body.len()) as i32).to_be_bytes());
        b.extend_from_slice(&(3i32 << 16 | 2).to_be_bytes());
        b.extend_from_slice(body);
        let Some(StartupPacket::Startup { minor, params }) = decode_startup(&mut b).unwrap() else {
            panic!("not a startup")
        };
        assert_eq!(minor, 2);
        assert_eq!(StartupPacket::param(&params, "_pq_.x"), Some("y"));
        // Protocol 2 is refused.
        let mut b = BytesMut::from(&b"\0\0\0\x0d\0\x02\0\0user\0"[..]);
        assert_eq!(decode_startup(&mut b), Err(WireError::Version(2, 0)));
    }

    #[test]
    fn rejects_garbage() {
        let mut b = BytesMut::from(&[0u8, 0, 0, 8, 0, 2, 0, 0][..]);
        assert!(decode_startup(&mut b).is_err());
        let mut b = BytesMut::from(&[0x7fu8, 0, 0, 0][..]);
        assert!(decode_startup(&mut b).is_err());
        // Parameters without the terminating empty name.
        let mut b = BytesMut::from(&b"\0\0\0\x0d\0\x03\0\0user\0"[..]);
        assert!(decode_startup(&mut b).is_err());
    }
}

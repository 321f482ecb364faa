//! Framing of regular (tagged) messages: one tag byte, an Int32 length that counts itself,
//! then the body. A `Frame` keeps the raw bytes so a message that needs no inspection is
//! forwarded without re-encoding or copying.

use crate::WireError;
use bytes::{Bytes, BytesMut};

/// One complete protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    raw: Bytes,
}

impl Frame {
    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.raw.first().copied().unwrap_or_default()
    }

    /// Body after the tag and length.
    pub fn body(&self) -> Bytes {
        self.raw.slice(5.min(self.raw.len())..)
    }

    /// The whole message as received (tag, length, body).
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }

    pub fn into_raw(self) -> Bytes {
        self.raw
    }
}

/// Splits one message off the front of `buf`. `Ok(None)`: more bytes are needed. A length
/// below 4 or above `max_len` is an error before anything is buffered for it.
pub fn decode_frame(buf: &mut BytesMut, max_len: usize) -> Result<Option<Frame>, WireError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    let len = usize::try_from(len).unwrap_or(0);
    if len < 4 || len > max_len {
        return Err(WireError::Length { len, max: max_len });
    }
    let total = len + 1;
    if buf.len() < total {
        buf.reserve(total - buf.len());
        return Ok(None);
    }
    Ok(Some(Frame {
        raw: buf.split_to(total).freeze(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_and_waits() {
        let mut b = BytesMut::from(&b"Q\0\0\0\x09SEL"[..]);
        assert_eq!(decode_frame(&mut b, 100), Ok(None));
        b.extend_from_slice(b"T\0Z\0\0\0\x05I");
        let f = decode_frame(&mut b, 100).unwrap().unwrap();
        assert_eq!(f.tag(), b'Q');
        assert_eq!(&f.body()[..], b"SELT\0");
        let f = decode_frame(&mut b, 100).unwrap().unwrap();
        assert_eq!(f.tag(), b'Z');
        assert!(b.is_empty());
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut b = BytesMut::from(&b"Q\0\0\0\x03"[..]);
        assert!(decode_frame(&mut b, 100).is_err());
        let mut b = BytesMut::from(&b"Q\x7f\0\0\0"[..]);
        assert!(decode_frame(&mut b, 100).is_err());
        let mut b = BytesMut::from(&b"Q\xff\xff\xff\xff"[..]);
        assert!(decode_frame(&mut b, 100).is_err());
    }
}

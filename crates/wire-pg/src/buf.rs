//! A bounds-checked reader over a message body: every read returns an error instead of
//! panicking when the body is shorter than the protocol says.

use crate::encoding::Encoding;
use crate::WireError;
use bytes::Bytes;

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, what }
    }

    fn err(&self) -> WireError {
        WireError::malformed(self.what)
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        if n > self.buf.len() {
            return Err(self.err());
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    pub(crate) fn i16(&mut self) -> Result<i16, WireError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, WireError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A count that must be non-negative and small enough that `count * min_item` bytes fit
    /// in what is left: the bound that keeps a lying count from driving a huge allocation.
    pub(crate) fn count16(&mut self, min_item: usize) -> Result<usize, WireError> {
        let n = self.i16()?;
        let n = usize::try_from(n).map_err(|_| self.err())?;
        if n.saturating_mul(min_item) > self.buf.len() {
            return Err(self.err());
        }
        Ok(n)
    }

    /// A NUL-terminated string.
    pub(crate) fn cstr(&mut self) -> Result<&'a str, WireError> {
        let pos = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err())?;
        let s = self.take(pos)?;
        self.take(1)?;
        std::str::from_utf8(s).map_err(|_| WireError::Utf8 { what: self.what })
    }

    /// A NUL-terminated string, as bytes.
    pub(crate) fn cstr_bytes(&mut self) -> Result<&'a [u8], WireError> {
        let pos = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.err())?;
        let s = self.take(pos)?;
        self.take(1)?;
        Ok(s)
    }

    /// A NUL-terminated string in the client encoding, decoded exactly (see `encoding`).
    pub(crate) fn text(&mut self, enc: Encoding) -> Result<String, WireError> {
        let what = self.what;
        let b = self.cstr_bytes()?;
        enc.decode(b)
            .map(std::borrow::Cow::into_owned)
            .map_err(|_| WireError::Encoding {
                what,
                encoding: enc.name(),
            })
    }

    /// A NUL-terminated string the server sent in the client encoding; what cannot be
    /// decoded becomes U+FFFD (server texts are shown and audited, never analysed).
    pub(crate) fn text_lossy(&mut self, enc: Encoding) -> Result<String, WireError> {
        Ok(enc.decode_lossy(self.cstr_bytes()?).into_owned())
    }

    /// A length-prefixed value where -1 means NULL (Bind parameters, DataRow cells).
    pub(crate) fn nullable_bytes(&mut self, owner: &Bytes) -> Result<Option<Bytes>, WireError> {
        let len = self.i32()?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).map_err(|_| self.err())?;
        let slice = self.take(len)?;
        Ok(Some(owner.slice_ref(slice)))
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let r = self.buf;
        self.buf = &[];
        r
    }

    pub(crate) fn finish(&self) -> Result<(), WireError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err())
        }
    }
}

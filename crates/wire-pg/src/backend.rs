//! Typed views of the server→client messages Gatehouse inspects: authentication requests
//! (when it logs in upstream), session status, and the messages that end a statement.

use crate::buf::Reader;
use crate::encoding::Encoding;
use crate::{Frame, WireError};

/// Message type bytes sent by the backend (protocol docs, "Message Formats").
pub mod tag {
    pub const AUTHENTICATION: u8 = b'R';
    pub const PARAMETER_STATUS: u8 = b'S';
    pub const BACKEND_KEY_DATA: u8 = b'K';
    pub const READY_FOR_QUERY: u8 = b'Z';
    pub const COMMAND_COMPLETE: u8 = b'C';
    pub const EMPTY_QUERY: u8 = b'I';
    pub const ERROR_RESPONSE: u8 = b'E';
    pub const NOTICE_RESPONSE: u8 = b'N';
    pub const ROW_DESCRIPTION: u8 = b'T';
    pub const DATA_ROW: u8 = b'D';
    pub const PARSE_COMPLETE: u8 = b'1';
    pub const BIND_COMPLETE: u8 = b'2';
    pub const CLOSE_COMPLETE: u8 = b'3';
    pub const NO_DATA: u8 = b'n';
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    pub const PORTAL_SUSPENDED: u8 = b's';
    pub const COPY_IN: u8 = b'G';
    pub const COPY_OUT: u8 = b'H';
    pub const COPY_BOTH: u8 = b'W';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const NOTIFICATION: u8 = b'A';
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
}

/// Authentication request codes (the Int32 after the `R` header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Ok,
    CleartextPassword,
    Md5Password {
        salt: [u8; 4],
    },
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue(Vec<u8>),
    SaslFinal(Vec<u8>),
    /// Kerberos, GSSAPI, SSPI: not supported upstream.
    Unsupported(i32),
}

impl Authentication {
    pub fn parse(frame: &Frame) -> Result<Self, WireError> {
        let body = frame.body();
        let mut r = Reader::new(&body, "Authentication");
        let code = r.i32()?;
        let auth = match code {
            0 => Authentication::Ok,
            3 => Authentication::CleartextPassword,
            5 => {
                let s = r.take(4)?;
                Authentication::Md5Password {
                    salt: [s[0], s[1], s[2], s[3]],
                }
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let m = r.cstr()?;
                    if m.is_empty() {
                        break;
                    }
                    mechanisms.push(m.to_owned());
                }
                Authentication::Sasl { mechanisms }
            }
            11 => Authentication::SaslContinue(r.rest().to_vec()),
            12 => Authentication::SaslFinal(r.rest().to_vec()),
            other => return Ok(Authentication::Unsupported(other)),
        };
        r.finish()?;
        Ok(auth)
    }
}

/// Transaction status reported by ReadyForQuery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Idle,
    InTransaction,
    Failed,
}

impl TxStatus {
    pub fn as_byte(self) -> u8 {
        match self {
            TxStatus::Idle => b'I',
            TxStatus::InTransaction => b'T',
            TxStatus::Failed => b'E',
        }
    }
}

pub fn ready_for_query(frame: &Frame) -> Result<TxStatus, WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "ReadyForQuery");
    let s = match r.u8()? {
        b'I' => TxStatus::Idle,
        b'T' => TxStatus::InTransaction,
        b'E' => TxStatus::Failed,
        _ => return Err(WireError::malformed("ReadyForQuery")),
    };
    r.finish()?;
    Ok(s)
}

/// ParameterStatus name and value (sent in the client encoding; bytes that do not decode
/// become U+FFFD).
pub fn parameter_status(frame: &Frame) -> Result<(String, String), WireError> {
    parameter_status_in(frame, Encoding::UTF8)
}

pub fn parameter_status_in(frame: &Frame, enc: Encoding) -> Result<(String, String), WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "ParameterStatus");
    let k = r.text_lossy(enc)?;
    let v = r.text_lossy(enc)?;
    r.finish()?;
    Ok((k, v))
}

pub fn backend_key_data(frame: &Frame) -> Result<(i32, i32), WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "BackendKeyData");
    let pid = r.i32()?;
    let key = r.i32()?;
    r.finish()?;
    Ok((pid, key))
}

/// The command tag of CommandComplete (`SELECT 3`, `INSERT 0 1`, …).
pub fn command_complete(frame: &Frame) -> Result<String, WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "CommandComplete");
    let t = r.text_lossy(Encoding::UTF8)?;
    r.finish()?;
    Ok(t)
}

/// Rows affected or returned, read from a command tag: the last number of the tag for the
/// commands that report one (`INSERT oid rows`, `UPDATE rows`, `SELECT rows`, `COPY rows`…).
pub fn rows_from_tag(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let cmd = words.next()?;
    match cmd {
        "INSERT" | "UPDATE" | "DELETE" | "SELECT" | "MERGE" | "MOVE" | "FETCH" | "COPY" => {
            tag.rsplit(' ').next()?.parse().ok()
        }
        _ => None,
    }
}

/// The fields of an ErrorResponse or NoticeResponse that Gatehouse uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// The fields of an error or notice sent in UTF-8.
pub fn error_fields(frame: &Frame) -> Result<ErrorFields, WireError> {
    error_fields_in(frame, Encoding::UTF8)
}

/// The fields of an error or notice sent in client encoding `enc`; bytes that do not decode
/// become U+FFFD, so a server text never ends the session.
pub fn error_fields_in(frame: &Frame, enc: Encoding) -> Result<ErrorFields, WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "ErrorResponse");
    let mut f = ErrorFields::default();
    loop {
        let kind = r.u8()?;
        if kind == 0 {
            break;
        }
        let value = r.text_lossy(enc)?;
        match kind {
            b'V' => f.severity = value,
            b'S' if f.severity.is_empty() => f.severity = value,
            b'C' => f.code = value,
            b'M' => f.message = value,
            _ => {}
        }
    }
    r.finish()?;
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_frame, encode};
    use bytes::BytesMut;

    #[test]
    fn error_roundtrip() {
        let mut b = BytesMut::new();
        encode::error(&mut b, "ERROR", "42501", "gatehouse: no", None, None);
        let f = decode_frame(&mut b, 1000).unwrap().unwrap();
        let e = error_fields(&f).unwrap();
        assert_eq!((e.severity.as_str(), e.code.as_str()), ("ERROR", "42501"));
        assert_eq!(e.message, "gatehouse: no");
    }

    #[test]
    fn rows_in_tags() {
        assert_eq!(rows_from_tag("INSERT 0 5"), Some(5));
        assert_eq!(rows_from_tag("SELECT 12"), Some(12));
        assert_eq!(rows_from_tag("UPDATE 0"), Some(0));
        assert_eq!(rows_from_tag("CREATE TABLE"), None);
        assert_eq!(rows_from_tag("COPY 3"), Some(3));
    }

    #[test]
    fn rows_roundtrip() {
        let mut b = BytesMut::new();
        let field = FieldDesc {
            name: "email".into(),
            table_oid: 16384,
            column_attr: 2,
            type_oid: 25,
            type_len: -1,
            type_mod: -1,
            format: 0,
        };
        encode::row_description(&mut b, std::slice::from_ref(&field));
        encode::data_row(&mut b, [Some(&b"a@b.c"[..]), None].into_iter());
        let f = decode_frame(&mut b, 1000).unwrap().unwrap();
        assert_eq!(row_description(&f).unwrap(), vec![field]);
        let f = decode_frame(&mut b, 1000).unwrap().unwrap();
        let cells = data_row(&f).unwrap();
        assert_eq!(cells, vec![Some(bytes::Bytes::from_static(b"a@b.c")), None]);
    }

    #[test]
    fn auth_requests() {
        let mut b = BytesMut::new();
        encode::auth_sasl(&mut b, &["SCRAM-SHA-256"]);
        let f = decode_frame(&mut b, 1000).unwrap().unwrap();
        assert_eq!(
            Authentication::parse(&f).unwrap(),
            Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256".into()]
            }
        );
    }
}

/// One field of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDesc {
    pub name: String,
    /// OID of the source table, or 0 for an expression.
    pub table_oid: u32,
    pub column_attr: i16,
    pub type_oid: u32,
    pub type_len: i16,
    pub type_mod: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// RowDescription: every field is at least 19 bytes (empty name + 18 bytes of numbers).
pub fn row_description(frame: &Frame) -> Result<Vec<FieldDesc>, WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "RowDescription");
    let n = r.count16(19)?;
    let mut fields = Vec::with_capacity(n);
    for _ in 0..n {
        fields.push(FieldDesc {
            name: r.text_lossy(Encoding::UTF8)?,
            table_oid: r.i32()? as u32,
            column_attr: r.i16()?,
            type_oid: r.i32()? as u32,
            type_len: r.i16()?,
            type_mod: r.i32()?,
            format: r.i16()?,
        });
    }
    r.finish()?;
    Ok(fields)
}

/// DataRow cells (None = NULL), borrowing from the frame.
pub fn data_row(frame: &Frame) -> Result<Vec<Option<bytes::Bytes>>, WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "DataRow");
    let n = r.count16(4)?;
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        cells.push(r.nullable_bytes(&body)?);
    }
    r.finish()?;
    Ok(cells)
}

/// Every field of an ErrorResponse or NoticeResponse, in order (type byte, raw value in the
/// client encoding).
pub fn all_fields(frame: &Frame) -> Result<Vec<(u8, Vec<u8>)>, WireError> {
    let body = frame.body();
    let mut r = Reader::new(&body, "ErrorResponse");
    let mut fields = Vec::new();
    loop {
        let kind = r.u8()?;
        if kind == 0 {
            break;
        }
        fields.push((kind, r.cstr_bytes()?.to_vec()));
    }
    r.finish()?;
    Ok(fields)
}

/// DataRow cells as slices of `body` (the frame's body), without reference counting.
pub fn data_row_slices(body: &[u8]) -> Result<Vec<Option<&[u8]>>, WireError> {
    let mut r = Reader::new(body, "DataRow");
    let n = r.count16(4)?;
    let mut cells = Vec::with_capacity(n);
    for _ in 0..n {
        let len = r.i32()?;
        if len == -1 {
            cells.push(None);
        } else {
            let len = usize::try_from(len).map_err(|_| WireError::malformed("DataRow"))?;
            cells.push(Some(r.take(len)?));
        }
    }
    r.finish()?;
    Ok(cells)
}

//! Typed views of the client→server messages Gatehouse inspects. Anything else (CopyData,
//! FunctionCall, …) stays a raw [`Frame`] and is forwarded as is.

use crate::buf::Reader;
use crate::encoding::Encoding;
use crate::{Frame, WireError};
use bytes::Bytes;

/// Message type bytes sent by the frontend (protocol docs, "Message Formats").
pub mod tag {
    pub const QUERY: u8 = b'Q';
    pub const PARSE: u8 = b'P';
    pub const BIND: u8 = b'B';
    pub const DESCRIBE: u8 = b'D';
    pub const EXECUTE: u8 = b'E';
    pub const CLOSE: u8 = b'C';
    pub const SYNC: u8 = b'S';
    pub const FLUSH: u8 = b'H';
    pub const TERMINATE: u8 = b'X';
    pub const COPY_DATA: u8 = b'd';
    pub const COPY_DONE: u8 = b'c';
    pub const COPY_FAIL: u8 = b'f';
    /// PasswordMessage, SASLInitialResponse and SASLResponse all use `p`.
    pub const PASSWORD: u8 = b'p';
    pub const FUNCTION_CALL: u8 = b'F';
}

/// Which kind of object Describe/Close names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Statement,
    Portal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parse {
    pub name: String,
    pub query: String,
    pub param_types: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bind {
    pub portal: String,
    pub statement: String,
    /// Parameter format codes as sent: none (all text), one (applies to all) or one each.
    pub param_formats: Vec<i16>,
    pub params: Vec<Option<Bytes>>,
    pub result_formats: Vec<i16>,
}

impl Bind {
    /// Whether parameter `i` is sent in binary format.
    pub fn param_is_binary(&self, i: usize) -> bool {
        match self.param_formats.as_slice() {
            [] => false,
            [one] => *one == 1,
            many => many.get(i).is_some_and(|f| *f == 1),
        }
    }
}

/// FunctionCall: Int32 function OID, argument format codes, arguments (Int32 length, -1 for
/// NULL, then the bytes), result format code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub oid: u32,
    pub arg_formats: Vec<i16>,
    pub args: Vec<Option<Bytes>>,
    pub result_format: i16,
}

impl FunctionCall {
    /// Whether argument `i` is sent in binary format (the same rules as Bind).
    pub fn arg_is_binary(&self, i: usize) -> bool {
        match self.arg_formats.as_slice() {
            [] => false,
            [one] => *one == 1,
            many => many.get(i).is_some_and(|f| *f == 1),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    Query(String),
    Parse(Parse),
    Bind(Bind),
    Describe {
        target: Target,
        name: String,
    },
    Execute {
        portal: String,
        max_rows: i32,
    },
    Close {
        target: Target,
        name: String,
    },
    Sync,
    Flush,
    Terminate,
    /// FunctionCall (the "fastpath" interface): a function by OID with its arguments.
    FunctionCall(FunctionCall),
    /// Any other message; the frame is forwarded untouched.
    Other,
}

impl FrontendMessage {
    /// Decodes the messages of the query phase sent in UTF-8.
    pub fn parse(frame: &Frame) -> Result<Self, WireError> {
        Self::parse_in(frame, Encoding::UTF8)
    }

    /// Decodes the messages of the query phase, their texts in client encoding `enc`. Tags
    /// not listed become `Other`.
    pub fn parse_in(frame: &Frame, enc: Encoding) -> Result<Self, WireError> {
        let body = frame.body();
        match frame.tag() {
            tag::QUERY => {
                let mut r = Reader::new(&body, "Query");
                let q = r.text(enc)?;
                r.finish()?;
                Ok(FrontendMessage::Query(q))
            }
            tag::PARSE => parse_parse(&body, enc).map(FrontendMessage::Parse),
            tag::BIND => parse_bind(&body, enc).map(FrontendMessage::Bind),
            tag::DESCRIBE | tag::CLOSE => {
                let mut r = Reader::new(&body, "Describe/Close");
                let target = match r.u8()? {
                    b'S' => Target::Statement,
                    b'P' => Target::Portal,
                    _ => return Err(WireError::malformed("Describe/Close")),
                };
                let name = r.text(enc)?;
                r.finish()?;
                Ok(if frame.tag() == tag::DESCRIBE {
                    FrontendMessage::Describe { target, name }
                } else {
                    FrontendMessage::Close { target, name }
                })
            }
            tag::EXECUTE => {
                let mut r = Reader::new(&body, "Execute");
                let portal = r.text(enc)?;
                let max_rows = r.i32()?;
                r.finish()?;
                Ok(FrontendMessage::Execute { portal, max_rows })
            }
            tag::FUNCTION_CALL => parse_function_call(&body).map(FrontendMessage::FunctionCall),
            tag::SYNC => Ok(FrontendMessage::Sync),
            tag::FLUSH => Ok(FrontendMessage::Flush),
            tag::TERMINATE => Ok(FrontendMessage::Terminate),
            _ => Ok(FrontendMessage::Other),
        }
    }
}

fn parse_parse(body: &[u8], enc: Encoding) -> Result<Parse, WireError> {
    let mut r = Reader::new(body, "Parse");
    let name = r.text(enc)?;
    let query = r.text(enc)?;
    let n = r.count16(4)?;
    let mut param_types = Vec::with_capacity(n);
    for _ in 0..n {
        param_types.push(r.i32()? as u32);
    }
    r.finish()?;
    Ok(Parse {
        name,
        query,
        param_types,
    })
}

fn parse_function_call(body: &Bytes) -> Result<FunctionCall, WireError> {
    let mut r = Reader::new(body, "FunctionCall");
    let oid = r.i32()? as u32;
    let nf = r.count16(2)?;
    let mut arg_formats = Vec::with_capacity(nf);
    for _ in 0..nf {
        arg_formats.push(r.i16()?);
    }
    let na = r.count16(4)?;
    let mut args = Vec::with_capacity(na);
    for _ in 0..na {
        args.push(r.nullable_bytes(body)?);
    }
    let result_format = r.i16()?;
    r.finish()?;
    Ok(FunctionCall {
        oid,
        arg_formats,
        args,
        result_format,
    })
}

fn parse_bind(body: &Bytes, enc: Encoding) -> Result<Bind, WireError> {
    let mut r = Reader::new(body, "Bind");
    let portal = r.text(enc)?;
    let statement = r.text(enc)?;
    let nf = r.count16(2)?;
    let mut param_formats = Vec::with_capacity(nf);
    for _ in 0..nf {
        param_formats.push(r.i16()?);
    }
    let np = r.count16(4)?;
    let mut params = Vec::with_capacity(np);
    for _ in 0..np {
        params.push(r.nullable_bytes(body)?);
    }
    let nr = r.count16(2)?;
    let mut result_formats = Vec::with_capacity(nr);
    for _ in 0..nr {
        result_formats.push(r.i16()?);
    }
    r.finish()?;
    Ok(Bind {
        portal,
        statement,
        param_formats,
        params,
        result_formats,
    })
}

/// The payload of a `p` message during authentication. Its meaning depends on what the
/// server asked for, so the caller picks the interpretation.
pub mod password {
    use super::*;

    /// PasswordMessage: a NUL-terminated password.
    pub fn cleartext(frame: &Frame) -> Result<String, WireError> {
        let body = frame.body();
        let mut r = Reader::new(&body, "PasswordMessage");
        let p = r.cstr()?.to_owned();
        r.finish()?;
        Ok(p)
    }

    /// SASLInitialResponse: mechanism name, then an Int32-length-prefixed payload.
    pub fn sasl_initial(frame: &Frame) -> Result<(String, Vec<u8>), WireError> {
        let body = frame.body();
        let mut r = Reader::new(&body, "SASLInitialResponse");
        let mech = r.cstr()?.to_owned();
        let len = r.i32()?;
        let data = if len < 0 {
            Vec::new()
        } else {
            r.take(len as usize)?.to_vec()
        };
        r.finish()?;
        Ok((mech, data))
    }

    /// SASLResponse: the raw payload.
    pub fn sasl_response(frame: &Frame) -> Vec<u8> {
        frame.body().to_vec()
    }
}

#[cfg(test)]
mod tests;

//! Codec errors. All of them mean "the peer sent something that is not the protocol": the
//! session answers with a FATAL error and closes that one connection.

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("message length {len} is out of bounds (limit {max})")]
    Length { len: usize, max: usize },
    #[error("malformed {what} message")]
    Malformed { what: &'static str },
    #[error("unsupported protocol version {0}.{1}")]
    Version(u16, u16),
    #[error("invalid UTF-8 in {what}")]
    Utf8 { what: &'static str },
    /// Text not valid in the session's client encoding (or not decodable exactly): the
    /// message is refused, the session goes on.
    #[error("{what} holds text that is not valid {encoding}")]
    Encoding {
        what: &'static str,
        encoding: &'static str,
    },
}

impl WireError {
    pub(crate) fn malformed(what: &'static str) -> Self {
        WireError::Malformed { what }
    }
}

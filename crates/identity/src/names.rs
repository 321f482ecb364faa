//! Which identity and group names are acceptable.
//!
//! Names travel in PostgreSQL startup packets, `application_name`, audit events and policies,
//! so they are kept to a conservative alphabet: ASCII letters, digits and `. _ @ -`, 1 to 63
//! bytes (PostgreSQL's identifier length, NAMEDATALEN - 1), not starting with `-` so a name can
//! never be mistaken for a command-line option.

use crate::IdentityError;

/// Longest accepted name in bytes.
pub const MAX_NAME_LEN: usize = 63;

pub fn validate_identity_name(name: &str) -> Result<(), IdentityError> {
    validate("identity", name)
}

pub fn validate_group_name(name: &str) -> Result<(), IdentityError> {
    validate("group", name)
}

fn validate(what: &'static str, name: &str) -> Result<(), IdentityError> {
    let reason = if name.is_empty() {
        Some("must not be empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("must be at most 63 bytes")
    } else if name.starts_with('-') {
        Some("must not start with '-'")
    } else if !name.bytes().all(allowed) {
        Some("may contain only ASCII letters, digits and . _ @ -")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(IdentityError::InvalidName {
            what,
            name: name.to_owned(),
            reason,
        }),
    }
}

fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_usual_names() {
        for name in [
            "alice",
            "report-bot",
            "alice@example.com",
            "svc_etl.v2",
            "a",
            "0",
        ] {
            assert!(validate_identity_name(name).is_ok(), "{name}");
        }
        assert!(validate_group_name(&"g".repeat(63)).is_ok());
    }

    #[test]
    fn rejects_the_rest() {
        let long = "x".repeat(64);
        for name in [
            "",
            "-rf",
            "al ice",
            "bob;drop",
            "é",
            "a/b",
            "a:b",
            long.as_str(),
            "x\0",
        ] {
            assert!(validate_identity_name(name).is_err(), "{name:?}");
            assert!(validate_group_name(name).is_err(), "{name:?}");
        }
    }
}

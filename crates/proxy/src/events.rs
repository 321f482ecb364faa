//! Building audit events: the session-level fields every event of a connection shares.

use model::{AuditEvent, AuditKind, Identity};

/// What is known about a connection, filled in as it progresses.
#[derive(Debug, Clone, Default)]
pub struct EventCtx {
    pub session: String,
    pub client_addr: Option<String>,
    pub identity: Option<Identity>,
    pub user: Option<String>,
    pub application_name: Option<String>,
    pub target: Option<String>,
    /// The identity provider that vouched for `identity`, if one did.
    pub idp: Option<model::IdpRef>,
}

impl EventCtx {
    pub fn event(&self, kind: AuditKind, time: String) -> AuditEvent {
        let mut ev = AuditEvent::new(kind, &self.session, time);
        ev.client_addr.clone_from(&self.client_addr);
        match &self.identity {
            Some(id) => {
                ev.identity = Some(id.name.clone());
                ev.identity_kind = Some(id.kind.as_str().to_owned());
                ev.groups.clone_from(&id.groups);
            }
            // Before authentication the claimed user name is recorded as the identity.
            None => ev.identity.clone_from(&self.user),
        }
        ev.application_name.clone_from(&self.application_name);
        ev.target.clone_from(&self.target);
        ev.idp.clone_from(&self.idp);
        ev
    }
}

/// Renders a bound parameter for the audit trail, truncated to `max` bytes: text decoded
/// from the client encoding (lossy), binary as `\x` hex.
pub fn render_param(
    value: Option<&[u8]>,
    binary: bool,
    max: usize,
    enc: wire_pg::encoding::Encoding,
) -> Option<String> {
    let v = value?;
    let mut s = if binary {
        let mut h = String::with_capacity(2 + 2 * v.len().min(max));
        h.push_str("\\x");
        for b in v.iter().take(max / 2 + 1) {
            h.push_str(&format!("{b:02x}"));
        }
        h
    } else {
        enc.decode_lossy(v.get(..v.len().min(max)).unwrap_or(v))
            .into_owned()
    };
    if s.len() > max || v.len() > max {
        let mut cut = max.min(s.len());
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const UTF8: wire_pg::encoding::Encoding = wire_pg::encoding::Encoding::UTF8;

    #[test]
    fn params_in_the_client_encoding() {
        let latin9 = wire_pg::encoding::Encoding::from_name("LATIN9").unwrap();
        assert_eq!(
            render_param(Some(b"caf\xe9"), false, 8, latin9).unwrap(),
            "café"
        );
    }

    #[test]
    fn params_are_bounded() {
        assert_eq!(render_param(None, false, 8, UTF8), None);
        assert_eq!(render_param(Some(b"abc"), false, 8, UTF8).unwrap(), "abc");
        assert_eq!(
            render_param(Some(b"abcdefghij"), false, 4, UTF8).unwrap(),
            "abcd…"
        );
        assert_eq!(
            render_param(Some(&[1, 255]), true, 16, UTF8).unwrap(),
            "\\x01ff"
        );
        assert_eq!(
            render_param(Some("héllo".as_bytes()), false, 2, UTF8).unwrap(),
            "h…"
        );
    }
}

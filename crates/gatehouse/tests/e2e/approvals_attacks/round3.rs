//! Third red-team round on approvals: the rows a held COMMIT shows, parameters decoded for
//! approvers, prepared statements decided again at Bind, and commit holds that end only on
//! the server's idle report. Every test asserts the SECURE behaviour.

#[allow(unused_imports)]
use super::*;

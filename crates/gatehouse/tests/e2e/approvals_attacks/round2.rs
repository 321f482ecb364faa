//! Second red-team round on approvals: the extended protocol held at Execute, one-time
//! grants, and approval at COMMIT. Every test asserts the SECURE behaviour.

#[allow(unused_imports)]
use super::*;

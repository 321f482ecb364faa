//! Red team on name resolution: a statement must be decided on the relation the server will
//! use, whatever the search path, spelling or session history. Every test asserts the SECURE
//! behaviour.

#[allow(unused_imports)]
use super::*;

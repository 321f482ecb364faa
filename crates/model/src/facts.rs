//! Statement facts produced by the `sql` crate (filled in with the sql crate).

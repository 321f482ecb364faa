//! Policy decisions (owned by the policy work; filled in with the policy crate).

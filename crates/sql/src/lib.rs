//! SQL text → [`StatementFacts`], using the real PostgreSQL grammar (pg_query).
#![forbid(unsafe_code)]

mod danger;
mod names;
mod sweep;
mod tautology;

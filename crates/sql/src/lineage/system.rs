//! System relations: the relations of `pg_catalog` and `information_schema`. Their columns
//! hold catalog metadata (names, types, privileges, settings, activity), not values of user
//! tables, so lineage treats each as a leaf whose columns have no sources, and never walks the
//! definition of a system view (those call internal functions such as
//! `pg_stat_get_activity` or `information_schema._pg_truetypid` that would otherwise be
//! reported as functions of unknown body). This is what lets `\d users`, `\dt`,
//! `information_schema.columns` or SQLAlchemy's inspector through for a principal who may
//! not unmask.
//!
//! Which relation a name means follows the server's resolution (see `relation`): an
//! unqualified `pg_class` is `pg_catalog.pg_class` unless the path lists `pg_catalog` after
//! a schema that has its own `pg_class`, and `information_schema` is never searched
//! implicitly, so a user table `public.columns` stays a user table. Only the schema the name
//! resolved to decides; a relation the catalog does not know stays an unknown relation.
//!
//! Exceptions, [`super::LineageError::SystemSamples`] for the caller to refuse: the
//! statistics relations (`pg_stats`, `pg_stats_ext`, `pg_stats_ext_exprs`, `pg_statistic`,
//! `pg_statistic_ext_data`) hold sample values of user columns (most common values,
//! histogram bounds), and `pg_largeobject` holds large-object contents. No column mask can
//! name those values, so reading one anywhere in a statement (a view over it, a subquery,
//! `table_to_xml('pg_stats', …)`) is an error rather than a lineage: a caller that has not
//! learnt the variant still refuses, as for any error.
//!
//! Known limits, left to the caller: `pg_stat_activity.query` carries other sessions' SQL
//! text, literals included; lineage gives it no sources, so only value detectors over text
//! columns see such values. The same holds for the `query` column of the
//! `pg_stat_statements` extension view, which lives outside these schemas and is expanded
//! like any user view: its function `<schema>.pg_stat_statements(bool)` is of unknown body
//! (refused) unless the catalog vouches for it ([`super::Catalog::is_pure_function`], e.g.
//! for functions the extension owns), and then its columns have no sources. Credentials in
//! `pg_authid`, `pg_user_mapping` or `pg_subscription` are no column values either: the
//! server's privileges and the policy over `tables_read` guard them.

/// What a resolved relation is, for lineage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum System {
    /// A user relation: columns are their own sources, views expand.
    No,
    /// Catalog metadata: a leaf whose columns have no sources.
    Metadata,
    /// A system relation holding copies of user values: an error to read.
    Samples,
}

/// The schemas whose relations are system relations.
const SCHEMAS: [&str; 2] = ["pg_catalog", "information_schema"];

/// `pg_catalog` relations that hold values copied from user data.
const SAMPLE_RELATIONS: [&str; 6] = [
    "pg_largeobject",
    "pg_statistic",
    "pg_statistic_ext_data",
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
];

/// Classify a relation by the schema its name resolved to.
pub(crate) fn classify(schema: &str, name: &str) -> System {
    if !is_system_schema(schema) {
        System::No
    } else if schema == "pg_catalog" && SAMPLE_RELATIONS.contains(&name) {
        System::Samples
    } else {
        System::Metadata
    }
}

pub(crate) fn is_system_schema(schema: &str) -> bool {
    SCHEMAS.contains(&schema)
}

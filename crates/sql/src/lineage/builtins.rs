//! Built-in functions and operators whose result depends only on their arguments (string,
//! math, date/time, JSON, array, aggregate and window functions), plus read-only catalog,
//! introspection and session information functions whose hidden inputs hold no column
//! values: `version()`, `pg_get_viewdef`, `format_type`, `pg_get_userbyid`,
//! `pg_table_is_visible`, `has_table_privilege`, `obj_description`, `aclexplode`,
//! `pg_stat_get_*` counters, `nextval`. Together with system relations being leaves (see
//! `system`), this covers every function psql 15's `\d`-family meta-commands and
//! SQLAlchemy 2's PostgreSQL inspector call, and the `pg_catalog` functions the
//! `information_schema` views are defined with (tests/introspection holds the captured
//! queries).
//!
//! Calls to anything else are reported as unknown, so the caller can refuse them when
//! sensitive values are involved: user functions, extensions, anything qualified with
//! another schema (`information_schema._pg_truetypid`, `public.format_type`), and built-ins
//! that read table data, files or SQL text, or have effects: `query_to_xml` and the rest
//! of the `*_to_xml*` family (traced or refused by `call`), `dblink*`, `pg_read_file`,
//! `pg_read_binary_file`, `pg_ls_*`, `pg_stat_file`, `pg_current_logfile`, the config-file
//! readers (`pg_show_all_file_settings`, `pg_hba_file_rules`, `pg_ident_file_mappings`),
//! `lo_*` and `loread`, `pg_logical_slot_*_changes` (decoded row changes),
//! `pg_mcv_list_items` (statistics samples), `ts_stat`, `set_config`, `pg_notify`,
//! `pg_sleep`, advisory locks, `pg_cancel_backend`/`pg_terminate_backend`, `pg_stat_reset*`.
//! Session-text readers are listed: `pg_stat_get_activity` and
//! `pg_stat_get_backend_activity` return other sessions' SQL text, as `pg_stat_activity`
//! does (see `system`); `pg_cursor` and `pg_prepared_statement` return this session's.
//!
//! The matching rule: a name matches only unqualified or `pg_catalog.`-qualified.
//! PostgreSQL searches `pg_catalog` before the path unless the path lists it later, so an
//! unqualified `lower` is the built-in. (A user function with the same name but a
//! better-matching signature, or in a schema the path lists before `pg_catalog`, would
//! shadow it; that case is not detected.)

use pg_query::protobuf::Node;
use pg_query::NodeEnum as N;

/// Sorted (byte order) for binary search; a unit test checks the order.
#[rustfmt::skip]
pub(crate) const FUNCTIONS: &[&str] = &[
    "abbrev", "abs", "aclcontains", "acldefault", "aclexplode", "acos", "acosd", "acosh", "age",
    "any_value", "array_agg", "array_append", "array_cat", "array_dims", "array_fill",
    "array_length", "array_lower", "array_ndims", "array_position", "array_positions",
    "array_prepend", "array_remove", "array_replace", "array_reverse", "array_sample",
    "array_shuffle", "array_sort", "array_to_json", "array_to_string", "array_to_tsvector",
    "array_upper", "ascii", "asin", "asind", "asinh", "atan", "atan2", "atan2d", "atand", "atanh",
    "avg", "bit_and", "bit_count", "bit_length", "bit_or", "bit_xor", "bool", "bool_and", "bool_or",
    "bound_box", "box", "bpchar", "broadcast", "btrim", "cardinality", "casefold", "cbrt", "ceil",
    "ceiling", "char", "char_length", "character_length", "chr", "circle", "clock_timestamp",
    "col_description", "concat", "concat_ws", "convert", "convert_from", "convert_to", "corr",
    "cos", "cosd", "cosh", "cot", "cotd", "count", "covar_pop", "covar_samp", "cume_dist",
    "current_database", "current_date", "current_schema", "current_schemas", "current_setting",
    "current_time", "current_timestamp", "currval", "date", "date_add", "date_bin", "date_part",
    "date_subtract", "date_trunc", "daterange", "decode", "degrees", "dense_rank", "diameter",
    "div", "encode", "erf", "erfc", "every", "exp", "extract", "factorial", "family", "first_value",
    "float4", "float8", "floor", "format", "format_type", "gamma", "gcd", "gen_random_uuid",
    "generate_series", "generate_subscripts", "get_bit", "get_byte", "getdatabaseencoding",
    "greatest", "has_any_column_privilege", "has_column_privilege", "has_database_privilege",
    "has_foreign_data_wrapper_privilege", "has_function_privilege", "has_language_privilege",
    "has_largeobject_privilege", "has_parameter_privilege", "has_schema_privilege",
    "has_sequence_privilege", "has_server_privilege", "has_table_privilege",
    "has_tablespace_privilege", "has_type_privilege", "hashtext", "height", "host", "hostmask",
    "inet_client_addr", "inet_client_port", "inet_merge", "inet_same_family", "inet_server_addr",
    "inet_server_port", "initcap", "int2", "int2range", "int4", "int4range", "int8", "int8range",
    "interval", "is_normalized", "isclosed", "isempty", "isfinite", "isopen", "json_agg",
    "json_agg_strict", "json_array_elements", "json_array_elements_text", "json_array_length",
    "json_build_array", "json_build_object", "json_each", "json_each_text", "json_extract_path",
    "json_extract_path_text", "json_object", "json_object_agg", "json_object_agg_strict",
    "json_object_agg_unique", "json_object_agg_unique_strict", "json_object_keys",
    "json_populate_record", "json_populate_recordset", "json_scalar", "json_serialize",
    "json_strip_nulls", "json_to_record", "json_to_recordset", "json_typeof", "jsonb_agg",
    "jsonb_agg_strict", "jsonb_array_elements", "jsonb_array_elements_text", "jsonb_array_length",
    "jsonb_build_array", "jsonb_build_object", "jsonb_concat", "jsonb_contained", "jsonb_contains",
    "jsonb_delete", "jsonb_each", "jsonb_each_text", "jsonb_exists", "jsonb_extract_path",
    "jsonb_extract_path_text", "jsonb_insert", "jsonb_object", "jsonb_object_agg",
    "jsonb_object_agg_strict", "jsonb_object_agg_unique", "jsonb_object_agg_unique_strict",
    "jsonb_object_keys", "jsonb_path_exists", "jsonb_path_match", "jsonb_path_query",
    "jsonb_path_query_array", "jsonb_path_query_first", "jsonb_populate_record",
    "jsonb_populate_recordset", "jsonb_pretty", "jsonb_set", "jsonb_set_lax", "jsonb_strip_nulls",
    "jsonb_to_record", "jsonb_to_recordset", "jsonb_typeof", "justify_days", "justify_hours",
    "justify_interval", "lag", "last_value", "lastval", "lcm", "lead", "least", "left", "length",
    "lgamma", "like_escape", "ln", "localtime", "localtimestamp", "log", "log10", "lower",
    "lower_inc", "lower_inf", "lpad", "lseg", "ltrim", "macaddr8_set7bit", "make_date",
    "make_interval", "make_time", "make_timestamp", "make_timestamptz", "masklen", "max", "md5",
    "merge_action", "min", "min_scale", "mod", "mode", "multirange", "name", "nameconcatoid",
    "netmask", "network", "nextval", "normalize", "now", "npoints", "nth_value", "ntile",
    "num_nonnulls", "num_nulls", "numeric", "numnode", "numrange", "obj_description",
    "octet_length", "oidvectortypes", "overlaps", "overlay", "parse_ident", "path", "percent_rank",
    "percentile_cont", "percentile_disc", "pg_available_extension_versions",
    "pg_available_extensions", "pg_backend_pid", "pg_blocking_pids", "pg_char_to_encoding",
    "pg_client_encoding", "pg_collation_for", "pg_collation_is_visible", "pg_column_is_updatable",
    "pg_conf_load_time", "pg_config", "pg_control_checkpoint", "pg_control_init",
    "pg_control_recovery", "pg_control_system", "pg_conversion_is_visible", "pg_current_snapshot",
    "pg_current_wal_flush_lsn", "pg_current_wal_insert_lsn", "pg_current_wal_lsn",
    "pg_current_xact_id", "pg_current_xact_id_if_assigned", "pg_cursor", "pg_database_size",
    "pg_describe_object", "pg_encoding_max_length", "pg_encoding_to_char",
    "pg_extension_update_paths", "pg_filenode_relation", "pg_function_is_visible",
    "pg_get_backend_memory_contexts", "pg_get_catalog_foreign_keys", "pg_get_constraintdef",
    "pg_get_expr", "pg_get_function_arg_default", "pg_get_function_arguments",
    "pg_get_function_identity_arguments", "pg_get_function_result", "pg_get_function_sqlbody",
    "pg_get_functiondef", "pg_get_indexdef", "pg_get_keywords", "pg_get_object_address",
    "pg_get_partition_constraintdef", "pg_get_partkeydef", "pg_get_publication_tables",
    "pg_get_replica_identity_index", "pg_get_replication_slots", "pg_get_ruledef",
    "pg_get_serial_sequence", "pg_get_shmem_allocations", "pg_get_statisticsobjdef",
    "pg_get_statisticsobjdef_columns", "pg_get_statisticsobjdef_expressions", "pg_get_triggerdef",
    "pg_get_userbyid", "pg_get_viewdef", "pg_get_wal_replay_pause_state",
    "pg_get_wal_resource_managers", "pg_has_role", "pg_identify_object",
    "pg_identify_object_as_address", "pg_index_column_has_property", "pg_index_has_property",
    "pg_indexam_has_property", "pg_indexam_progress_phasename", "pg_indexes_size",
    "pg_is_in_recovery", "pg_is_other_temp_schema", "pg_is_wal_replay_paused", "pg_jit_available",
    "pg_last_committed_xact", "pg_last_wal_receive_lsn", "pg_last_wal_replay_lsn",
    "pg_last_xact_replay_timestamp", "pg_listening_channels", "pg_lock_status", "pg_my_temp_schema",
    "pg_notification_queue_usage", "pg_opclass_is_visible", "pg_operator_is_visible",
    "pg_opfamily_is_visible", "pg_options_to_table", "pg_partition_ancestors", "pg_partition_root",
    "pg_partition_tree", "pg_postmaster_start_time", "pg_prepared_statement", "pg_prepared_xact",
    "pg_relation_filenode", "pg_relation_filepath", "pg_relation_is_publishable",
    "pg_relation_is_updatable", "pg_relation_size", "pg_safe_snapshot_blocking_pids",
    "pg_sequence_last_value", "pg_sequence_parameters", "pg_settings_get_flags",
    "pg_show_all_settings", "pg_show_replication_origin_status", "pg_size_bytes", "pg_size_pretty",
    "pg_snapshot_xip", "pg_snapshot_xmax", "pg_snapshot_xmin", "pg_stat_get_activity",
    "pg_stat_get_analyze_count", "pg_stat_get_archiver", "pg_stat_get_autoanalyze_count",
    "pg_stat_get_autovacuum_count", "pg_stat_get_backend_activity",
    "pg_stat_get_backend_activity_start", "pg_stat_get_backend_client_addr",
    "pg_stat_get_backend_client_port", "pg_stat_get_backend_dbid", "pg_stat_get_backend_idset",
    "pg_stat_get_backend_pid", "pg_stat_get_backend_start", "pg_stat_get_backend_userid",
    "pg_stat_get_backend_wait_event", "pg_stat_get_backend_wait_event_type",
    "pg_stat_get_backend_xact_start", "pg_stat_get_bgwriter_buf_written_checkpoints",
    "pg_stat_get_bgwriter_buf_written_clean", "pg_stat_get_bgwriter_maxwritten_clean",
    "pg_stat_get_bgwriter_requested_checkpoints", "pg_stat_get_bgwriter_stat_reset_time",
    "pg_stat_get_bgwriter_timed_checkpoints", "pg_stat_get_blocks_fetched",
    "pg_stat_get_blocks_hit", "pg_stat_get_buf_alloc", "pg_stat_get_buf_fsync_backend",
    "pg_stat_get_buf_written_backend", "pg_stat_get_checkpoint_sync_time",
    "pg_stat_get_checkpoint_write_time", "pg_stat_get_db_active_time",
    "pg_stat_get_db_blk_read_time", "pg_stat_get_db_blk_write_time",
    "pg_stat_get_db_blocks_fetched", "pg_stat_get_db_blocks_hit",
    "pg_stat_get_db_checksum_failures", "pg_stat_get_db_checksum_last_failure",
    "pg_stat_get_db_conflict_all", "pg_stat_get_db_conflict_bufferpin",
    "pg_stat_get_db_conflict_lock", "pg_stat_get_db_conflict_snapshot",
    "pg_stat_get_db_conflict_startup_deadlock", "pg_stat_get_db_conflict_tablespace",
    "pg_stat_get_db_deadlocks", "pg_stat_get_db_idle_in_transaction_time",
    "pg_stat_get_db_numbackends", "pg_stat_get_db_session_time", "pg_stat_get_db_sessions",
    "pg_stat_get_db_sessions_abandoned", "pg_stat_get_db_sessions_fatal",
    "pg_stat_get_db_sessions_killed", "pg_stat_get_db_stat_reset_time", "pg_stat_get_db_temp_bytes",
    "pg_stat_get_db_temp_files", "pg_stat_get_db_tuples_deleted", "pg_stat_get_db_tuples_fetched",
    "pg_stat_get_db_tuples_inserted", "pg_stat_get_db_tuples_returned",
    "pg_stat_get_db_tuples_updated", "pg_stat_get_db_xact_commit", "pg_stat_get_db_xact_rollback",
    "pg_stat_get_dead_tuples", "pg_stat_get_function_calls", "pg_stat_get_function_self_time",
    "pg_stat_get_function_total_time", "pg_stat_get_ins_since_vacuum",
    "pg_stat_get_last_analyze_time", "pg_stat_get_last_autoanalyze_time",
    "pg_stat_get_last_autovacuum_time", "pg_stat_get_last_vacuum_time", "pg_stat_get_live_tuples",
    "pg_stat_get_mod_since_analyze", "pg_stat_get_numscans", "pg_stat_get_progress_info",
    "pg_stat_get_recovery_prefetch", "pg_stat_get_replication_slot", "pg_stat_get_slru",
    "pg_stat_get_snapshot_timestamp", "pg_stat_get_subscription", "pg_stat_get_subscription_stats",
    "pg_stat_get_tuples_deleted", "pg_stat_get_tuples_fetched", "pg_stat_get_tuples_hot_updated",
    "pg_stat_get_tuples_inserted", "pg_stat_get_tuples_returned", "pg_stat_get_tuples_updated",
    "pg_stat_get_vacuum_count", "pg_stat_get_wal", "pg_stat_get_wal_receiver",
    "pg_stat_get_wal_senders", "pg_stat_get_xact_blocks_fetched", "pg_stat_get_xact_blocks_hit",
    "pg_stat_get_xact_function_calls", "pg_stat_get_xact_function_self_time",
    "pg_stat_get_xact_function_total_time", "pg_stat_get_xact_numscans",
    "pg_stat_get_xact_tuples_deleted", "pg_stat_get_xact_tuples_fetched",
    "pg_stat_get_xact_tuples_hot_updated", "pg_stat_get_xact_tuples_inserted",
    "pg_stat_get_xact_tuples_returned", "pg_stat_get_xact_tuples_updated", "pg_stat_have_stats",
    "pg_statistics_obj_is_visible", "pg_table_is_visible", "pg_table_size",
    "pg_tablespace_databases", "pg_tablespace_location", "pg_tablespace_size",
    "pg_timezone_abbrevs", "pg_timezone_names", "pg_total_relation_size", "pg_trigger_depth",
    "pg_ts_config_is_visible", "pg_ts_dict_is_visible", "pg_ts_parser_is_visible",
    "pg_ts_template_is_visible", "pg_type_is_visible", "pg_typeof", "pg_visible_in_snapshot",
    "pg_wal_lsn_diff", "pg_walfile_name", "pg_walfile_name_offset", "pg_xact_commit_timestamp",
    "pg_xact_commit_timestamp_origin", "pg_xact_status", "phraseto_tsquery", "pi",
    "plainto_tsquery", "point", "polygon", "popen", "position", "pow", "power", "querytree",
    "quote_ident", "quote_literal", "quote_nullable", "radians", "radius", "random",
    "random_normal", "range_agg", "range_intersect_agg", "range_merge", "rank", "regexp_count",
    "regexp_instr", "regexp_like", "regexp_match", "regexp_matches", "regexp_replace",
    "regexp_split_to_array", "regexp_split_to_table", "regexp_substr", "regr_avgx", "regr_avgy",
    "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy", "regr_syy",
    "repeat", "replace", "reverse", "right", "round", "row_number", "row_security_active",
    "row_to_json", "rpad", "rtrim", "scale", "set_bit", "set_byte", "set_masklen", "setweight",
    "sha224", "sha256", "sha384", "sha512", "shobj_description", "sign", "similar_escape",
    "similar_to_escape", "sin", "sind", "sinh", "slope", "split_part", "sqrt", "starts_with",
    "statement_timestamp", "stddev", "stddev_pop", "stddev_samp", "string_agg", "string_to_array",
    "string_to_table", "strip", "strpos", "substr", "substring", "sum", "system_user", "tan",
    "tand", "tanh", "text", "timeofday", "timezone", "to_ascii", "to_bin", "to_char", "to_date",
    "to_hex", "to_json", "to_jsonb", "to_number", "to_oct", "to_regclass", "to_regnamespace",
    "to_regoper", "to_regoperator", "to_regproc", "to_regprocedure", "to_regrole", "to_regtype",
    "to_timestamp", "to_tsquery", "to_tsvector", "transaction_timestamp", "translate", "trim",
    "trim_array", "trim_scale", "trunc", "ts_delete", "ts_filter", "ts_headline", "ts_rank",
    "ts_rank_cd", "tsquery_phrase", "tsrange", "tstzrange", "tsvector_to_array", "txid_current",
    "txid_current_if_assigned", "txid_current_snapshot", "txid_snapshot_xip", "txid_snapshot_xmax",
    "txid_snapshot_xmin", "txid_status", "txid_visible_in_snapshot", "unistr", "unnest", "upper",
    "upper_inc", "upper_inf", "uuid_extract_timestamp", "uuid_extract_version", "var_pop",
    "var_samp", "varchar", "variance", "version", "websearch_to_tsquery", "width", "width_bucket",
    "xml_is_well_formed", "xml_is_well_formed_content", "xml_is_well_formed_document", "xmlagg",
    "xmlcomment", "xmlconcat", "xmltext", "xpath", "xpath_exists",
];

/// Operator spellings of the built-in operators on standard types.
#[rustfmt::skip]
pub(crate) const OPERATORS: &[&str] = &[
    "!!", "!=", "!~", "!~*", "!~~", "!~~*", "#", "#-", "#>", "#>>", "%", "&", "&&", "&<", "&>",
    "*", "+", "-", "->", "->>", "/", "<", "<->", "<<", "<<=", "<=", "<>", "=", ">", ">=", ">>",
    ">>=", "?", "?&", "?|", "@", "@-@", "@>", "@?", "@@", "@@@", "^", "|", "|/", "||", "||/",
    "~", "~*", "~~", "~~*", "<@", "<^", ">^", "?#", "?-", "?-|", "?||", "~=", "operator",
    // BETWEEN is an AExpr whose "operator" is the keyword.
    "BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC",
];

/// The function name if `parts` name a built-in (unqualified or in `pg_catalog`).
pub(crate) fn builtin_name(parts: &[String]) -> Option<&str> {
    let name = match parts {
        [n] => n,
        [s, n] if s == "pg_catalog" => n,
        _ => return None,
    };
    FUNCTIONS
        .binary_search(&name.as_str())
        .ok()
        .map(|_| name.as_str())
}

pub(crate) fn is_builtin(parts: &[String]) -> bool {
    builtin_name(parts).is_some()
}

/// Built-ins left out of [`FUNCTIONS`] because they read more than their arguments or have
/// effects, none of which can change the session's settings (search path, client encoding)
/// or its temporary objects: they are C functions that never run SQL. (`set_config` is not
/// here: the statement's facts say what it sets. Neither are functions that run SQL text,
/// such as `query_to_xml`, nor `dblink*`.)
const SETTINGS_INERT_PREFIXES: &[&str] = &[
    "pg_sleep",
    "pg_advisory_",
    "pg_try_advisory_",
    "lo_",
    "pg_cancel_backend",
    "pg_terminate_backend",
    "pg_stat_reset",
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_",
    "pg_stat_file",
];

const SETTINGS_INERT: &[&str] = &[
    "pg_notify",
    "loread",
    "lowrite",
    "pg_current_logfile",
    "txid_current",
    "pg_current_xact_id",
];

/// Whether a call of `parts` is a built-in that runs no SQL of its own (the pure built-ins,
/// [`SETTINGS_INERT`] and [`SETTINGS_INERT_PREFIXES`]).
pub(crate) fn is_inert_builtin(parts: &[String]) -> bool {
    let name = match parts {
        [n] => n.as_str(),
        [s, n] if s == "pg_catalog" => n.as_str(),
        _ => return false,
    };
    is_builtin(parts)
        || SETTINGS_INERT.contains(&name)
        || SETTINGS_INERT_PREFIXES.iter().any(|p| name.starts_with(p))
}

/// `operator(name)` for an operator that is not a built-in spelling (or is qualified with
/// another schema); None for built-ins.
pub(crate) fn unknown_operator(name: &[Node]) -> Option<String> {
    let parts: Vec<&str> = name
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })
        .collect();
    let builtin = match parts.as_slice() {
        [op] | ["pg_catalog", op] => OPERATORS.contains(op),
        _ => false,
    };
    (!builtin).then(|| format!("operator({})", parts.join(".")))
}

#[cfg(test)]
mod inert_tests {
    use super::*;

    fn inert(name: &str) -> bool {
        let parts: Vec<String> = name.split('.').map(str::to_owned).collect();
        is_inert_builtin(&parts)
    }

    #[test]
    fn inert_builtins_run_no_sql() {
        for yes in [
            "lower",
            "pg_sleep",
            "pg_catalog.pg_sleep_for",
            "pg_notify",
            "lo_open",
            "loread",
            "pg_advisory_lock",
        ] {
            assert!(inert(yes), "{yes}");
        }
        for no in [
            "set_config",
            "query_to_xml",
            "dblink_exec",
            "public.pg_sleep",
            "my_func",
            "myschema.lower",
        ] {
            assert!(!inert(no), "{no}");
        }
    }
}

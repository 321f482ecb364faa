//! Result shapes of built-in set-returning and record-returning functions used in FROM:
//! the column names PostgreSQL gives them (their OUT parameters), so `SELECT *` over them
//! and `f.col` references resolve. A built-in not listed here returns one column named after
//! the function (or after its alias), the server's rule for a function without OUT
//! parameters.
//!
//! Shapes are those of PostgreSQL 15 (`pg_proc.proargnames` of the OUT parameters). A
//! server whose function has other columns returns a RowDescription whose column count
//! disagrees, which the caller refuses; a column name missing here is unsupported. Either
//! way it fails closed, and no shape decides sources: the arguments' sources flow into
//! every column.

/// (function, OUT parameter names), sorted by name (byte order) for binary search; a unit
/// test checks the order.
#[rustfmt::skip]
pub(crate) const SHAPES: &[(&str, &[&str])] = &[
    ("aclexplode", &["grantor", "grantee", "privilege_type", "is_grantable"]),
    ("json_array_elements", &["value"]),
    ("json_array_elements_text", &["value"]),
    ("json_each", &["key", "value"]),
    ("json_each_text", &["key", "value"]),
    ("jsonb_array_elements", &["value"]),
    ("jsonb_array_elements_text", &["value"]),
    ("jsonb_each", &["key", "value"]),
    ("jsonb_each_text", &["key", "value"]),
    ("pg_available_extension_versions", &[
        "name", "version", "superuser", "trusted", "relocatable", "schema", "requires", "comment"
    ]),
    ("pg_available_extensions", &["name", "default_version", "comment"]),
    ("pg_config", &["name", "setting"]),
    ("pg_control_checkpoint", &[
        "checkpoint_lsn", "redo_lsn", "redo_wal_file", "timeline_id", "prev_timeline_id",
        "full_page_writes", "next_xid", "next_oid", "next_multixact_id", "next_multi_offset",
        "oldest_xid", "oldest_xid_dbid", "oldest_active_xid", "oldest_multi_xid",
        "oldest_multi_dbid", "oldest_commit_ts_xid", "newest_commit_ts_xid", "checkpoint_time"
    ]),
    ("pg_control_init", &[
        "max_data_alignment", "database_block_size", "blocks_per_segment", "wal_block_size",
        "bytes_per_wal_segment", "max_identifier_length", "max_index_columns",
        "max_toast_chunk_size", "large_object_chunk_size", "float8_pass_by_value",
        "data_page_checksum_version"
    ]),
    ("pg_control_recovery", &[
        "min_recovery_end_lsn", "min_recovery_end_timeline", "backup_start_lsn", "backup_end_lsn",
        "end_of_backup_record_required"
    ]),
    ("pg_control_system", &[
        "pg_control_version", "catalog_version_no", "system_identifier", "pg_control_last_modified"
    ]),
    ("pg_cursor", &[
        "name", "statement", "is_holdable", "is_binary", "is_scrollable", "creation_time"
    ]),
    ("pg_extension_update_paths", &["source", "target", "path"]),
    ("pg_get_backend_memory_contexts", &[
        "name", "ident", "parent", "level", "total_bytes", "total_nblocks", "free_bytes",
        "free_chunks", "used_bytes"
    ]),
    ("pg_get_catalog_foreign_keys", &[
        "fktable", "fkcols", "pktable", "pkcols", "is_array", "is_opt"
    ]),
    ("pg_get_keywords", &["word", "catcode", "barelabel", "catdesc", "baredesc"]),
    ("pg_get_object_address", &["classid", "objid", "objsubid"]),
    ("pg_get_publication_tables", &["relid", "attrs", "qual"]),
    ("pg_get_replication_slots", &[
        "slot_name", "plugin", "slot_type", "datoid", "temporary", "active", "active_pid", "xmin",
        "catalog_xmin", "restart_lsn", "confirmed_flush_lsn", "wal_status", "safe_wal_size",
        "two_phase"
    ]),
    ("pg_get_shmem_allocations", &["name", "off", "size", "allocated_size"]),
    ("pg_get_wal_resource_managers", &["rm_id", "rm_name", "rm_builtin"]),
    ("pg_identify_object", &["type", "schema", "name", "identity"]),
    ("pg_identify_object_as_address", &["type", "object_names", "object_args"]),
    ("pg_last_committed_xact", &["xid", "timestamp", "roident"]),
    ("pg_lock_status", &[
        "locktype", "database", "relation", "page", "tuple", "virtualxid", "transactionid",
        "classid", "objid", "objsubid", "virtualtransaction", "pid", "mode", "granted", "fastpath",
        "waitstart"
    ]),
    ("pg_options_to_table", &["option_name", "option_value"]),
    ("pg_partition_ancestors", &["relid"]),
    ("pg_partition_tree", &["relid", "parentrelid", "isleaf", "level"]),
    ("pg_prepared_statement", &[
        "name", "statement", "prepare_time", "parameter_types", "from_sql", "generic_plans",
        "custom_plans"
    ]),
    ("pg_prepared_xact", &["transaction", "gid", "prepared", "ownerid", "dbid"]),
    ("pg_sequence_parameters", &[
        "start_value", "minimum_value", "maximum_value", "increment", "cycle_option", "cache_size",
        "data_type"
    ]),
    ("pg_show_all_settings", &[
        "name", "setting", "unit", "category", "short_desc", "extra_desc", "context", "vartype",
        "source", "min_val", "max_val", "enumvals", "boot_val", "reset_val", "sourcefile",
        "sourceline", "pending_restart"
    ]),
    ("pg_show_replication_origin_status", &["local_id", "external_id", "remote_lsn", "local_lsn"]),
    ("pg_stat_get_activity", &[
        "datid", "pid", "usesysid", "application_name", "state", "query", "wait_event_type",
        "wait_event", "xact_start", "query_start", "backend_start", "state_change", "client_addr",
        "client_hostname", "client_port", "backend_xid", "backend_xmin", "backend_type", "ssl",
        "sslversion", "sslcipher", "sslbits", "ssl_client_dn", "ssl_client_serial",
        "ssl_issuer_dn", "gss_auth", "gss_princ", "gss_enc", "leader_pid", "query_id"
    ]),
    ("pg_stat_get_archiver", &[
        "archived_count", "last_archived_wal", "last_archived_time", "failed_count",
        "last_failed_wal", "last_failed_time", "stats_reset"
    ]),
    ("pg_stat_get_progress_info", &[
        "pid", "datid", "relid", "param1", "param2", "param3", "param4", "param5", "param6",
        "param7", "param8", "param9", "param10", "param11", "param12", "param13", "param14",
        "param15", "param16", "param17", "param18", "param19", "param20"
    ]),
    ("pg_stat_get_recovery_prefetch", &[
        "stats_reset", "prefetch", "hit", "skip_init", "skip_new", "skip_fpw", "skip_rep",
        "wal_distance", "block_distance", "io_depth"
    ]),
    ("pg_stat_get_replication_slot", &[
        "slot_name", "spill_txns", "spill_count", "spill_bytes", "stream_txns", "stream_count",
        "stream_bytes", "total_txns", "total_bytes", "stats_reset"
    ]),
    ("pg_stat_get_slru", &[
        "name", "blks_zeroed", "blks_hit", "blks_read", "blks_written", "blks_exists", "flushes",
        "truncates", "stats_reset"
    ]),
    ("pg_stat_get_subscription", &[
        "subid", "relid", "pid", "received_lsn", "last_msg_send_time", "last_msg_receipt_time",
        "latest_end_lsn", "latest_end_time"
    ]),
    ("pg_stat_get_subscription_stats", &[
        "subid", "apply_error_count", "sync_error_count", "stats_reset"
    ]),
    ("pg_stat_get_wal", &[
        "wal_records", "wal_fpi", "wal_bytes", "wal_buffers_full", "wal_write", "wal_sync",
        "wal_write_time", "wal_sync_time", "stats_reset"
    ]),
    ("pg_stat_get_wal_receiver", &[
        "pid", "status", "receive_start_lsn", "receive_start_tli", "written_lsn", "flushed_lsn",
        "received_tli", "last_msg_send_time", "last_msg_receipt_time", "latest_end_lsn",
        "latest_end_time", "slot_name", "sender_host", "sender_port", "conninfo"
    ]),
    ("pg_stat_get_wal_senders", &[
        "pid", "state", "sent_lsn", "write_lsn", "flush_lsn", "replay_lsn", "write_lag",
        "flush_lag", "replay_lag", "sync_priority", "sync_state", "reply_time"
    ]),
    ("pg_timezone_abbrevs", &["abbrev", "utc_offset", "is_dst"]),
    ("pg_timezone_names", &["name", "abbrev", "utc_offset", "is_dst"]),
    ("pg_walfile_name_offset", &["file_name", "file_offset"]),
    ("pg_xact_commit_timestamp_origin", &["timestamp", "roident"]),
];

/// Column names of a built-in with OUT parameters.
pub(crate) fn srf_columns(name: &str) -> Option<&'static [&'static str]> {
    let i = SHAPES.binary_search_by(|(n, _)| (*n).cmp(name)).ok()?;
    SHAPES.get(i).map(|(_, cols)| *cols)
}

/// Built-in set-returning functions whose columns come from a row type argument or a
/// column definition list: without one, their shape is unknown.
pub(crate) fn srf_needs_definition(name: &str) -> bool {
    matches!(
        name,
        "json_populate_record"
            | "json_populate_recordset"
            | "jsonb_populate_record"
            | "jsonb_populate_recordset"
            | "json_to_record"
            | "json_to_recordset"
            | "jsonb_to_record"
            | "jsonb_to_recordset"
    )
}

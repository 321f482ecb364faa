//! Which functions, languages and extensions reach outside the database's own data.
//!
//! Matching is on the bare, lower-case function name whatever schema it was written with:
//! `pg_catalog.pg_read_file` and `"PG_READ_FILE"`-style quoting end up here the same way.
//! The lists follow the PostgreSQL 17 "System Administration Functions" chapter.

use model::facts::DangerFamily;

/// The family a function belongs to, if it is a dangerous one.
pub(crate) fn function_family(name: &str) -> Option<DangerFamily> {
    let bare = name.rsplit('.').next().unwrap_or(name);
    let family = match bare {
        "pg_read_file"
        | "pg_read_binary_file"
        | "pg_stat_file"
        | "pg_file_write"
        | "pg_file_rename"
        | "pg_file_unlink"
        | "pg_file_sync"
        | "pg_logdir_ls"
        | "lo_import"
        | "lo_export" => DangerFamily::ServerFiles,
        // pg_ls_dir, pg_ls_logdir, pg_ls_waldir, pg_ls_tmpdir, pg_ls_archive_statusdir, …
        b if b.starts_with("pg_ls_") => DangerFamily::ServerFiles,
        // The rest of the large-object API: no server files, but outside table privileges,
        // so policies can tell it apart.
        "loread" | "lowrite" => DangerFamily::LargeObjects,
        b if b.starts_with("lo_") => DangerFamily::LargeObjects,
        b if b.starts_with("dblink") => DangerFamily::CrossDatabase,
        // set_config is judged by its arguments (see walk::session), not by name.
        "pg_reload_conf" => DangerFamily::Settings,
        "pg_sleep" | "pg_sleep_for" | "pg_sleep_until" => DangerFamily::Sleep,
        "pg_terminate_backend"
        | "pg_cancel_backend"
        | "pg_rotate_logfile"
        | "pg_promote"
        | "pg_switch_wal"
        | "pg_create_restore_point"
        | "pg_backup_start"
        | "pg_backup_stop"
        | "pg_wal_replay_pause"
        | "pg_wal_replay_resume"
        | "pg_log_backend_memory_contexts"
        | "pg_drop_replication_slot"
        | "pg_copy_physical_replication_slot"
        | "pg_copy_logical_replication_slot" => DangerFamily::Admin,
        b if b.starts_with("pg_create_") && b.ends_with("_replication_slot") => DangerFamily::Admin,
        b if b.starts_with("pg_replication_origin_") || b.starts_with("pg_stat_reset") => {
            DangerFamily::Admin
        }
        _ => return None,
    };
    Some(family)
}

/// Languages whose code runs with the server's operating-system privileges.
pub(crate) fn untrusted_language(lang: &str) -> bool {
    let lang = lang.to_ascii_lowercase();
    matches!(lang.as_str(), "c" | "internal" | "plsh" | "plr")
        || (lang.starts_with("pl") && lang.ends_with('u'))
}

/// The family an extension's installation brings in.
pub(crate) fn extension_family(name: &str) -> Option<DangerFamily> {
    match name.to_ascii_lowercase().as_str() {
        "dblink" | "postgres_fdw" | "mysql_fdw" | "oracle_fdw" | "tds_fdw" => {
            Some(DangerFamily::CrossDatabase)
        }
        "file_fdw" | "adminpack" | "lo" => Some(DangerFamily::ServerFiles),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families() {
        assert_eq!(
            function_family("pg_catalog.pg_read_file"),
            Some(DangerFamily::ServerFiles)
        );
        assert_eq!(
            function_family("pg_ls_waldir"),
            Some(DangerFamily::ServerFiles)
        );
        assert_eq!(
            function_family("dblink_exec"),
            Some(DangerFamily::CrossDatabase)
        );
        assert_eq!(function_family("pg_sleep_for"), Some(DangerFamily::Sleep));
        assert_eq!(
            function_family("lo_import"),
            Some(DangerFamily::ServerFiles)
        );
        assert_eq!(
            function_family("lo_export"),
            Some(DangerFamily::ServerFiles)
        );
        for lo in [
            "lo_open",
            "loread",
            "lowrite",
            "lo_creat",
            "lo_get",
            "lo_unlink",
        ] {
            assert_eq!(
                function_family(lo),
                Some(DangerFamily::LargeObjects),
                "{lo}"
            );
        }
        assert_eq!(function_family("now"), None);
        assert_eq!(function_family("lower"), None);
        assert!(untrusted_language("plpython3u"));
        assert!(untrusted_language("C"));
        assert!(!untrusted_language("plpgsql"));
        assert!(!untrusted_language("sql"));
    }
}

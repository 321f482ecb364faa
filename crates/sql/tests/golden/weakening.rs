//! Settings that weaken the server's own enforcement or auditing, in every way a statement
//! can change them, and the changes that keep or restore the configured value.

use crate::harness::{run, Case, E::*};

#[test]
fn session_replication_role_and_row_security() {
    const T: &[Case] = &[
        ("SET session_replication_role = replica",
            &[Class("session"), Command("SET"), Weakens("session_replication_role"), Setting("session_replication_role")]),
        ("set SESSION_REPLICATION_ROLE to 'replica'", &[Weakens("session_replication_role")]),
        ("SET \"Session_Replication_Role\" = 'REPLICA'", &[Weakens("session_replication_role")]),
        ("SET U&\"session\\005freplication_role\" = replica", &[Weakens("session_replication_role")]),
        ("/* x */ SET LOCAL session_replication_role -- y\n = local", &[Weakens("session_replication_role")]),
        ("SELECT set_config('session_replication_role', 'replica', false)",
            &[Class("read"), Weakens("session_replication_role")]),
        ("SELECT SET_CONFIG('Session_Replication_Role'::text, 'replica', true)",
            &[Weakens("session_replication_role")]),
        ("SELECT set_config('session_replication_role', current_setting('app.mode'), false)",
            &[Weakens("session_replication_role")]),
        ("SELECT 1 FROM t WHERE set_config('session_replication_role', 'replica', true) IS NOT NULL",
            &[Weakens("session_replication_role")]),
        ("SELECT 1; SET session_replication_role = replica",
            &[Count(2), At(0), Benign, At(1), Weakens("session_replication_role")]),
        // Keeping or restoring the configured value.
        ("SET session_replication_role = origin", &[Setting("session_replication_role"), Benign]),
        ("SET session_replication_role TO DEFAULT", &[Benign]),
        ("RESET session_replication_role", &[Command("RESET"), Benign]),
        ("SELECT set_config('session_replication_role', 'origin', false)", &[Benign]),
        ("SHOW session_replication_role", &[Benign]),
        ("SELECT current_setting('session_replication_role')", &[Benign]),
        // row_security: only "on" keeps it.
        ("SET row_security = off", &[Weakens("row_security")]),
        ("SET row_security TO false", &[Weakens("row_security")]),
        ("set ROW_SECURITY = 0", &[Weakens("row_security")]),
        ("SET row_security = 'of'", &[Weakens("row_security")]),
        ("SELECT set_config('row_security', 'no', false)", &[Weakens("row_security")]),
        ("SET row_security = on", &[Benign]),
        ("SET row_security TO 'TRUE'", &[Benign]),
    ];
    run(T);
}

#[test]
fn logging_and_auditing() {
    const T: &[Case] = &[
        ("SET log_statement = 'none'", &[Weakens("log_statement")]),
        (
            "SET log_min_duration_statement = -1",
            &[Weakens("log_min_duration_statement")],
        ),
        (
            "SET log_min_messages TO panic",
            &[Weakens("log_min_messages")],
        ),
        (
            "SET log_min_error_statement = panic",
            &[Weakens("log_min_error_statement")],
        ),
        ("SET log_duration = off", &[Weakens("log_duration")]),
        ("SET log_connections = off", &[Weakens("log_connections")]),
        (
            "SET log_disconnections = off",
            &[Weakens("log_disconnections")],
        ),
        (
            "SET LOCAL log_parameter_max_length = 0",
            &[Weakens("log_parameter_max_length")],
        ),
        // Any value counts, "stronger" ones too: the operator's logs are the operator's.
        ("SET log_statement = 'all'", &[Weakens("log_statement")]),
        ("SET pgaudit.log = 'none'", &[Weakens("pgaudit.log")]),
        (
            "SET \"PGAUDIT\".log_level = 'debug5'",
            &[Weakens("pgaudit.log_level")],
        ),
        (
            "SELECT set_config('pgaudit.role', '', false)",
            &[Weakens("pgaudit.role")],
        ),
        (
            "SELECT set_config('LOG_STATEMENT', 'none', true)",
            &[Weakens("log_statement")],
        ),
        ("SET log_statement TO DEFAULT", &[Benign]),
        ("RESET log_min_duration_statement", &[Benign]),
        ("SET client_min_messages = error", &[Benign]),
        ("SET logical_decoding_work_mem = '64MB'", &[Benign]),
        // Superuser switches that turn checks off.
        (
            "SET allow_system_table_mods = on",
            &[Weakens("allow_system_table_mods")],
        ),
        (
            "SET lo_compat_privileges TO true",
            &[Weakens("lo_compat_privileges")],
        ),
        ("SET lo_compat_privileges = off", &[Benign]),
        // statement_timeout = 0 and other resource settings are fine.
        (
            "SET statement_timeout = 0",
            &[Setting("statement_timeout"), Benign],
        ),
        ("SET lock_timeout = 0", &[Benign]),
        ("SET work_mem = '64MB'", &[Benign]),
    ];
    run(T);
}

#[test]
fn read_only_transactions() {
    const T: &[Case] = &[
        (
            "SET default_transaction_read_only = off",
            &[Weakens("default_transaction_read_only")],
        ),
        (
            "SET default_transaction_read_only TO 'f'",
            &[Weakens("default_transaction_read_only")],
        ),
        (
            "SET transaction_read_only = off",
            &[Weakens("transaction_read_only")],
        ),
        (
            "SELECT set_config('default_transaction_read_only', 'off', false)",
            &[Weakens("default_transaction_read_only")],
        ),
        (
            "SET TRANSACTION READ WRITE",
            &[Class("transaction"), Weakens("transaction_read_only")],
        ),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
            &[Weakens("default_transaction_read_only")],
        ),
        (
            "BEGIN READ WRITE",
            &[
                Class("transaction"),
                Command("BEGIN"),
                Weakens("transaction_read_only"),
            ],
        ),
        (
            "start transaction isolation level serializable, read write",
            &[
                Command("START TRANSACTION"),
                Weakens("transaction_read_only"),
            ],
        ),
        (
            "BEGIN; SET TRANSACTION READ WRITE; UPDATE t SET a = 1 WHERE id = 1; COMMIT",
            &[
                Count(4),
                At(0),
                Benign,
                At(1),
                Weakens("transaction_read_only"),
                At(2),
                Benign,
            ],
        ),
        ("SET default_transaction_read_only = on", &[Benign]),
        ("SET transaction_read_only TO true", &[Benign]),
        ("BEGIN READ ONLY", &[Benign]),
        ("BEGIN", &[Benign]),
        ("BEGIN ISOLATION LEVEL REPEATABLE READ", &[Benign]),
        ("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", &[Benign]),
        (
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
            &[Benign],
        ),
        ("RESET default_transaction_read_only", &[Benign]),
        ("RESET ALL", &[NoWeakening]),
        ("DISCARD ALL", &[NoWeakening]),
    ];
    run(T);
}

#[test]
fn stored_settings_and_code() {
    const T: &[Case] = &[
        // Stored for a role, database or the server: every change counts, RESET too.
        ("ALTER ROLE app SET session_replication_role = replica",
            &[Danger("settings"), Weakens("session_replication_role")]),
        ("ALTER DATABASE app SET row_security = off", &[Danger("settings"), Weakens("row_security")]),
        ("ALTER ROLE app RESET log_statement", &[Weakens("log_statement")]),
        ("ALTER ROLE app IN DATABASE app RESET ALL", &[Weakens("*")]),
        ("ALTER ROLE app SET log_statement = 'all'", &[Weakens("log_statement")]),
        ("ALTER SYSTEM SET log_statement = 'none'", &[AlterSystem, Weakens("log_statement")]),
        ("ALTER SYSTEM RESET pgaudit.log", &[AlterSystem, Weakens("pgaudit.log")]),
        ("ALTER ROLE app SET statement_timeout = 0", &[Danger("settings"), NoWeakening]),
        ("SELECT set_config(current_user || '.x', 'y', false)", &[Weakens("*")]),
        // Code the statement runs now, or creates to run later.
        ("DO $$ BEGIN SET session_replication_role = replica; DELETE FROM t WHERE id = 1; END $$",
            &[Class("call_do"), NotOpaque, Weakens("session_replication_role")]),
        ("DO $$ BEGIN PERFORM set_config('row_security', 'off', true); END $$",
            &[NotOpaque, Weakens("row_security")]),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN SET log_statement = 'none'; END $$",
            &[NotOpaque, Weakens("log_statement")]),
        ("CREATE FUNCTION f() RETURNS void LANGUAGE sql AS 'SELECT set_config(''session_replication_role'', ''replica'', true)'",
            &[NotOpaque, Weakens("session_replication_role")]),
        // SET clauses stored on a routine are in force whenever it runs.
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET session_replication_role = replica AS 'SELECT 1'",
            &[Command("CREATE FUNCTION"), NotOpaque, Weakens("session_replication_role")]),
        ("create procedure p() language sql set \"row_security\" to off as 'select 1'",
            &[NotOpaque, Weakens("row_security")]),
        ("ALTER FUNCTION f() SET row_security = off", &[Command("ALTER FUNCTION"), NotOpaque, Weakens("row_security")]),
        ("ALTER ROUTINE f RESET ALL", &[NotOpaque, Weakens("*")]),
        ("ALTER PROCEDURE p() RESET log_statement", &[NotOpaque, Weakens("log_statement")]),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = pg_catalog, public AS 'SELECT 1'",
            &[NotOpaque, NoWeakening, Setting("search_path")]),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql SET role = postgres AS 'SELECT 1'",
            &[NotOpaque, RoleSwitch]),
        ("ALTER FUNCTION f() SET search_path = public", &[NotOpaque, NoWeakening]),
        ("ALTER FUNCTION f() SET work_mem FROM CURRENT", &[NotOpaque, NoWeakening]),
        ("ALTER FUNCTION f() IMMUTABLE", &[NotOpaque, NoWeakening]),
    ];
    run(T);
}

/// A routine's SET clause does not change this session's search path.
#[test]
fn routine_settings_leave_the_session_alone() {
    let sql = "CREATE FUNCTION f() RETURNS int LANGUAGE sql SET search_path = app AS 'SELECT 1'";
    let a = sql::analyze(sql, &crate::harness::ctx());
    let f = &a.statements[0];
    assert_eq!(f.session.search_path, None, "{f:?}");
    assert!(!f.session.local);
}

-- Introspection and monitoring queries people type by hand (and tools such as DBeaver or
-- pgAdmin send in similar shapes): system views read directly, without psql's wrapping.

-- @query pg_stat_activity
SELECT * FROM pg_stat_activity;

-- @query pg_stat_activity, qualified, filtered
SELECT pid, usename, application_name, state, query, now() - query_start AS running_for
FROM pg_catalog.pg_stat_activity
WHERE state <> 'idle' AND pid <> pg_backend_pid()
ORDER BY query_start;

-- @query information_schema.columns
SELECT * FROM information_schema.columns WHERE table_name = 'users';

-- @query information_schema.columns, typed
SELECT column_name, data_type, is_nullable, column_default
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = 'users'
ORDER BY ordinal_position;

-- @query information_schema.tables
SELECT table_schema, table_name, table_type FROM information_schema.tables
WHERE table_schema NOT IN ('pg_catalog', 'information_schema');

-- @query information_schema foreign keys
SELECT tc.constraint_name, kcu.column_name, ccu.table_name AS foreign_table,
       ccu.column_name AS foreign_column
FROM information_schema.table_constraints tc
JOIN information_schema.key_column_usage kcu
  ON tc.constraint_name = kcu.constraint_name AND tc.table_schema = kcu.table_schema
JOIN information_schema.constraint_column_usage ccu
  ON ccu.constraint_name = tc.constraint_name AND ccu.table_schema = tc.table_schema
WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_name = 'users';

-- @query information_schema views, routines, schemata
SELECT v.table_name, v.view_definition, r.routine_name, s.schema_name
FROM information_schema.views v, information_schema.routines r, information_schema.schemata s
WHERE v.table_schema = s.schema_name AND r.routine_schema = s.schema_name;

-- @query information_schema, unqualified through the path
SELECT table_name FROM information_schema.tables t
WHERE EXISTS (SELECT 1 FROM information_schema.columns c WHERE c.table_name = t.table_name);

-- @query pg_roles, pg_user
SELECT r.rolname, r.rolsuper, r.rolcanlogin, u.usename
FROM pg_roles r LEFT JOIN pg_user u ON u.usesysid = r.oid;

-- @query pg_tables, pg_views, pg_matviews, pg_indexes
SELECT t.schemaname, t.tablename, t.tableowner, i.indexname, i.indexdef
FROM pg_tables t LEFT JOIN pg_indexes i USING (schemaname, tablename)
UNION ALL
SELECT schemaname, viewname, viewowner, NULL, definition FROM pg_views
UNION ALL
SELECT schemaname, matviewname, matviewowner, NULL, definition FROM pg_matviews;

-- @query pg_settings, pg_sequences, pg_locks
SELECT s.name, s.setting, q.sequencename, l.mode
FROM pg_settings s, pg_sequences q, pg_locks l
WHERE s.name = 'search_path';

-- @query pg_stat_user_tables with sizes
SELECT relname, n_live_tup, seq_scan, pg_size_pretty(pg_total_relation_size(relid)) AS size
FROM pg_stat_user_tables ORDER BY pg_total_relation_size(relid) DESC;

-- @query session information
SELECT current_user, session_user, current_database(), current_schema(), version(),
       pg_backend_pid(), inet_server_addr(), inet_server_port(), pg_postmaster_start_time(),
       current_setting('search_path'), pg_is_in_recovery(), txid_current_if_assigned();

-- @query object descriptions
SELECT pg_get_viewdef('user_emails'::regclass, true),
       pg_get_functiondef('add1'::regproc),
       obj_description('users'::regclass, 'pg_class'),
       has_table_privilege('users', 'SELECT'),
       pg_get_userbyid(10),
       format_type(25, NULL),
       pg_describe_object('pg_class'::regclass, 'users'::regclass, 0),
       pg_identify_object('pg_class'::regclass, 'users'::regclass, 0);

-- @query monitoring functions in FROM
SELECT a.pid, a.query, s.name, s.setting, k.word
FROM pg_stat_get_activity(NULL) a,
     pg_show_all_settings() s,
     pg_get_keywords() k
WHERE k.catcode = 'R';

-- @query ACLs expanded
SELECT c.relname, x.grantee::regrole, x.privilege_type, x.is_grantable
FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) x
WHERE c.relname = 'users';

-- @query SHOW
SHOW search_path;

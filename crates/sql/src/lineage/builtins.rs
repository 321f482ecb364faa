//! Built-in functions and operators whose result depends only on their arguments (string,
//! math, date/time, JSON, array, aggregate and window functions), plus read-only catalog and
//! session information functions (`version()`, `pg_get_viewdef`, `has_table_privilege`,
//! `nextval`) whose hidden inputs hold no column values. Calls to anything else —
//! user functions, extensions, and built-ins with effects or hidden inputs (`set_config`,
//! `pg_notify`, `pg_sleep`, `pg_read_file`, `lo_*`, `dblink`, `ts_stat`) — are reported as
//! unknown, so the caller can refuse them when sensitive values are involved.
//!
//! Names match unqualified or `pg_catalog.`-qualified: PostgreSQL searches `pg_catalog`
//! before the path unless the path lists it later, so an unqualified `lower` is the
//! built-in. (A user function with the same name but a better-matching signature would
//! shadow it; that case is not detected.)

use pg_query::protobuf::Node;
use pg_query::NodeEnum as N;

/// Sorted (byte order) for binary search; a unit test checks the order.
#[rustfmt::skip]
pub(crate) const FUNCTIONS: &[&str] = &[
    "abbrev", "abs", "acos", "acosd", "acosh", "age", "any_value", "array_agg", "array_append",
    "array_cat", "array_dims", "array_fill", "array_length", "array_lower", "array_ndims",
    "array_position", "array_positions", "array_prepend", "array_remove", "array_replace",
    "array_reverse", "array_sample", "array_shuffle", "array_sort", "array_to_json",
    "array_to_string", "array_to_tsvector", "array_upper", "ascii", "asin", "asind", "asinh",
    "atan", "atan2", "atan2d", "atand", "atanh", "avg", "bit_and", "bit_count", "bit_length",
    "bit_or", "bit_xor", "bool", "bool_and", "bool_or", "bound_box", "box", "bpchar",
    "broadcast", "btrim", "cardinality", "casefold", "cbrt", "ceil", "ceiling", "char",
    "char_length", "character_length", "chr", "circle", "clock_timestamp", "col_description",
    "concat", "concat_ws", "convert", "convert_from", "convert_to", "corr", "cos", "cosd",
    "cosh", "cot", "cotd", "count", "covar_pop", "covar_samp", "cume_dist", "current_database",
    "current_date", "current_schema", "current_schemas", "current_setting", "current_time",
    "current_timestamp", "currval", "date", "date_add", "date_bin", "date_part",
    "date_subtract", "date_trunc", "daterange", "decode", "degrees", "dense_rank", "diameter",
    "div", "encode", "erf", "erfc", "every", "exp", "extract", "factorial", "family",
    "first_value", "float4", "float8", "floor", "format", "format_type", "gamma", "gcd",
    "gen_random_uuid", "generate_series", "generate_subscripts", "get_bit", "get_byte",
    "greatest", "has_column_privilege", "has_database_privilege", "has_function_privilege",
    "has_schema_privilege", "has_table_privilege", "hashtext", "height", "host", "hostmask",
    "inet_client_addr", "inet_client_port", "inet_merge", "inet_same_family",
    "inet_server_addr", "inet_server_port", "initcap", "int2", "int2range", "int4", "int4range",
    "int8", "int8range", "interval", "is_normalized", "isclosed", "isempty", "isfinite",
    "isopen", "json_agg", "json_agg_strict", "json_array_elements", "json_array_elements_text",
    "json_array_length", "json_build_array", "json_build_object", "json_each", "json_each_text",
    "json_extract_path", "json_extract_path_text", "json_object", "json_object_agg",
    "json_object_agg_strict", "json_object_agg_unique", "json_object_agg_unique_strict",
    "json_object_keys", "json_populate_record", "json_populate_recordset", "json_scalar",
    "json_serialize", "json_strip_nulls", "json_to_record", "json_to_recordset", "json_typeof",
    "jsonb_agg", "jsonb_agg_strict", "jsonb_array_elements", "jsonb_array_elements_text",
    "jsonb_array_length", "jsonb_build_array", "jsonb_build_object", "jsonb_concat",
    "jsonb_contained", "jsonb_contains", "jsonb_delete", "jsonb_each", "jsonb_each_text",
    "jsonb_exists", "jsonb_extract_path", "jsonb_extract_path_text", "jsonb_insert",
    "jsonb_object", "jsonb_object_agg", "jsonb_object_agg_strict", "jsonb_object_agg_unique",
    "jsonb_object_agg_unique_strict", "jsonb_object_keys", "jsonb_path_exists",
    "jsonb_path_match", "jsonb_path_query", "jsonb_path_query_array", "jsonb_path_query_first",
    "jsonb_populate_record", "jsonb_populate_recordset", "jsonb_pretty", "jsonb_set",
    "jsonb_set_lax", "jsonb_strip_nulls", "jsonb_to_record", "jsonb_to_recordset",
    "jsonb_typeof", "justify_days", "justify_hours", "justify_interval", "lag", "last_value",
    "lastval", "lcm", "lead", "least", "left", "length", "lgamma", "like_escape", "ln",
    "localtime", "localtimestamp", "log", "log10", "lower", "lower_inc", "lower_inf", "lpad",
    "lseg", "ltrim", "macaddr8_set7bit", "make_date", "make_interval", "make_time",
    "make_timestamp", "make_timestamptz", "masklen", "max", "md5", "merge_action", "min",
    "min_scale", "mod", "mode", "multirange", "name", "netmask", "network", "nextval",
    "normalize", "now", "npoints", "nth_value", "ntile", "num_nonnulls", "num_nulls", "numeric",
    "numnode", "numrange", "obj_description", "octet_length", "overlaps", "overlay",
    "parse_ident", "path", "percent_rank", "percentile_cont", "percentile_disc",
    "pg_backend_pid", "pg_char_to_encoding", "pg_client_encoding", "pg_collation_for",
    "pg_conf_load_time", "pg_current_xact_id", "pg_database_size", "pg_encoding_to_char",
    "pg_function_is_visible", "pg_get_constraintdef", "pg_get_expr",
    "pg_get_function_arguments", "pg_get_function_identity_arguments", "pg_get_function_result",
    "pg_get_functiondef", "pg_get_indexdef", "pg_get_partkeydef", "pg_get_ruledef",
    "pg_get_serial_sequence", "pg_get_statisticsobjdef", "pg_get_triggerdef", "pg_get_userbyid",
    "pg_get_viewdef", "pg_has_role", "pg_indexes_size", "pg_is_in_recovery", "pg_jit_available",
    "pg_postmaster_start_time", "pg_relation_size", "pg_size_pretty", "pg_table_is_visible",
    "pg_table_size", "pg_total_relation_size", "pg_trigger_depth", "pg_type_is_visible",
    "pg_typeof", "phraseto_tsquery", "pi", "plainto_tsquery", "point", "polygon", "popen",
    "position", "pow", "power", "querytree", "quote_ident", "quote_literal", "quote_nullable",
    "radians", "radius", "random", "random_normal", "range_agg", "range_intersect_agg",
    "range_merge", "rank", "regexp_count", "regexp_instr", "regexp_like", "regexp_match",
    "regexp_matches", "regexp_replace", "regexp_split_to_array", "regexp_split_to_table",
    "regexp_substr", "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2",
    "regr_slope", "regr_sxx", "regr_sxy", "regr_syy", "repeat", "replace", "reverse", "right",
    "round", "row_number", "row_security_active", "row_to_json", "rpad", "rtrim", "scale",
    "set_bit", "set_byte", "set_masklen", "setweight", "sha224", "sha256", "sha384", "sha512",
    "shobj_description", "sign", "similar_escape", "similar_to_escape", "sin", "sind", "sinh",
    "slope", "split_part", "sqrt", "starts_with", "statement_timestamp", "stddev", "stddev_pop",
    "stddev_samp", "string_agg", "string_to_array", "string_to_table", "strip", "strpos",
    "substr", "substring", "sum", "system_user", "tan", "tand", "tanh", "text", "timeofday",
    "timezone", "to_ascii", "to_bin", "to_char", "to_date", "to_hex", "to_json", "to_jsonb",
    "to_number", "to_oct", "to_regclass", "to_regnamespace", "to_regoper", "to_regoperator",
    "to_regproc", "to_regprocedure", "to_regrole", "to_regtype", "to_timestamp", "to_tsquery",
    "to_tsvector", "transaction_timestamp", "translate", "trim", "trim_array", "trim_scale",
    "trunc", "ts_delete", "ts_filter", "ts_headline", "ts_rank", "ts_rank_cd", "tsquery_phrase",
    "tsrange", "tstzrange", "tsvector_to_array", "txid_current", "unistr", "unnest", "upper",
    "upper_inc", "upper_inf", "uuid_extract_timestamp", "uuid_extract_version", "var_pop",
    "var_samp", "varchar", "variance", "version", "websearch_to_tsquery", "width",
    "width_bucket", "xml_is_well_formed", "xml_is_well_formed_content",
    "xml_is_well_formed_document", "xmlagg", "xmlcomment", "xmlconcat", "xmltext", "xpath",
    "xpath_exists",
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

/// Known shapes of built-in set-returning functions with more than one output column or
/// an output column not named after the function.
pub(crate) fn srf_columns(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "json_each" | "json_each_text" | "jsonb_each" | "jsonb_each_text" => &["key", "value"],
        "json_array_elements"
        | "json_array_elements_text"
        | "jsonb_array_elements"
        | "jsonb_array_elements_text" => &["value"],
        _ => return None,
    })
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

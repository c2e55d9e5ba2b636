package fingerprint

import "strings"

// Volatility is a function's volatility class, as pg_proc.provolatile
// spells it.
type Volatility byte

const (
	Immutable Volatility = 'i' // same arguments, same result, forever
	Stable    Volatility = 's' // same result within one statement (now(), to_char)
	Volatile  Volatility = 'v' // may change at every call or have side effects (random(), nextval())
)

// String returns "immutable", "stable" or "volatile".
func (v Volatility) String() string {
	switch v {
	case Immutable:
		return "immutable"
	case Stable:
		return "stable"
	case Volatile:
		return "volatile"
	}
	return "unknown"
}

// VolatilityMap gives the volatility of functions by name, as read from the
// warehouse catalog (pg_proc.provolatile joined with pg_namespace). Keys
// are lower-case unless the name needs quoting, and come in two forms:
// "schema.name" for one schema's function, and "name" for unqualified calls
// and calls qualified with pg_catalog. For a name with several overloads,
// or found in several schemas, record the most volatile of them.
// A function the map does not know is treated as volatile.
type VolatilityMap map[string]Volatility

// lookup returns the volatility of a call to schema.name.
func (m VolatilityMap) lookup(schema, name string) (Volatility, bool) {
	if schema != "" {
		if v, ok := m[schema+"."+name]; ok {
			return v, true
		}
		if schema != "pg_catalog" {
			return 0, false
		}
	}
	v, ok := m[name]
	return v, ok
}

// BuiltinVolatility returns a fresh copy of the built-in volatility list:
// the PostgreSQL functions BI tools and drivers commonly call, plus the
// volatile functions of Snowflake and DuckDB. It serves warehouses whose
// catalog cannot be read; extend it with the warehouse's own functions.
func BuiltinVolatility() VolatilityMap {
	m := make(VolatilityMap, len(builtinImmutable)+len(builtinStable)+len(builtinVolatile))
	for _, list := range []struct {
		names string
		v     Volatility
	}{{builtinImmutable, Immutable}, {builtinStable, Stable}, {builtinVolatile, Volatile}} {
		for _, name := range strings.Fields(list.names) {
			m[name] = list.v
		}
	}
	return m
}

// builtin is shared by analyzers built without a map. Never modified.
var builtin = BuiltinVolatility()

const builtinImmutable = `
abs acos acosd asin asind atan atan2 atand cbrt ceil ceiling cos cosd cot degrees div exp
factorial floor gcd lcm ln log log10 mod pi power pow radians round scale sign sin sind sqrt
tan tand trunc width_bucket min_scale trim_scale erf erfc
count sum avg min max stddev stddev_pop stddev_samp variance var_pop var_samp corr covar_pop
covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy
regr_syy bit_and bit_or bit_xor bool_and bool_or every array_agg string_agg percentile_cont
percentile_disc mode any_value range_agg range_intersect_agg xmlagg
row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
ascii bit_length btrim char_length character_length chr initcap left length lower lpad ltrim
md5 octet_length overlay position repeat replace reverse right rpad rtrim split_part strpos
substr substring translate upper starts_with to_hex to_bin to_oct sha224 sha256 sha384 sha512
encode decode normalize is_normalized unistr quote_ident regexp_count regexp_instr regexp_like
regexp_match regexp_matches regexp_replace regexp_split_to_array regexp_split_to_table
regexp_substr string_to_array string_to_table casefold
array_append array_cat array_dims array_fill array_length array_lower array_ndims array_position
array_positions array_prepend array_remove array_replace array_upper cardinality
trim_array unnest generate_subscripts array_reverse array_sort
json_array_elements json_array_elements_text json_array_length json_each json_each_text
json_extract_path json_extract_path_text json_object_keys json_typeof json_strip_nulls
jsonb_array_elements jsonb_array_elements_text jsonb_array_length jsonb_each jsonb_each_text
jsonb_extract_path jsonb_extract_path_text jsonb_object_keys jsonb_typeof jsonb_strip_nulls
jsonb_pretty jsonb_set jsonb_set_lax jsonb_insert jsonb_path_exists jsonb_path_match
jsonb_path_query jsonb_path_query_array jsonb_path_query_first jsonb_concat jsonb_contains
jsonb_exists json_scalar
make_date make_time make_timestamp make_interval date_bin justify_days justify_hours
justify_interval isfinite overlaps
int2 int4 int8 float4 float8 numeric bool varchar bpchar interval
ts_rank ts_rank_cd tsvector_to_array numrange int4range int8range daterange tsrange
lower_inc upper_inc lower_inf upper_inf isempty range_merge
pg_size_pretty pg_size_bytes inet_ntoa host masklen network broadcast family abbrev
hll_hash_any
grouping
iff nvl nvl2 zeroifnull nullifzero div0 ifnull decode equal_null flatten split split_to_table
parse_json try_parse_json object_construct object_construct_keep_null array_construct
array_size array_contains array_slice array_flatten array_distinct array_compact get get_path
object_keys listagg count_if sum_if avg_if approx_count_distinct approx_percentile median
ratio_to_report hash md5_hex sha2 try_to_number try_to_decimal try_to_double to_varchar
to_boolean to_decimal to_double to_array to_object to_variant as_varchar as_number
date_from_parts time_from_parts timestamp_from_parts dateadd datediff timeadd timediff
timestampadd timestampdiff last_day next_day previous_day dayname monthname year quarter month
week day hour minute second dayofweek dayofyear weekofyear boolor_agg booland_agg bitand bitor
list_value list_aggregate list_transform list_filter list_sort list_distinct list_contains
list_has list_concat list_extract array_value struct_pack struct_extract string_split
regexp_extract regexp_full_match epoch epoch_ms epoch_us make_timestamp date_diff date_sub
datepart datetrunc string_agg arg_max arg_min max_by min_by histogram quantile quantile_cont
quantile_disc approx_quantile fsum favg product first last range
`

const builtinStable = `
now transaction_timestamp statement_timestamp current_date current_time current_timestamp
localtime localtimestamp age date_trunc date_part extract to_char to_date to_timestamp
to_number timezone date_add date_subtract make_timestamptz generate_series
date timestamp timestamptz time timetz text
concat concat_ws format quote_literal quote_nullable convert convert_from convert_to
to_json to_jsonb row_to_json array_to_json json_agg jsonb_agg json_object_agg jsonb_object_agg
json_build_object jsonb_build_object json_build_array jsonb_build_array json_object jsonb_object
json_populate_record jsonb_populate_record json_to_record jsonb_to_record json_to_recordset
jsonb_to_recordset jsonb_path_query_tz jsonb_path_exists_tz json_agg_strict jsonb_agg_strict
array_to_string to_tsvector to_tsquery plainto_tsquery phraseto_tsquery websearch_to_tsquery
ts_headline
current_user session_user current_role user current_schema current_schemas current_setting
current_catalog current_database current_query version pg_backend_pid inet_client_addr
inet_client_port inet_server_addr inet_server_port pg_my_temp_schema pg_is_other_temp_schema
pg_has_role has_table_privilege has_column_privilege has_any_column_privilege
has_database_privilege has_schema_privilege has_function_privilege has_sequence_privilege
has_type_privilege has_language_privilege has_tablespace_privilege has_foreign_data_wrapper_privilege
has_server_privilege has_parameter_privilege has_largeobject_privilege row_security_active
pg_table_is_visible pg_type_is_visible pg_function_is_visible pg_operator_is_visible
pg_opclass_is_visible pg_collation_is_visible pg_conversion_is_visible pg_ts_config_is_visible
pg_statistics_obj_is_visible
pg_get_expr pg_get_constraintdef pg_get_indexdef pg_get_viewdef pg_get_triggerdef
pg_get_functiondef pg_get_function_arguments pg_get_function_identity_arguments
pg_get_function_result pg_get_userbyid pg_get_serial_sequence pg_get_keywords
pg_get_partkeydef pg_get_partition_constraintdef pg_get_ruledef pg_get_statisticsobjdef
pg_get_publication_tables pg_get_indexdef pg_get_triggerdef pg_get_function_arg_default
format_type obj_description col_description shobj_description pg_encoding_to_char
pg_char_to_encoding pg_typeof pg_column_size pg_tablespace_location pg_relation_filenode
pg_relation_is_publishable pg_partition_tree pg_partition_root pg_partition_ancestors
pg_describe_object pg_identify_object pg_collation_for pg_get_catalog_foreign_keys
pg_index_column_has_property pg_index_has_property pg_indexam_has_property pg_options_to_table
pg_postmaster_start_time pg_conf_load_time txid_current_snapshot pg_current_snapshot
pg_get_serial_sequence array_to_tsvector regclass regtype regproc to_regclass to_regtype
to_regproc to_regnamespace to_regrole to_regtypemod
strftime strptime convert_timezone to_timestamp_ntz to_timestamp_ltz to_timestamp_tz
try_to_timestamp try_to_date current_region current_account current_warehouse
current_available_roles current_secondary_roles current_ip_address current_client
current_localtime current_localtimestamp get_current_time get_current_timestamp today
sysdate getdate systimestamp sysdatetime
`

const builtinVolatile = `
random random_normal setseed clock_timestamp timeofday nextval currval lastval setval
txid_current txid_current_if_assigned pg_current_xact_id pg_current_xact_id_if_assigned
pg_sleep pg_sleep_for pg_sleep_until pg_advisory_lock pg_advisory_lock_shared
pg_advisory_unlock pg_advisory_unlock_shared pg_advisory_unlock_all pg_try_advisory_lock
pg_try_advisory_lock_shared pg_advisory_xact_lock pg_advisory_xact_lock_shared
pg_try_advisory_xact_lock pg_try_advisory_xact_lock_shared set_config pg_notify
pg_cancel_backend pg_terminate_backend pg_reload_conf pg_rotate_logfile pg_switch_wal
pg_current_wal_lsn pg_current_wal_insert_lsn pg_last_wal_receive_lsn pg_last_wal_replay_lsn
pg_last_xact_replay_timestamp pg_is_in_recovery pg_relation_size pg_total_relation_size
pg_table_size pg_indexes_size pg_database_size pg_tablespace_size pg_stat_reset
pg_read_file pg_read_binary_file pg_ls_dir pg_stat_file lo_import lo_export lo_create
lo_unlink lo_open dblink dblink_exec gen_random_uuid uuid_generate_v1 uuid_generate_v4
uuidv4 uuidv7 pg_stat_get_activity pg_stat_statements pg_stat_statements_reset
pg_create_logical_replication_slot pg_drop_replication_slot pg_logical_slot_get_changes
pg_export_snapshot pg_backup_start pg_backup_stop query_to_xml table_to_xml
uuid_string uuid randstr uniform normal zipf seq1 seq2 seq4 seq8 last_query_id
current_session current_statement current_transaction system$wait currval
`

// timeFuncs are the functions whose answer depends on the current time.
// They may be cached (a TTL bounds how old their "now" gets), but the
// analysis says so, so that a policy can forbid it.
var timeFuncs = setOf(`now transaction_timestamp statement_timestamp clock_timestamp timeofday
current_date current_time current_timestamp localtime localtimestamp
sysdate getdate systimestamp sysdatetime today get_current_time get_current_timestamp
current_localtime current_localtimestamp`)

// sessionFuncs are the functions whose answer depends on who runs them or
// on the session: their answers are never shared across users.
var sessionFuncs = setOf(`current_user session_user current_role user current_schema
current_schemas current_setting pg_backend_pid inet_client_addr inet_client_port
pg_my_temp_schema pg_is_other_temp_schema pg_has_role has_table_privilege has_column_privilege
has_any_column_privilege has_database_privilege has_schema_privilege has_function_privilege
has_sequence_privilege has_type_privilege has_language_privilege has_tablespace_privilege
has_foreign_data_wrapper_privilege has_server_privilege has_parameter_privilege
has_largeobject_privilege row_security_active pg_table_is_visible pg_type_is_visible
pg_function_is_visible pg_operator_is_visible pg_opclass_is_visible pg_collation_is_visible
pg_conversion_is_visible pg_ts_config_is_visible pg_statistics_obj_is_visible
current_account current_warehouse current_available_roles current_secondary_roles
current_ip_address current_client`)

// connectionFuncs answer from the warehouse connection or its transaction
// rather than from data and the settings in the key: the backend's pid,
// the addresses of the connection, the transaction's id and snapshot, the
// backend's temporary schema, channels it listens on, when it loaded its
// configuration. pg_proc calls most of them stable, so volatility alone
// would let them be cached: a cached pid is another, perhaps dead,
// backend's, and pg_terminate_backend of it stops nothing. Never cached,
// whatever the catalog says; so are the statistics functions
// (pg_stat_get_*), which read the server's live counters.
var connectionFuncs = setOf(`pg_backend_pid inet_client_addr inet_client_port
inet_server_addr inet_server_port pg_current_xact_id pg_current_xact_id_if_assigned
txid_current txid_current_if_assigned txid_current_snapshot pg_current_snapshot
pg_export_snapshot pg_my_temp_schema pg_is_other_temp_schema pg_trigger_depth
pg_listening_channels pg_notification_queue_usage pg_conf_load_time current_query
pg_blocking_pids pg_safe_snapshot_blocking_pids pg_get_backend_memory_contexts
pg_log_backend_memory_contexts pg_jit_available lastval currval pg_xact_status txid_status`)

// connectionBound reports whether a catalog function's answer depends on
// the warehouse connection that runs it (see connectionFuncs).
func connectionBound(name string) bool {
	return connectionFuncs[name] || strings.HasPrefix(name, "pg_stat_get_")
}

// catalogTable reports whether a table read, as written, is a system
// catalog or information_schema view.
func catalogTable(t string) bool {
	t = strings.Trim(strings.ToLower(t), `"`)
	return strings.HasPrefix(t, "pg_") || strings.HasPrefix(t, "information_schema.")
}

// catalogType reports whether a cast to the type looks a name up in the
// catalogs: the object identifier types ('orders'::regclass).
func catalogType(name string) bool {
	name = strings.ToLower(name)
	return strings.HasPrefix(name, "reg") && name != "regexp"
}

// catalogFunc reports whether a catalog function's answer depends on the
// system catalogs: name lookups and descriptions of objects.
func catalogFunc(name string) bool {
	for _, p := range []string{"to_reg", "pg_get_", "format_type", "obj_description", "col_description",
		"shobj_description", "pg_typeof", "pg_describe_object", "pg_identify_object", "pg_relation_is_",
		"pg_index_", "pg_indexam_", "pg_column_is_", "pg_options_to_table", "pg_partition_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return strings.HasSuffix(name, "_is_visible") || strings.HasSuffix(name, "_privilege")
}

// sessionLockFuncs take advisory locks that outlive the transaction: the
// session must keep its warehouse connection.
var sessionLockFuncs = setOf(`pg_advisory_lock pg_advisory_lock_shared pg_try_advisory_lock
pg_try_advisory_lock_shared`)

// keySettings are the session settings that can change a statement's
// answer; the proxy passes their values to Key. Names are lower-case.
var keySettings = setOf(`search_path timezone datestyle intervalstyle extra_float_digits
bytea_output client_encoding standard_conforming_strings role session_authorization
lc_monetary lc_numeric lc_time default_text_search_config array_nulls backslash_quote
transform_null_equals xmlbinary xmloption quote_all_identifiers row_security
timezone_abbreviations`)

// harmlessSettings are settings known not to change answers: setting them
// neither pins a session nor enters keys.
var harmlessSettings = setOf(`application_name statement_timeout lock_timeout
idle_in_transaction_session_timeout idle_session_timeout transaction_timeout work_mem
maintenance_work_mem hash_mem_multiplier temp_buffers random_page_cost seq_page_cost
cpu_tuple_cost cpu_index_tuple_cost cpu_operator_cost parallel_setup_cost parallel_tuple_cost
effective_cache_size effective_io_concurrency jit jit_above_cost jit_inline_above_cost
jit_optimize_above_cost max_parallel_workers_per_gather max_parallel_workers geqo
geqo_threshold join_collapse_limit from_collapse_limit cursor_tuple_fraction
constraint_exclusion default_statistics_target plan_cache_mode client_min_messages
log_min_duration_statement log_statement log_min_messages lc_messages synchronous_commit
commit_delay lock_timeout deadlock_timeout statement_timeout vacuum_cost_delay
application_name trace_notify default_transaction_isolation default_transaction_read_only
default_transaction_deferrable`)

func setOf(names string) map[string]bool {
	m := make(map[string]bool)
	for _, n := range strings.Fields(names) {
		m[n] = true
	}
	return m
}

// IsKeySetting reports whether a session setting can change answers, so
// that its value must be part of cache keys. name is case-insensitive.
func IsKeySetting(name string) bool {
	return keySettings[strings.ToLower(name)]
}

// KeySettings returns the names of the settings IsKeySetting accepts,
// lower-case and sorted.
func KeySettings() []string {
	out := make([]string, 0, len(keySettings))
	for n := range keySettings {
		out = append(out, n)
	}
	sortStrings(out)
	return out
}

// isKnownSetting reports whether setting name for the session can be
// handled without pinning: it is either in the key or harmless.
func isKnownSetting(name string) bool {
	name = strings.ToLower(name)
	return keySettings[name] || harmlessSettings[name] || strings.HasPrefix(name, "enable_") ||
		strings.HasPrefix(name, "sqlcached.") // labels: sqlcached.dashboard, sqlcached.chart
}

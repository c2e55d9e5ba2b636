// Package fingerprint decides what a SQL text is, as far as caching goes:
// its statements and their kinds, whether each may be cached and why not,
// the tables it reads and writes, the functions it calls, whether its
// answer depends on the time or on the user, whether it pins a session to
// one warehouse connection, the labels BI tools put in its comments, a
// literal-free shape id, and the key its answer is stored under.
//
// # How a text flows through
//
// An Analyzer looks the exact text up in a bounded memo first: a
// dashboard's repeat costs one hash and one map look-up, no parse and no
// allocation. On a miss the text is lexed once (comments become Labels and
// Hints; tokens become the normalised key text) and parsed with
// PostgreSQL's own parser (pg_query). Each statement's tree is walked once:
// relations are read or written depending on where they appear, CTE names
// are kept apart from tables by scope, function calls are judged against
// the volatility map. Texts the parser rejects (Snowflake's QUALIFY,
// FLATTEN and : paths, DuckDB's extensions) go to a lexer-only fallback
// that fails safe: only a lone, plain SELECT or WITH that calls nothing
// known to be volatile may be cached.
//
// # What is never cacheable
//
// Writes, DDL, transaction control, session settings and utility
// statements; SELECT ... FOR UPDATE/SHARE; SELECT INTO; data-modifying
// CTEs; statements on temporary tables (pg_temp.x, tables created as TEMP
// earlier in the text, and the session's own, given to AnalyzeSession);
// calls to volatile functions, where a function the volatility map does
// not know is volatile; current_setting() of a setting outside the key;
// TABLESAMPLE without REPEATABLE; live catalog views such as
// pg_stat_activity; and text carrying a /* sqlcached:nocache */ hint.
//
// Stable functions of time (now(), current_date, 'today'::date) stay
// cacheable, since a TTL bounds how old their "now" gets, and set
// Analysis.UsesTime so that a policy may forbid them. Functions of the
// user or session (current_user, current_setting, has_table_privilege,
// pg_table_is_visible) set Analysis.PerUser: such an answer is never
// shared across users, whatever the policy says.
//
// # Volatility
//
// No I/O happens here. The executor reads pg_proc.provolatile from the
// warehouse and hands it over as a VolatilityMap, in Config and later with
// Analyzer.SetVolatility (after DDL), which drops the memoised analyses
// that depended on the old map. Warehouses without such a catalog use
// BuiltinVolatility.
//
// # Keys
//
// Key hashes (xxh3, 128 bits) a KeyInput: backend, database, user unless
// the answer is shared, the normalised text, parameter types, formats and
// values, result formats and the result-affecting session settings. The
// normalised text drops comments (so labels never split a cache entry),
// collapses whitespace and lower-cases keywords and unquoted identifiers,
// but keeps every literal and quoted identifier byte for byte. Where the
// lexer cannot be sure of a token's extent (a backslash in a '...' string,
// whose meaning depends on standard_conforming_strings and on the dialect;
// nested comments; unterminated quotes) it keeps the raw text instead:
// a missed hit is acceptable, a wrong answer is not.
//
// # Sharing
//
// An *Analysis is shared by every caller that analyses the same text:
// treat it, its slices and its maps as read-only.
package fingerprint

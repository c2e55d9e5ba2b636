package fingerprint

import (
	"sort"
	"strconv"
	"strings"
)

// Kind is what a statement does, as far as caching and transaction
// tracking are concerned.
type Kind uint8

const (
	// KindUnknown is a statement the analyzer does not understand
	// (EXECUTE of a prepared statement, a dialect's unknown command).
	// Treat it as a write.
	KindUnknown     Kind = iota
	KindRead             // SELECT, VALUES, TABLE, read-only WITH
	KindUtility          // SHOW, EXPLAIN, LISTEN, DECLARE, FETCH, PREPARE, VACUUM, LOCK, COPY ... TO
	KindTransaction      // BEGIN, COMMIT, ROLLBACK, SAVEPOINT, SET TRANSACTION
	KindSession          // SET, RESET, DISCARD
	KindWrite            // INSERT, UPDATE, DELETE, MERGE, TRUNCATE, COPY ... FROM, CALL, DO, REFRESH
	KindDDL              // CREATE, ALTER, DROP, GRANT, REVOKE, COMMENT, SELECT INTO
)

var kindNames = [...]string{"unknown", "read", "utility", "transaction", "session", "write", "ddl"}

// String returns the kind's lower-case name, as the corpus files spell it.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// weight orders kinds for an analysis of several statements: the one that
// matters most to the proxy wins.
func (k Kind) weight() int {
	switch k {
	case KindRead:
		return 0
	case KindUtility:
		return 1
	case KindTransaction:
		return 2
	case KindSession:
		return 3
	case KindWrite:
		return 4
	case KindDDL:
		return 5
	}
	return 6
}

// TxOp is the operation of a transaction-control statement.
type TxOp uint8

const (
	TxBegin            TxOp = iota + 1 // BEGIN, START TRANSACTION
	TxCommit                           // COMMIT, END
	TxRollback                         // ROLLBACK, ABORT
	TxSavepoint                        // SAVEPOINT name
	TxRelease                          // RELEASE [SAVEPOINT] name
	TxRollbackTo                       // ROLLBACK TO [SAVEPOINT] name
	TxPrepare                          // PREPARE TRANSACTION 'gid'
	TxCommitPrepared                   // COMMIT PREPARED 'gid'
	TxRollbackPrepared                 // ROLLBACK PREPARED 'gid'
	TxSetTransaction                   // SET TRANSACTION ... (the current transaction's characteristics)
)

// Transaction describes a transaction-control statement.
type Transaction struct {
	Op TxOp
	// Isolation is the isolation level given, lower-case ("read committed",
	// "repeatable read", "serializable", "read uncommitted"), or "" when the
	// statement does not set one.
	Isolation  string
	ReadOnly   bool // READ ONLY given
	ReadWrite  bool // READ WRITE given
	Deferrable bool // DEFERRABLE given
	// NotDeferrable is NOT DEFERRABLE given.
	NotDeferrable bool
	Chain         bool   // COMMIT AND CHAIN, ROLLBACK AND CHAIN
	Savepoint     string // savepoint name, or the prepared transaction's gid
}

// SetCommand describes SET, RESET and DISCARD ALL.
type SetCommand struct {
	// Name is the setting, lower-case: "timezone" for SET TIME ZONE,
	// "client_encoding" for SET NAMES, "search_path" for SET SCHEMA,
	// "role", "session_authorization", "session characteristics".
	// It is "" for RESET ALL and DISCARD ALL.
	Name string
	// Value is the value given, without quotes; list items are joined by
	// ", " (SET search_path TO "$user", public gives "$user, public").
	// "" when the setting is reset.
	Value string
	Local bool // SET LOCAL: lasts until the end of the transaction
	Reset bool // RESET, SET ... TO DEFAULT, RESET ALL, DISCARD ALL
	Key   bool // the setting changes answers: its value belongs in cache keys
	Known bool // the proxy can carry it across connections (in the key, or harmless)
	// Characteristics are those SET SESSION CHARACTERISTICS gives. With
	// one, Name is the setting it changes (default_transaction_isolation,
	// default_transaction_read_only, default_transaction_deferrable);
	// with several, Name is "session characteristics".
	Characteristics *Transaction
}

// Cursor describes DECLARE name [BINARY] [SCROLL] CURSOR [WITH HOLD] FOR
// query.
type Cursor struct {
	Name   string // as PostgreSQL's parser gives it
	Hold   bool   // WITH HOLD: outlives the transaction's commit
	Binary bool   // BINARY: rows in binary format
	Scroll bool   // SCROLL: may be read backwards
	// Query is the text after FOR, as sent.
	Query string
}

// Fetch describes FETCH and MOVE as PostgreSQL's parser reads them: NEXT
// is FORWARD 1, PRIOR BACKWARD 1, FIRST ABSOLUTE 1, LAST ABSOLUTE -1, a
// bare count FORWARD count.
type Fetch struct {
	Name      string // the cursor, as PostgreSQL's parser gives it
	Move      bool   // MOVE: positions without returning rows
	Direction FetchDirection
	Count     int64 // may be negative; see All
	All       bool  // ALL, FORWARD ALL, BACKWARD ALL
}

// FetchDirection is the direction of a FETCH or MOVE.
type FetchDirection uint8

const (
	FetchForward FetchDirection = iota
	FetchBackward
	FetchAbsolute
	FetchRelative
)

// Statement is one statement of an analysed text.
type Statement struct {
	Kind Kind
	// Command names the statement as PostgreSQL's command tags do:
	// "SELECT", "INSERT", "CREATE TABLE", "BEGIN", "SET".
	Command string
	// Text is the statement as sent, without the separating semicolon.
	Text string
	// Offset is where the statement starts in the analysed text (after
	// the previous statement's semicolon): the text from Offset on is this
	// statement and those after it. Set only when Parsed.
	Offset int
	// Normalized is the statement's text for cache keys (see Analysis).
	Normalized string

	Cacheable bool
	Reason    string // why not cacheable; "" when cacheable

	// ReadTables and WriteTables are the relations read and written
	// (written includes created, altered, dropped, truncated and the
	// tables whose privileges change), qualified as written, lower-case
	// unless quoted, sorted. CTE names are not tables.
	ReadTables  []string
	WriteTables []string
	// Functions are the functions called, qualified as written, sorted.
	Functions []string

	UsesTime bool // calls now(), current_date, ... or casts 'now', 'today'
	PerUser  bool // depends on the user or session (current_user, current_setting, privileges)
	// ReadsCatalog says the answer depends on the system catalogs: a
	// catalog table, a cast to a reg* type ('t'::regtype), or a function
	// that looks names up (to_regclass, format_type, pg_get_*). DDL
	// changes such answers.
	ReadsCatalog bool

	// Pin says why this statement ties its session to one warehouse
	// connection ("LISTEN", "session advisory lock", "WITH HOLD cursor",
	// "temporary table", "PREPARE", "SET of unknown setting foo"); "" if
	// it does not.
	Pin string
	// CreatesTemp lists the temporary tables this statement creates.
	CreatesTemp []string

	Tx  *Transaction // set for KindTransaction
	Set *SetCommand  // set for SET, RESET and DISCARD ALL
	// Cursor describes a DECLARE CURSOR; Fetch a FETCH or MOVE; Close
	// the cursor a CLOSE names ("" with CloseAll for CLOSE ALL).
	Cursor   *Cursor
	Fetch    *Fetch
	Close    string
	CloseAll bool
	// Deallocate is the prepared statement a DEALLOCATE names, as
	// PostgreSQL's parser gives it; "" for DEALLOCATE ALL and other
	// statements.
	Deallocate string
	// Show is the setting a SHOW statement names, lower-case as
	// PostgreSQL's parser gives it ("timezone" for SHOW TIME ZONE,
	// "transaction_isolation" for SHOW TRANSACTION ISOLATION LEVEL, "all").
	Show string

	// Parsed is false when PostgreSQL's parser rejected the text and the
	// dialect lexer classified it.
	Parsed bool

	unqualified []string // unqualified tables read or written, for session temp checks
}

// Analysis is what the analyzer knows about one SQL text. An Analysis is
// shared by every caller that analyses the same text (the analyzer
// memoises them): treat it, its slices and its maps as read-only.
type Analysis struct {
	// Statements holds each statement of the text in order; a simple
	// query may hold several. Empty for an empty query.
	Statements []Statement

	// Kind is the statement's kind, or for several statements the one
	// that matters most to the proxy (unknown, DDL, write, session,
	// transaction, utility, read, in that order). Look at Statements for
	// transaction tracking when there are several.
	Kind Kind
	// Cacheable is true when every statement is cacheable and there is at
	// least one. Reason gives the first statement's reason otherwise.
	Cacheable bool
	Reason    string

	ReadTables   []string // union over the statements
	WriteTables  []string // union over the statements
	Functions    []string // union over the statements
	UsesTime     bool     // any statement uses the current time
	PerUser      bool     // any statement depends on the user: never share its answer
	ReadsCatalog bool     // any statement depends on the system catalogs
	Pin          string   // the first statement's pin reason, "" if none

	// ShapeID identifies the statement's shape: literals, whitespace,
	// comments and keyword case do not change it (pg_query's
	// fingerprint). For statistics and policy matching, never for keys.
	ShapeID uint64
	// LexShape identifies the shape as the lexer sees it (literals and
	// lists of literals taken out, comments dropped, words lower-cased):
	// what LexShape computes from the text without parsing it. Admission
	// judges statements by it.
	LexShape uint64
	// Normalized is the text that enters cache keys: comments dropped,
	// whitespace collapsed, unquoted words lower-cased, every literal and
	// quoted identifier kept byte for byte, statements joined by "; ".
	// Where the lexer cannot be certain (backslashes in '...' strings,
	// nested comments, unterminated quotes) it is the raw text, trimmed.
	Normalized string

	Labels Labels
	Hints  Hints

	// Parsed is false when PostgreSQL's parser rejected the text; then
	// ParseError says why, and the dialect lexer did the analysis.
	Parsed     bool
	ParseError string

	volatilityDependent bool // the answer used the volatility map
	tempSensitive       bool // some statement is cacheable and names an unqualified table
}

// Reasons a statement is not cacheable, as found in Reason.
const (
	ReasonWrite        = "writes"
	ReasonDDL          = "DDL"
	ReasonTransaction  = "transaction control"
	ReasonSession      = "session setting"
	ReasonUtility      = "utility statement"
	ReasonUnknown      = "statement not understood"
	ReasonEmpty        = "empty query"
	ReasonNoCacheHint  = "sqlcached:nocache hint"
	ReasonLocking      = "locking clause (FOR UPDATE/SHARE)"
	ReasonSelectInto   = "SELECT INTO"
	ReasonModifyingCTE = "data-modifying CTE"
	ReasonTemp         = "temporary table"
	ReasonVolatile     = "volatile function"
	ReasonConnection   = "function tied to the warehouse connection"
	ReasonSetting      = "current_setting of a setting outside the key"
	ReasonSample       = "TABLESAMPLE without REPEATABLE"
	ReasonLiveState    = "reads live server state"
	ReasonDialect      = "unparsed statement that is not a plain SELECT"
	ReasonMulti        = "several statements in unparsed text"
	ReasonNUL          = "NUL byte in text"
)

// kindReason is the reason given for statements that are not reads.
func kindReason(k Kind) string {
	switch k {
	case KindWrite:
		return ReasonWrite
	case KindDDL:
		return ReasonDDL
	case KindTransaction:
		return ReasonTransaction
	case KindSession:
		return ReasonSession
	case KindUtility:
		return ReasonUtility
	}
	return ReasonUnknown
}

// finish fills the analysis-wide fields from the statements.
func (a *Analysis) finish() {
	a.Kind = KindUnknown
	if len(a.Statements) == 0 {
		a.Reason = ReasonEmpty
		return
	}
	a.Kind = a.Statements[0].Kind
	a.Cacheable = true
	var norm []string
	for i := range a.Statements {
		s := &a.Statements[i]
		if a.Hints.NoCache && s.Cacheable {
			s.Cacheable, s.Reason = false, ReasonNoCacheHint
		}
		if s.Kind.weight() > a.Kind.weight() {
			a.Kind = s.Kind
		}
		if !s.Cacheable && a.Cacheable {
			a.Cacheable, a.Reason = false, s.Reason
		}
		if a.Pin == "" {
			a.Pin = s.Pin
		}
		a.UsesTime = a.UsesTime || s.UsesTime
		a.PerUser = a.PerUser || s.PerUser
		a.ReadsCatalog = a.ReadsCatalog || s.ReadsCatalog
		if s.Cacheable && len(s.unqualified) > 0 {
			a.tempSensitive = true
		}
		norm = append(norm, s.Normalized)
	}
	if len(a.Statements) == 1 {
		s := &a.Statements[0]
		a.ReadTables, a.WriteTables, a.Functions = s.ReadTables, s.WriteTables, s.Functions
		if a.Normalized == "" {
			a.Normalized = s.Normalized
		}
		return
	}
	for i := range a.Statements {
		s := &a.Statements[i]
		a.ReadTables = append(a.ReadTables, s.ReadTables...)
		a.WriteTables = append(a.WriteTables, s.WriteTables...)
		a.Functions = append(a.Functions, s.Functions...)
	}
	a.ReadTables = sortedSet(a.ReadTables)
	a.WriteTables = sortedSet(a.WriteTables)
	a.Functions = sortedSet(a.Functions)
	if a.Normalized == "" {
		a.Normalized = strings.Join(norm, "; ")
	}
}

// sortedSet sorts and removes duplicates in place.
func sortedSet(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	sort.Strings(s)
	out := s[:1]
	for _, v := range s[1:] {
		if v != out[len(out)-1] {
			out = append(out, v)
		}
	}
	return out
}

func sortStrings(s []string) { sort.Strings(s) }

// setKeys returns a set's members, sorted.
func setKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// quoteName renders one part of a qualified name: as is, unless it holds
// a character that would make the qualified form ambiguous.
func quoteName(part string) string {
	if strings.ContainsAny(part, `."`) {
		return `"` + strings.ReplaceAll(part, `"`, `""`) + `"`
	}
	return part
}

// qualify joins name parts with dots, skipping empty ones.
func qualify(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(quoteName(p))
	}
	return b.String()
}

// isTempSchema reports pg_temp and the per-backend pg_temp_N schemas.
func isTempSchema(schema string) bool {
	return schema == "pg_temp" || strings.HasPrefix(schema, "pg_temp_")
}

// liveRelations are catalog views whose contents change without any write
// the proxy could see, or that show the session itself.
var liveRelations = setOf(`pg_stat_activity pg_locks pg_prepared_statements pg_cursors
pg_settings pg_prepared_xacts pg_stat_replication pg_stat_wal_receiver pg_stat_ssl
pg_stat_gssapi pg_stat_progress_vacuum pg_stat_progress_analyze pg_stat_progress_create_index
pg_stat_progress_cluster pg_stat_progress_copy pg_stat_progress_basebackup pg_backend_memory_contexts
pg_stat_subscription pg_replication_slots pg_timezone_names pg_stat_statements pg_stat_database
pg_stat_user_tables pg_stat_all_tables pg_stat_sys_tables pg_stat_user_indexes pg_stat_all_indexes
pg_statio_user_tables pg_statio_all_tables pg_stat_bgwriter pg_stat_checkpointer pg_stat_io
pg_stat_wal pg_stat_archiver pg_stat_slru pg_stat_user_functions pg_stat_xact_user_tables
pg_stat_database_conflicts pg_stat_recovery_prefetch pg_stat_replication_slots pg_shmem_allocations`)

// isLive reports a relation whose answer must never be cached.
func isLive(schema, name string) bool {
	return (schema == "" || schema == "pg_catalog") && liveRelations[name]
}

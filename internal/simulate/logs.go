package simulate

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Format names a query log's format.
type Format string

// Formats ParseFile reads.
const (
	// FormatCSVLog is PostgreSQL's csvlog (log_destination = csvlog), of
	// any version from 9.0 (23 to 26 columns).
	FormatCSVLog Format = "pg-csvlog"
	// FormatStderr is PostgreSQL's stderr log, each line starting with
	// log_line_prefix (see ParseOptions.Prefix).
	FormatStderr Format = "pg-stderr"
	// FormatSnowflake is a Snowflake QUERY_HISTORY export as CSV with a
	// header row.
	FormatSnowflake Format = "snowflake-csv"
)

// Formats lists the formats, for usage messages.
var Formats = []Format{FormatCSVLog, FormatStderr, FormatSnowflake}

// DefaultPrefix is the log_line_prefix a stderr log is read with when
// none is given. It also reads PostgreSQL's default, '%m [%p] ': %q ends
// the prefix where a line has no session, and a line without "user@db "
// is read as one.
const DefaultPrefix = "%m [%p] %q%u@%d "

// Record is one statement of a log, as the warehouse ran it.
type Record struct {
	// Line is the line of the log where the statement's entry starts.
	Line int
	// Start is when the statement began: the log's time less the duration
	// for PostgreSQL, which logs a statement when it ends.
	Start    time.Time
	Duration time.Duration

	User            string
	Database        string
	ApplicationName string
	// Session identifies the client session (PostgreSQL's process id,
	// Snowflake's SESSION_ID), for transactions and SETs.
	Session string
	// Tag is a dashboard label the log gives beside the statement
	// (Snowflake's QUERY_TAG).
	Tag string

	SQL string
	// Params are the values bound to an extended-protocol statement, in
	// text form; a nil value is NULL. nil for a simple query.
	Params [][]byte

	// Rows is the number of rows the statement returned, -1 when the log
	// does not say; Bytes the size of its answer, 0 when unknown.
	Rows  int64
	Bytes int64
}

// End is when the statement ended.
func (r *Record) End() time.Time { return r.Start.Add(r.Duration) }

// ParseError is a log that could not be read.
type ParseError struct {
	File   string
	Line   int // 0 when the error is not at a line
	Reason string
}

func (e *ParseError) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Reason
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// ParseOptions say how to read a log.
type ParseOptions struct {
	// Format is the log's format. If empty, it is detected from the first
	// line: a header naming QUERY_TEXT is Snowflake's, a CSV line starting
	// with a time is a csvlog, anything else a stderr log.
	Format Format
	// Prefix is the stderr log's log_line_prefix. If empty, it defaults to
	// DefaultPrefix. The escapes %m %t %n (time), %p (process), %u (user),
	// %d (database), %a (application) and %q are read; %h %r %c %l %s %v
	// %x %e %i %b %P %Q %L and %% are skipped over. One of %m, %t or %n is
	// required.
	Prefix string
}

// ParseStats count what a parser read.
type ParseStats struct {
	Format Format
	// Entries are the log's entries (messages with their detail lines).
	Entries int
	// Statements were kept as Records.
	Statements int
	// Skipped are entries that are not statements run to completion:
	// other messages, parse and bind steps, a portal's later fetches,
	// failed or unfinished queries.
	Skipped int
	// Foreign are stderr lines not in the log's format (output of other
	// programs), skipped.
	Foreign int
}

// ParseFile reads the statements of a log file, in the order they started.
func ParseFile(path string, opt ParseOptions) ([]Record, ParseStats, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, ParseStats{}, err
	}
	defer f.Close()
	return Parse(f, path, opt)
}

// Parse reads the statements of a log named name, in the order they
// started.
func Parse(r io.Reader, name string, opt ParseOptions) ([]Record, ParseStats, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if opt.Format == "" {
		opt.Format = detect(br)
	}
	var (
		recs []Record
		st   ParseStats
		err  error
	)
	switch opt.Format {
	case FormatCSVLog:
		recs, st, err = parseCSVLog(br, name)
	case FormatStderr:
		recs, st, err = parseStderr(br, name, opt.Prefix)
	case FormatSnowflake:
		recs, st, err = parseSnowflake(br, name)
	default:
		return nil, st, &ParseError{File: name, Reason: fmt.Sprintf("unknown format %q (want one of %v)", opt.Format, Formats)}
	}
	st.Format = opt.Format
	if err != nil {
		return nil, st, err
	}
	slices.SortStableFunc(recs, func(a, b Record) int { return a.Start.Compare(b.Start) })
	st.Statements = len(recs)
	return recs, st, nil
}

var startsWithTime = regexp.MustCompile(`^"?\d{4}-\d\d-\d\d[ T]\d\d:\d\d`)

// detect guesses a log's format from its first line.
func detect(br *bufio.Reader) Format {
	first, _ := br.Peek(4096)
	if i := bytes.IndexByte(first, '\n'); i >= 0 {
		first = first[:i]
	}
	switch {
	case bytes.Contains(bytes.ToUpper(first), []byte("QUERY_TEXT")):
		return FormatSnowflake
	case startsWithTime.Match(first) && bytes.Count(first, []byte(",")) >= 10:
		return FormatCSVLog
	}
	return FormatStderr
}

// entry is one message of a PostgreSQL log with what the log says about
// it.
type entry struct {
	line                      int
	time                      string
	user, database, pid, app  string
	severity, message, detail string
}

// pgStatement matches the message log_min_duration_statement writes for a
// statement: a simple query's text, or an extended-protocol Execute's.
var pgStatement = regexp.MustCompile(`(?s)^duration: ([0-9.]+) ms  (statement|execute ([^:]*)): (.*)$`)

// record makes a Record of a PostgreSQL log entry; ok is false for an
// entry that is not a statement's.
func (e *entry) record(file string) (rec Record, ok bool, err error) {
	if e.severity != "LOG" {
		return rec, false, nil
	}
	m := pgStatement.FindStringSubmatch(e.message)
	if m == nil || strings.HasPrefix(m[3], "fetch from ") {
		return rec, false, nil
	}
	ms, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return rec, false, &ParseError{File: file, Line: e.line, Reason: fmt.Sprintf("bad duration %q", m[1])}
	}
	end, err := parseTime(e.time)
	if err != nil {
		return rec, false, &ParseError{File: file, Line: e.line, Reason: fmt.Sprintf("bad log time %q", e.time)}
	}
	rec = Record{
		Line: e.line, Duration: time.Duration(ms * float64(time.Millisecond)),
		User: e.user, Database: e.database, ApplicationName: e.app, Session: e.pid,
		SQL: m[4], Rows: -1,
	}
	rec.Start = end.Add(-rec.Duration)
	if m[2] != "statement" {
		rec.Params = [][]byte{}
		if p, ok := strings.CutPrefix(e.detail, "parameters: "); ok {
			if rec.Params, err = parseParams(p); err != nil {
				return rec, false, &ParseError{File: file, Line: e.line, Reason: "bad parameters in DETAIL: " + err.Error()}
			}
		}
	}
	return rec, true, nil
}

// parseParams reads "$1 = '5', $2 = NULL, $3 = 'it”s'".
func parseParams(s string) ([][]byte, error) {
	var out [][]byte
	for s != "" {
		n := len(out) + 1
		want := "$" + strconv.Itoa(n) + " = "
		rest, ok := strings.CutPrefix(s, want)
		if !ok {
			return nil, fmt.Errorf("want %q at %q", want, abbreviate(s, 20))
		}
		if after, ok := strings.CutPrefix(rest, "NULL"); ok {
			out, s = append(out, nil), after
		} else {
			v, after, err := cutQuoted(rest)
			if err != nil {
				return nil, fmt.Errorf("$%d: %v", n, err)
			}
			out, s = append(out, []byte(v)), after
		}
		if s != "" {
			var ok bool
			if s, ok = strings.CutPrefix(s, ", "); !ok {
				return nil, fmt.Errorf("want \", \" after $%d at %q", n, abbreviate(s, 20))
			}
		}
	}
	return out, nil
}

// cutQuoted reads a '...' string, with ” for a quote, at the start of s.
func cutQuoted(s string) (val, rest string, err error) {
	if !strings.HasPrefix(s, "'") {
		return "", "", errors.New("value is neither NULL nor quoted")
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '\'' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), s[i+1:], nil
	}
	return "", "", errors.New("unterminated quoted value")
}

func abbreviate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// timeLayouts are the forms of log times: PostgreSQL's %m and %t (the zone
// an abbreviation or an offset), and Snowflake's exports.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999 MST",
	"2006-01-02 15:04:05.999999999 -07",
	"2006-01-02 15:04:05.999999999 -0700",
	"2006-01-02 15:04:05.999999999 -07:00",
	"2006-01-02 15:04:05.999999999 Z07:00",
	"2006-01-02 15:04:05.999999999Z07:00",
	time.RFC3339Nano,
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
}

// parseTime reads a log time in any of timeLayouts, or seconds since the
// epoch (%n).
func parseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f > 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Time{}, errors.New("bad time")
}

// csvlog columns (PostgreSQL's "Using CSV-Format Log Output").
const (
	csvTime     = 0
	csvUser     = 1
	csvDatabase = 2
	csvPID      = 3
	csvSeverity = 11
	csvMessage  = 13
	csvDetail   = 14
	csvApp      = 22
	csvMinCols  = 23
)

func parseCSVLog(r io.Reader, file string) ([]Record, ParseStats, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	return readCSV(cr, file, ParseStats{}, func(row []string, line int) (Record, bool, error) {
		if len(row) < csvMinCols {
			return Record{}, false, &ParseError{File: file, Line: line, Reason: fmt.Sprintf("%d fields, want 23 to 26 as PostgreSQL's csvlog has (is this a csvlog?)", len(row))}
		}
		e := entry{
			line: line, time: row[csvTime], user: row[csvUser], database: row[csvDatabase], pid: row[csvPID],
			app: row[csvApp], severity: row[csvSeverity], message: row[csvMessage], detail: row[csvDetail],
		}
		return e.record(file)
	})
}

// readCSV reads the rows of cr to its end, counting each as an entry of
// st and handing it to record with its line: a record it returns is kept,
// one it declines (false) counted as skipped, an error ends the reading.
func readCSV(cr *csv.Reader, file string, st ParseStats, record func(row []string, line int) (Record, bool, error)) ([]Record, ParseStats, error) {
	var recs []Record
	for {
		row, err := cr.Read()
		if err == io.EOF {
			return recs, st, nil
		}
		if err != nil {
			return nil, st, csvError(file, err)
		}
		line, _ := cr.FieldPos(0)
		st.Entries++
		rec, ok, err := record(row, line)
		if err != nil {
			return nil, st, err
		}
		if !ok {
			st.Skipped++
			continue
		}
		recs = append(recs, rec)
	}
}

// csvError turns encoding/csv's error into a ParseError.
func csvError(file string, err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return &ParseError{File: file, Line: pe.Line, Reason: fmt.Sprintf("character %d: %v", pe.Column, pe.Err)}
	}
	return &ParseError{File: file, Reason: err.Error()}
}

// prefixEscapes are the log_line_prefix escapes: a named group for those
// read, a pattern for those skipped.
var prefixEscapes = map[byte]string{
	'm': `(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+(?: [A-Za-z0-9+\-:]+)?)`,
	't': `(?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?: [A-Za-z0-9+\-:]+)?)`,
	'n': `(?P<time>\d+\.\d+)`,
	'p': `(?P<pid>\d+)`,
	'u': `(?P<user>\S*?)`,
	'd': `(?P<database>\S*?)`,
	'a': `(?P<app>.*?)`,
	'h': `\S*?`, 'r': `\S*?`, 'c': `\S*?`, 'l': `\d*`, 's': `.*?`, 'v': `\S*?`, 'x': `\d*`,
	'e': `[0-9A-Z]*`, 'i': `.*?`, 'b': `.*?`, 'P': `\d*`, 'Q': `-?\d*`, 'L': `\S*?`,
}

// compilePrefix makes a regular expression of a log_line_prefix that
// matches a whole log line: the prefix, the severity and the message.
func compilePrefix(prefix string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString(`^`)
	optional, hasTime := false, false
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if c != '%' {
			b.WriteString(regexp.QuoteMeta(string(c)))
			continue
		}
		i++
		pad := i
		for i < len(prefix) && (prefix[i] == '-' || prefix[i] >= '0' && prefix[i] <= '9') {
			i++
		}
		if i == len(prefix) {
			return nil, fmt.Errorf("log_line_prefix %q ends with %%", prefix)
		}
		if i > pad {
			b.WriteString(` *`) // padded to a width
		}
		switch c = prefix[i]; c {
		case '%':
			b.WriteString(`%`)
		case 'q':
			if !optional {
				b.WriteString(`(?:`)
				optional = true
			}
		default:
			p, ok := prefixEscapes[c]
			if !ok {
				return nil, fmt.Errorf("log_line_prefix %q: unknown escape %%%c", prefix, c)
			}
			if strings.Contains(b.String(), p) && strings.HasPrefix(p, "(?P") {
				p = `.*?` // a group may be named once
			}
			hasTime = hasTime || c == 'm' || c == 't' || c == 'n'
			b.WriteString(p)
		}
		if i > pad {
			b.WriteString(` *`)
		}
	}
	if optional {
		b.WriteString(`)?`)
	}
	if !hasTime {
		return nil, fmt.Errorf("log_line_prefix %q has no time (%%m, %%t or %%n): statements cannot be put in time order", prefix)
	}
	b.WriteString(`(?P<severity>[A-Z][A-Z0-9]*):  (?P<message>.*)$`)
	return regexp.Compile(b.String())
}

// stderrParser gathers the entries of a stderr log: a prefixed line
// starts one, a line starting with a tab continues it, and DETAIL and the
// like belong to the process's last entry.
type stderrParser struct {
	file    string
	re      *regexp.Regexp
	pending map[string]*entry // by process: the entry its next DETAIL belongs to
	last    *entry            // the entry continuation lines extend
	recs    []Record
	st      ParseStats
}

func parseStderr(r io.Reader, file, prefix string) ([]Record, ParseStats, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	re, err := compilePrefix(prefix)
	if err != nil {
		return nil, ParseStats{}, &ParseError{File: file, Reason: err.Error()}
	}
	p := &stderrParser{file: file, re: re, pending: map[string]*entry{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if err := p.line(n, sc.Text(), prefix); err != nil {
			return nil, p.st, err
		}
	}
	if err := sc.Err(); err != nil {
		return nil, p.st, &ParseError{File: file, Reason: err.Error()}
	}
	for _, e := range p.pending {
		if err := p.flush(e); err != nil {
			return nil, p.st, err
		}
	}
	return p.recs, p.st, nil
}

// line reads line n of the log.
func (p *stderrParser) line(n int, text, prefix string) error {
	if strings.HasPrefix(text, "\t") {
		if p.last != nil {
			if p.last.detail != "" {
				p.last.detail += "\n" + text[1:]
			} else {
				p.last.message += "\n" + text[1:]
			}
		}
		return nil
	}
	m := p.re.FindStringSubmatch(text)
	if m == nil {
		if p.st.Entries == 0 && strings.TrimSpace(text) != "" {
			return &ParseError{File: p.file, Line: n, Reason: fmt.Sprintf("does not start with the log_line_prefix %q (give the server's with --prefix)", prefix)}
		}
		p.st.Foreign++
		p.last = nil
		return nil
	}
	e := &entry{line: n}
	for i, name := range p.re.SubexpNames() {
		switch name {
		case "time":
			e.time = m[i]
		case "pid":
			e.pid = m[i]
		case "user":
			e.user = m[i]
		case "database":
			e.database = m[i]
		case "app":
			e.app = m[i]
		case "severity":
			e.severity = m[i]
		case "message":
			e.message = m[i]
		}
	}
	switch e.severity {
	case "DETAIL", "HINT", "CONTEXT", "STATEMENT", "QUERY", "LOCATION":
		if owner := p.pending[e.pid]; owner != nil {
			if e.severity == "DETAIL" {
				owner.detail = e.message
				p.last = owner
			} else {
				p.last = nil
			}
			return nil
		}
	}
	p.st.Entries++
	if old := p.pending[e.pid]; old != nil {
		if err := p.flush(old); err != nil {
			return err
		}
	}
	p.pending[e.pid], p.last = e, e
	return nil
}

// flush turns an entry whose lines have all been read into a Record.
func (p *stderrParser) flush(e *entry) error {
	delete(p.pending, e.pid)
	rec, ok, err := e.record(p.file)
	switch {
	case err != nil:
		return err
	case ok:
		p.recs = append(p.recs, rec)
	default:
		p.st.Skipped++
	}
	return nil
}

// Snowflake QUERY_HISTORY columns, lower-case.
const (
	sfText    = "query_text"
	sfStart   = "start_time"
	sfElapsed = "total_elapsed_time"
	sfUser    = "user_name"
	sfDB      = "database_name"
	sfTag     = "query_tag"
	sfStatus  = "execution_status"
	sfSession = "session_id"
	sfRows    = "rows_produced"
)

func parseSnowflake(r io.Reader, file string) ([]Record, ParseStats, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	var st ParseStats
	header, err := cr.Read()
	if err == io.EOF {
		return nil, st, &ParseError{File: file, Line: 1, Reason: "empty file: want a header row naming QUERY_TEXT, START_TIME, TOTAL_ELAPSED_TIME"}
	}
	if err != nil {
		return nil, st, csvError(file, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))] = i
	}
	for _, req := range []string{sfText, sfStart, sfElapsed} {
		if _, ok := col[req]; !ok {
			return nil, st, &ParseError{File: file, Line: 1, Reason: fmt.Sprintf("no %s column in the header (a QUERY_HISTORY export has QUERY_TEXT, START_TIME, TOTAL_ELAPSED_TIME, USER_NAME, DATABASE_NAME, QUERY_TAG, EXECUTION_STATUS)", strings.ToUpper(req))}
		}
	}
	return readCSV(cr, file, st, func(row []string, line int) (Record, bool, error) {
		if len(row) != len(header) {
			return Record{}, false, &ParseError{File: file, Line: line, Reason: fmt.Sprintf("%d fields, the header has %d", len(row), len(header))}
		}
		return snowflakeRecord(file, line, col, row)
	})
}

// snowflakeRecord reads one row of QUERY_HISTORY; ok is false for a query
// that did not succeed.
func snowflakeRecord(file string, line int, col map[string]int, row []string) (Record, bool, error) {
	get := func(name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(row[i])
		}
		return ""
	}
	if s := get(sfStatus); s != "" && !strings.EqualFold(s, "SUCCESS") {
		return Record{}, false, nil
	}
	start, err := parseTime(get(sfStart))
	if err != nil {
		return Record{}, false, &ParseError{File: file, Line: line, Reason: fmt.Sprintf("START_TIME %q is not a time", get(sfStart))}
	}
	ms, err := strconv.ParseFloat(get(sfElapsed), 64)
	if err != nil || ms < 0 {
		return Record{}, false, &ParseError{File: file, Line: line, Reason: fmt.Sprintf("TOTAL_ELAPSED_TIME %q is not a number of milliseconds", get(sfElapsed))}
	}
	rec := Record{
		Line: line, Start: start, Duration: time.Duration(ms * float64(time.Millisecond)),
		User: get(sfUser), Database: get(sfDB), Tag: get(sfTag), Session: get(sfSession),
		SQL: row[col[sfText]], Rows: -1,
	}
	if rec.Session == "" {
		rec.Session = rec.User
	}
	if n, err := strconv.ParseInt(get(sfRows), 10, 64); err == nil {
		rec.Rows = n
	}
	return rec, true, nil
}

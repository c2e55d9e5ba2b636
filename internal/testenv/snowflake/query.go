//go:build cgo

package snowflake

import (
	"context"
	"database/sql/driver"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	duck "github.com/duckdb/duckdb-go/v2"
)

// execRequest is the body of a query request.
type execRequest struct {
	SQLText      string         `json:"sqlText"`
	AsyncExec    bool           `json:"asyncExec"`
	DescribeOnly bool           `json:"describeOnly"`
	Parameters   map[string]any `json:"parameters"`
	Bindings     map[string]struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	} `json:"bindings"`
}

// Statement type ids of a query response.
const (
	typeSelect = 0x1000
	typeInsert = 0x3100
	typeUpdate = 0x3200
	typeDelete = 0x3300
	typeMerge  = 0x3400
	typeSCL    = 0x4000 // session control: USE, ALTER SESSION
	typeTCL    = 0x5000 // BEGIN, COMMIT, ROLLBACK
	typeDDL    = 0x6000
)

// sfError is a failure with Snowflake's error code and SQLSTATE.
type sfError struct {
	code, sqlState, msg string
}

func (e *sfError) Error() string { return e.msg }

// query runs a statement and answers with its result.
func (s *Server) query(w http.ResponseWriter, r *http.Request) {
	var req execRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBytes)).Decode(&req); err != nil {
		fail(w, "001003", "42000", "malformed query request: "+err.Error(), nil)
		return
	}
	if req.AsyncExec {
		fail(w, "000002", "0A000", "asynchronous execution is not supported by the stand-in", nil)
		return
	}
	reqID := r.URL.Query().Get("requestId")
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	queryID := newToken()
	index := s.begin(reqID, &req, cancel)
	data, err := s.run(ctx, queryID, &req)
	err = s.end(ctx, reqID, index, err)
	if err != nil {
		var se *sfError
		if !errors.As(err, &se) {
			se = &sfError{"000603", "XX000", err.Error()}
		}
		fail(w, se.code, se.sqlState, se.msg, map[string]any{"queryId": queryID})
		return
	}
	writeJSON(w, response{Success: true, Data: data})
}

// begin records a statement and registers it for abort requests.
func (s *Server) begin(reqID string, req *execRequest, cancel context.CancelFunc) int {
	q := Query{SQL: req.SQLText, Params: make(map[string]string, len(req.Parameters))}
	for k, v := range req.Parameters {
		q.Params[k] = fmt.Sprint(v)
	}
	q.QueryTag = q.Params["QUERY_TAG"]
	s.mu.Lock()
	defer s.mu.Unlock()
	index := -1
	if len(s.queries) < maxQueries {
		index = len(s.queries)
		s.queries = append(s.queries, q)
	}
	if reqID != "" {
		s.running[reqID] = &runningQuery{cancel: cancel, index: index}
	}
	return index
}

// end records how a statement ended; a cancelled one fails with
// Snowflake's "SQL execution canceled".
func (s *Server) end(ctx context.Context, reqID string, index int, err error) error {
	canceled := ctx.Err() != nil
	if canceled {
		err = &sfError{"000604", "57014", "SQL execution canceled"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.running, reqID)
	if index >= 0 {
		s.queries[index].Canceled = s.queries[index].Canceled || canceled
		if err != nil {
			s.queries[index].Err = err.Error()
		}
	}
	return err
}

// run executes a statement on DuckDB and builds the response data.
func (s *Server) run(ctx context.Context, queryID string, req *execRequest) (map[string]any, error) {
	text := translate(req.SQLText)
	args, err := bindArgs(req)
	if err != nil {
		return nil, err
	}
	kind, word := classify(text)
	switch kind {
	case typeSelect:
		return s.runQuery(ctx, queryID, text, args, req.DescribeOnly)
	case typeSCL, typeTCL:
		return status(queryID, kind, "Statement executed successfully."), nil
	}
	if req.DescribeOnly {
		return status(queryID, kind, ""), nil
	}
	res, err := s.db.ExecContext(ctx, text, args...)
	if err != nil {
		return nil, duckError(err)
	}
	if kind == typeDDL {
		return status(queryID, kind, "Statement executed successfully."), nil
	}
	n, _ := res.RowsAffected()
	return dmlResult(queryID, kind, word, n), nil
}

// runQuery runs a statement with rows and encodes its answer.
func (s *Server) runQuery(ctx context.Context, queryID, text string, args []any, describe bool) (map[string]any, error) {
	if describe {
		var err error
		if text, args, err = s.describeQuery(ctx, text); err != nil {
			return nil, err
		}
	}
	rows, err := s.db.QueryContext(ctx, text, args...)
	if err != nil {
		return nil, duckError(err)
	}
	defer rows.Close()
	types, err := rows.ColumnTypes()
	if err != nil {
		return nil, duckError(err)
	}
	cols := make([]column, len(types))
	for i, t := range types {
		cols[i] = mapColumn(t.Name(), t.DatabaseTypeName())
	}
	var all [][]any
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if len(all) >= maxResultRows {
			return nil, &sfError{"000603", "54000", fmt.Sprintf("the stand-in returns at most %d rows", maxResultRows)}
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, duckError(err)
		}
		row := make([]any, len(cols))
		for i, c := range cols {
			if row[i], err = c.cell(vals[i]); err != nil {
				return nil, &sfError{"000603", "0A000", err.Error()}
			}
		}
		all = append(all, row)
	}
	if err := rows.Err(); err != nil {
		return nil, duckError(err)
	}
	return s.answer(queryID, cols, all)
}

// describeQuery turns a statement into one that returns its columns and
// no rows, with every parameter NULL.
func (s *Server) describeQuery(ctx context.Context, text string) (string, []any, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return "", nil, duckError(err)
	}
	defer conn.Close()
	n := 0
	err = conn.Raw(func(dc any) error {
		st, err := dc.(driver.ConnPrepareContext).PrepareContext(ctx, text)
		if err != nil {
			return err
		}
		n = st.NumInput()
		return st.Close()
	})
	if err != nil {
		return "", nil, duckError(err)
	}
	return "SELECT * FROM (" + text + ") AS described LIMIT 0", make([]any, n), nil
}

// answer encodes rows in chunks: the first inline, the others kept for
// the driver to fetch.
func (s *Server) answer(queryID string, cols []column, rows [][]any) (map[string]any, error) {
	s.mu.Lock()
	asJSON := s.json
	s.mu.Unlock()
	rowType := make([]map[string]any, len(cols))
	for i, c := range cols {
		rowType[i] = c.rowType()
	}
	data := base(queryID, typeSelect)
	data["rowtype"] = rowType
	data["total"] = len(rows)
	data["returned"] = len(rows)
	first := rows[:min(len(rows), s.chunkRows)]
	var bodies [][]byte
	var metas []map[string]any
	for start := len(first); start < len(rows); start += s.chunkRows {
		part := rows[start:min(len(rows), start+s.chunkRows)]
		var body []byte
		var err error
		if asJSON {
			body, err = jsonChunk(cols, part)
		} else {
			body, err = arrowChunk(cols, part)
		}
		if err != nil {
			return nil, err
		}
		metas = append(metas, map[string]any{
			"url":              fmt.Sprintf("http://%s/chunks/%s/%d", s.Addr(), queryID, len(bodies)),
			"rowCount":         len(part),
			"uncompressedSize": len(body),
			"compressedSize":   len(body),
		})
		bodies = append(bodies, body)
	}
	if len(bodies) > 0 {
		s.keep(queryID, bodies)
		data["chunks"] = metas
		data["chunkHeaders"] = map[string]string{"X-Sqlcached-Chunk": queryID}
	}
	if asJSON {
		data["queryResultFormat"] = "json"
		data["rowset"] = jsonRows(cols, first)
		return data, nil
	}
	data["queryResultFormat"] = "arrow"
	if len(first) > 0 {
		b, err := arrowChunk(cols, first)
		if err != nil {
			return nil, err
		}
		data["rowsetBase64"] = base64.StdEncoding.EncodeToString(b)
	}
	return data, nil
}

func jsonRows(cols []column, rows [][]any) [][]*string {
	out := make([][]*string, len(rows))
	for i, r := range rows {
		out[i] = make([]*string, len(cols))
		for j, c := range cols {
			out[i][j] = c.jsonCell(r[j])
		}
	}
	return out
}

// jsonChunk is a chunk of a JSON result: rows separated by commas, with
// no brackets around them.
func jsonChunk(cols []column, rows [][]any) ([]byte, error) {
	var b []byte
	for i, r := range jsonRows(cols, rows) {
		if i > 0 {
			b = append(b, ',')
		}
		row, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		b = append(b, row...)
	}
	return b, nil
}

// base is the data every successful query response has.
func base(queryID string, kind int) map[string]any {
	return map[string]any{
		"queryId":            queryID,
		"statementTypeId":    kind,
		"parameters":         []any{},
		"finalDatabaseName":  "",
		"finalSchemaName":    "PUBLIC",
		"finalWarehouseName": "WH",
		"finalRoleName":      "SYSADMIN",
		"version":            1,
	}
}

// status is the answer of a statement without rows: one status column.
func status(queryID string, kind int, msg string) map[string]any {
	data := base(queryID, kind)
	data["queryResultFormat"] = "json"
	data["rowtype"] = []map[string]any{column{name: "status", typ: "text", length: textLength}.rowType()}
	data["rowset"] = [][]*string{{&msg}}
	data["total"], data["returned"] = 1, 1
	return data
}

// dmlResult is the answer of INSERT, UPDATE, DELETE and MERGE: the number
// of rows they changed, always as JSON, as Snowflake sends it.
func dmlResult(queryID string, kind int, word string, n int64) map[string]any {
	data := base(queryID, kind)
	data["queryResultFormat"] = "json"
	name := "number of rows " + strings.ToLower(word) + "d"
	if kind == typeInsert {
		name = "number of rows inserted"
	}
	data["rowtype"] = []map[string]any{column{name: name, typ: "fixed", precision: 19}.rowType()}
	v := strconv.FormatInt(n, 10)
	data["rowset"] = [][]*string{{&v}}
	data["total"], data["returned"] = 1, 1
	return data
}

var leading = regexp.MustCompile(`^(?:\s+|--[^\n]*\n?|/\*(?s:.*?)\*/|\()*`)

// classify returns a statement's type id and first keyword.
func classify(text string) (int, string) {
	rest := leading.ReplaceAllString(text, "")
	f := strings.Fields(strings.ToUpper(rest))
	if len(f) == 0 {
		return typeDDL, ""
	}
	word := strings.TrimRight(f[0], ";")
	switch word {
	case "SELECT", "WITH", "VALUES", "FROM", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "PRAGMA", "TABLE", "SUMMARIZE", "CALL":
		return typeSelect, word
	case "INSERT":
		return typeInsert, word
	case "UPDATE":
		return typeUpdate, word
	case "DELETE":
		return typeDelete, word
	case "MERGE":
		return typeMerge, word
	case "BEGIN", "START", "COMMIT", "ROLLBACK":
		return typeTCL, word
	case "USE":
		return typeSCL, word
	case "ALTER":
		if len(f) > 1 && f[1] == "SESSION" {
			return typeSCL, word
		}
	}
	return typeDDL, word
}

// bindArgs turns the driver's bindings ("1", "2", ...) into arguments.
func bindArgs(req *execRequest) ([]any, error) {
	args := make([]any, len(req.Bindings))
	for k, b := range req.Bindings {
		i, err := strconv.Atoi(k)
		if err != nil || i < 1 || i > len(args) {
			return nil, &sfError{"002049", "22023", "bad binding name " + strconv.Quote(k)}
		}
		if b.Value == nil {
			continue
		}
		s, ok := b.Value.(string)
		if !ok {
			return nil, &sfError{"002049", "0A000", fmt.Sprintf("binding %s: %s values of %T are not supported by the stand-in", k, b.Type, b.Value)}
		}
		args[i-1] = s
		switch b.Type {
		case "FIXED":
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				args[i-1] = n
			}
		case "REAL":
			if f, err := strconv.ParseFloat(s, 64); err == nil {
				args[i-1] = f
			}
		case "BOOLEAN":
			if v, err := strconv.ParseBool(s); err == nil {
				args[i-1] = v
			}
		}
	}
	return args, nil
}

var variantCast = regexp.MustCompile(`(?i)::\s*variant\b`)

// translate rewrites the Snowflake spellings DuckDB lacks, outside string
// literals, quoted names and comments: ::VARIANT becomes ::JSON, and the
// bind references :1, :2 become $1, $2.
func translate(text string) string {
	var b strings.Builder
	code := func(s string) {
		s = variantCast.ReplaceAllString(s, "::JSON")
		for i := 0; i < len(s); i++ {
			if s[i] == ':' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9' && (i == 0 || s[i-1] != ':') {
				b.WriteByte('$')
				continue
			}
			b.WriteByte(s[i])
		}
	}
	start := 0
	for i := 0; i < len(text); i++ {
		var end int
		switch {
		case text[i] == '\'' || text[i] == '"':
			end = closing(text, i+1, text[i])
		case strings.HasPrefix(text[i:], "--"):
			end = strings.IndexByte(text[i:], '\n')
			end = endOr(text, i, end, 1)
		case strings.HasPrefix(text[i:], "/*"):
			end = strings.Index(text[i:], "*/")
			end = endOr(text, i, end, 2)
		default:
			continue
		}
		code(text[start:i])
		b.WriteString(text[i:end])
		start, i = end, end-1
	}
	code(text[start:])
	return b.String()
}

// closing is the index after the quote q that closes a literal opened
// before from; a doubled quote does not close it.
func closing(text string, from int, q byte) int {
	for i := from; i < len(text); i++ {
		if text[i] == q {
			if i+1 < len(text) && text[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return len(text)
}

func endOr(text string, at, rel, width int) int {
	if rel < 0 {
		return len(text)
	}
	return at + rel + width
}

// duckError maps a DuckDB error to a Snowflake error code and SQLSTATE.
func duckError(err error) error {
	var de *duck.Error
	if !errors.As(err, &de) {
		return &sfError{"000603", "XX000", err.Error()}
	}
	msg := de.Msg
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "division by zero"), strings.Contains(lower, "divide by zero"):
		return &sfError{"100051", "22012", "Division by zero"}
	}
	switch de.Type {
	case duck.ErrorTypeParser, duck.ErrorTypeSyntax:
		return &sfError{"001003", "42000", "SQL compilation error: " + msg}
	case duck.ErrorTypeCatalog:
		if strings.Contains(lower, "table") {
			return &sfError{"002003", "42S02", "SQL compilation error: " + msg}
		}
		return &sfError{"002003", "02000", "SQL compilation error: " + msg}
	case duck.ErrorTypeBinder:
		if strings.Contains(lower, "column") {
			return &sfError{"000904", "42000", "SQL compilation error: " + msg}
		}
		return &sfError{"002140", "42601", "SQL compilation error: " + msg}
	case duck.ErrorTypeConversion, duck.ErrorTypeInvalidInput:
		return &sfError{"100038", "22018", msg}
	case duck.ErrorTypeOutOfRange:
		return &sfError{"100035", "22003", msg}
	case duck.ErrorTypeConstraint:
		return &sfError{"100072", "23000", msg}
	case duck.ErrorTypeInterrupt:
		return &sfError{"000604", "57014", "SQL execution canceled"}
	}
	return &sfError{"000603", "XX000", msg}
}

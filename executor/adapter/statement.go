package adapter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// Type OIDs of the columns the adapter answers itself.
const (
	oidBool = 16
	oidInt4 = 23
	oidText = 25
)

var errTooLarge = errors.New("adapter: answer too large")

// DashboardSetting is the setting whose value a session's statements
// carry to the warehouse as their dashboard label (executor.Request's
// Dashboard).
const DashboardSetting = "sqlcached.dashboard"

// result is an answer held whole: its RowDescription (nil for a
// statement without rows), its DataRows and its command tag.
type result struct {
	fields []byte
	rows   [][]byte
	tag    string
	empty  bool // an empty query: EmptyQueryResponse
	// count says the tag ends in the number of rows handed out (SELECT,
	// FETCH): a portal read in portions reports each portion's.
	count bool
}

// split reads a warehouse's answer into a result; rows alias wire.
func split(wire []byte) (*result, error) {
	res := &result{}
	for len(wire) > 0 {
		if len(wire) < 5 {
			return nil, errors.New("adapter: truncated answer from the warehouse")
		}
		n := 1 + int(binary.BigEndian.Uint32(wire[1:5]))
		if n < 5 || n > len(wire) {
			return nil, errors.New("adapter: malformed answer from the warehouse")
		}
		msg := wire[:n]
		switch msg[0] {
		case 'T':
			res.fields = msg
		case 'D':
			res.rows = append(res.rows, msg)
		case 'C':
			res.tag = string(trimNul(msg[5:]))
		}
		wire = wire[n:]
	}
	res.count = res.fields != nil && strings.HasPrefix(res.tag, "SELECT ")
	return res, nil
}

// column is a column of an answer the adapter makes itself.
type column struct {
	name string
	oid  uint32
}

// local builds an answer: values in text form ("" with null set for
// NULL is not needed here), encoded in the requested formats.
func local(cols []column, rows [][]string, tag string, formats []int16) *result {
	res := &result{tag: tag, count: strings.HasPrefix(tag, "SELECT ") || strings.HasPrefix(tag, "SHOW")}
	if tag == "SHOW" {
		res.count = false
	}
	fields := make([]pgwire.Field, len(cols))
	for i, c := range cols {
		fields[i] = pgwire.Field{Name: c.name, TypeOID: c.oid, Size: -1, TypeMod: -1, Format: format(formats, i)}
		switch c.oid {
		case oidBool:
			fields[i].Size = 1
		case oidInt4:
			fields[i].Size = 4
		}
	}
	var b pgwire.Builder
	b.RowDescription(fields)
	res.fields = b.B
	for _, row := range rows {
		var d pgwire.Builder
		d.Begin('D')
		d.Int16(int16(len(row)))
		for i, v := range row {
			val := []byte(v)
			if format(formats, i) == 1 {
				switch cols[i].oid {
				case oidInt4:
					n, _ := strconv.Atoi(v)
					val = binary.BigEndian.AppendUint32(nil, uint32(int32(n)))
				case oidBool:
					val = []byte{0}
					if v == "t" {
						val[0] = 1
					}
				}
			}
			d.Int32(int32(len(val)))
			d.Bytes(val)
		}
		d.Finish()
		res.rows = append(res.rows, d.B)
	}
	return res
}

// format returns the format code of column i of a Bind's result formats.
func format(formats []int16, i int) int16 {
	switch {
	case len(formats) == 1:
		return formats[0]
	case i < len(formats):
		return formats[i]
	}
	return 0
}

func command(tag string) *result { return &result{tag: tag} }

// call is a statement a session answers by calling one of PostgreSQL's
// backend functions.
var callRE = regexp.MustCompile(`^select (?:pg_catalog ?\. ?)?(pg_backend_pid|pg_cancel_backend|pg_terminate_backend) ?\( ?(\d*|\$1) ?\)(?: (?:as )?([a-z_][a-z0-9_]*))?$`)

// args are what a statement runs with beyond its text.
type args struct {
	oids          []uint32
	paramFormats  []int16
	params        [][]byte
	resultFormats []int16
}

// exec runs one statement: a session statement in the session, the
// others on the warehouse.
func (ss *session) exec(ctx context.Context, st *fingerprint.Statement, a *args) (*result, error) {
	if ss.tx == 'E' && !(st.Tx != nil && (st.Tx.Op == fingerprint.TxRollback || st.Tx.Op == fingerprint.TxRollbackTo || st.Tx.Op == fingerprint.TxCommit)) {
		return nil, pgErr(codeInFailedTx, "current transaction is aborted, commands ignored until end of transaction block")
	}
	var formats []int16
	if a != nil {
		formats = a.resultFormats
	}
	switch {
	case st.Tx != nil:
		return ss.transaction(st)
	case st.Set != nil:
		return ss.setting(st)
	case st.Kind == fingerprint.KindSession:
		return command(st.Command), nil
	case st.Show != "":
		return ss.show(st.Show, formats)
	case st.Cursor != nil:
		return ss.declare(ctx, st.Cursor)
	case st.Fetch != nil:
		return ss.fetch(st.Fetch, formats)
	case st.Close != "" || st.CloseAll:
		return ss.closeCursor(st.Close, st.CloseAll)
	case strings.HasPrefix(st.Command, "DEALLOCATE"):
		if st.Deallocate == "" {
			clear(ss.stmts)
			return command("DEALLOCATE ALL"), nil
		}
		if _, ok := ss.stmts[st.Deallocate]; !ok {
			return nil, pgErr(codeUnknownStatement, fmt.Sprintf("prepared statement %q does not exist", st.Deallocate))
		}
		delete(ss.stmts, st.Deallocate)
		return command("DEALLOCATE"), nil
	}
	switch st.Command {
	case "COPY", "LISTEN", "NOTIFY", "UNLISTEN", "PREPARE", "EXECUTE":
		return nil, pgErr(codeFeatureNotSupport, st.Command+" is not supported by the "+ss.srv.cfg.Name+" warehouse")
	}
	if m := callRE.FindStringSubmatch(st.Normalized); m != nil {
		return ss.call(m[1], m[2], m[3], a)
	}
	return ss.warehouse(ctx, st, a)
}

// warehouse runs a statement on the warehouse.
func (ss *session) warehouse(ctx context.Context, st *fingerprint.Statement, a *args) (*result, error) {
	req := &executor.Request{
		Login:    executor.Login{User: ss.user, Database: ss.database},
		SQL:      st.Text,
		Settings: ss.requestSettings(),
		MaxBytes: ss.srv.cfg.MaxAnswerBytes,
		// The statement's own label (a comment), else the one the proxy
		// or the client set (executor/postgres's LabelSetting).
		Dashboard: cmpOr(ss.label, ss.set.current[DashboardSetting]),
	}
	if a != nil {
		req.ParamOIDs, req.ParamFormats, req.Params, req.ResultFormats = a.oids, a.paramFormats, a.params, a.resultFormats
	}
	res, err := ss.srv.cfg.Warehouse.Execute(ctx, req)
	if err != nil {
		if errors.Is(err, executor.ErrTooLarge) {
			return nil, fmt.Errorf("%w: the answer is larger than %d bytes", errTooLarge, ss.srv.cfg.MaxAnswerBytes)
		}
		return nil, err
	}
	if ss.tx != 'I' {
		switch st.Kind {
		case fingerprint.KindWrite, fingerprint.KindDDL, fingerprint.KindUnknown:
			ss.wrote = true
		}
	}
	out, err := split(res.Wire)
	if err != nil {
		return nil, err
	}
	// A warehouse may name a command by its first word (CREATE); clients
	// expect PostgreSQL's tag (CREATE TABLE).
	if out.fields == nil && !strings.ContainsAny(out.tag, "0123456789 ") && strings.HasPrefix(st.Command, out.tag+" ") {
		out.tag = st.Command
	}
	return out, nil
}

// transaction runs BEGIN, COMMIT, ROLLBACK and savepoints.
func (ss *session) transaction(st *fingerprint.Statement) (*result, error) {
	tx := st.Tx
	switch tx.Op {
	case fingerprint.TxBegin:
		if ss.tx != 'I' {
			ss.notice("WARNING", codeActiveTx, "there is already a transaction in progress")
			return command("BEGIN"), nil
		}
		ss.tx, ss.wrote, ss.mark = 'T', false, nil
		ss.txSet = ss.set.clone()
		ss.characteristics(tx, "transaction_")
		return command("BEGIN"), nil
	case fingerprint.TxCommit, fingerprint.TxRollback:
		tag := "COMMIT"
		if tx.Op == fingerprint.TxRollback || ss.tx == 'E' {
			tag = "ROLLBACK"
		}
		if ss.tx == 'I' {
			ss.notice("WARNING", codeNoActiveTx, "there is no transaction in progress")
			return command(tag), nil
		}
		if tag == "ROLLBACK" {
			if ss.wrote {
				ss.notice("WARNING", "01000", "the "+ss.srv.cfg.Name+" warehouse committed each statement of this transaction block as it ran: ROLLBACK cannot undo its writes")
			}
			ss.endTx(ss.txSet)
		} else {
			ss.endTx(ss.set)
		}
		return command(tag), nil
	case fingerprint.TxSavepoint:
		if ss.tx == 'I' {
			return nil, pgErr(codeNoActiveTx, "SAVEPOINT can only be used in transaction blocks")
		}
		ss.mark = append(ss.mark, savepoint{name: tx.Savepoint, set: ss.set.clone()})
		return command("SAVEPOINT"), nil
	case fingerprint.TxRelease, fingerprint.TxRollbackTo:
		if ss.tx == 'I' {
			word := "RELEASE SAVEPOINT"
			if tx.Op == fingerprint.TxRollbackTo {
				word = "ROLLBACK TO SAVEPOINT"
			}
			return nil, pgErr(codeNoActiveTx, word+" can only be used in transaction blocks")
		}
		i := len(ss.mark) - 1
		for i >= 0 && ss.mark[i].name != tx.Savepoint {
			i--
		}
		if i < 0 {
			return nil, pgErr(codeNoSavepoint, fmt.Sprintf("savepoint %q does not exist", tx.Savepoint))
		}
		if tx.Op == fingerprint.TxRelease {
			ss.mark = ss.mark[:i]
			return command("RELEASE"), nil
		}
		before := ss.set
		ss.set = ss.mark[i].set.clone()
		ss.mark = ss.mark[:i+1]
		ss.tx = 'T'
		ss.reportAll(before)
		return command("ROLLBACK"), nil
	case fingerprint.TxSetTransaction:
		ss.characteristics(tx, "transaction_")
		return command("SET"), nil
	}
	return nil, pgErr(codeFeatureNotSupport, "two-phase commit is not supported by the "+ss.srv.cfg.Name+" warehouse")
}

// endTx ends the transaction block with the session settings of to.
func (ss *session) endTx(to settings) {
	before := ss.set
	ss.set = settings{session: maps.Clone(to.session), current: maps.Clone(to.session)}
	ss.tx, ss.wrote, ss.mark = 'I', false, nil
	for name, c := range ss.cursors {
		if !c.hold {
			delete(ss.cursors, name)
		}
	}
	ss.reportAll(before)
}

// reportAll appends ParameterStatus for every reported setting whose
// value differs from what it was in before.
func (ss *session) reportAll(before settings) {
	for _, name := range reported {
		ss.reportIfChanged(name, before.get(ss.srv, name))
	}
}

// characteristics applies a transaction's isolation, access mode and
// deferrability, prefixed "transaction_" for the block or
// "default_transaction_" for the session.
func (ss *session) characteristics(tx *fingerprint.Transaction, prefix string) {
	local := prefix == "transaction_"
	set := func(name, v string) {
		if local {
			ss.set.current[name] = v
		} else {
			ss.applySet(name, v, false, false)
		}
	}
	if tx.Isolation != "" {
		set(prefix+"isolation", tx.Isolation)
	}
	if tx.ReadOnly {
		set(prefix+"read_only", "on")
	}
	if tx.ReadWrite {
		set(prefix+"read_only", "off")
	}
	if tx.Deferrable {
		set(prefix+"deferrable", "on")
	}
	if tx.NotDeferrable {
		set(prefix+"deferrable", "off")
	}
}

// setting runs SET, RESET, RESET ALL and DISCARD ALL.
func (ss *session) setting(st *fingerprint.Statement) (*result, error) {
	sc := st.Set
	switch {
	case sc.Characteristics != nil:
		ss.characteristics(sc.Characteristics, "default_transaction_")
	case sc.Name == "" && sc.Reset:
		if strings.HasPrefix(st.Command, "DISCARD") {
			if ss.tx != 'I' {
				return nil, pgErr(codeActiveTx, "DISCARD ALL cannot run inside a transaction block")
			}
			clear(ss.stmts)
			clear(ss.portals)
			clear(ss.cursors)
		}
		ss.resetAll(ss.initial)
	case sc.Name == "role":
		// No roles on this warehouse: SET ROLE NONE and its kin are accepted.
	default:
		ss.applySet(settingName(sc.Name), sc.Value, sc.Reset, sc.Local)
	}
	return command(st.Command), nil
}

// show answers SHOW.
func (ss *session) show(name string, formats []int16) (*result, error) {
	if name == "all" {
		names := map[string]bool{}
		for k := range defaults {
			names[k] = true
		}
		for k := range ss.set.current {
			names[k] = true
		}
		names["server_version"], names["server_version_num"] = true, true
		var rows [][]string
		for _, k := range sortedKeys(names) {
			rows = append(rows, []string{canonical(k), ss.set.get(ss.srv, k), ""})
		}
		return local([]column{{"name", oidText}, {"setting", oidText}, {"description", oidText}}, rows, "SHOW", formats), nil
	}
	if _, set := ss.set.current[name]; !set && !ss.srv.known(name) {
		return nil, pgErr(codeUnknownSetting, fmt.Sprintf("unrecognized configuration parameter %q", name))
	}
	return local([]column{{canonical(name), oidText}}, [][]string{{ss.set.get(ss.srv, name)}}, "SHOW", formats), nil
}

// call answers pg_backend_pid(), pg_cancel_backend(pid) and
// pg_terminate_backend(pid) for the adapter's own sessions.
func (ss *session) call(fn, arg, alias string, a *args) (*result, error) {
	var formats []int16
	if a != nil {
		formats = a.resultFormats
		if arg == "$1" && len(a.params) == 1 {
			arg = paramInt(a.params[0], format(a.paramFormats, 0))
		}
	}
	name := alias
	if name == "" {
		name = fn
	}
	if fn == "pg_backend_pid" {
		if arg != "" {
			return nil, pgErr("42883", "function pg_backend_pid(integer) does not exist")
		}
		return local([]column{{name, oidInt4}}, [][]string{{strconv.FormatUint(uint64(ss.pid), 10)}}, "SELECT 1", formats), nil
	}
	pid, err := strconv.ParseUint(arg, 10, 32)
	if err != nil {
		return nil, pgErr("42883", "function "+fn+"() does not exist")
	}
	ok := "f"
	if t := ss.srv.session(uint32(pid)); t != nil {
		ok = "t"
		if fn == "pg_cancel_backend" {
			t.cancelRunning(true)
		} else if t != ss {
			t.terminate()
		} else {
			return nil, pgErr(codeAdminShutdown, "terminating connection due to administrator command")
		}
	} else {
		ss.notice("WARNING", "01000", fmt.Sprintf("PID %d is not a PostgreSQL backend process", pid))
	}
	return local([]column{{name, oidBool}}, [][]string{{ok}}, "SELECT 1", formats), nil
}

// paramInt reads an integer parameter in text or binary form.
func paramInt(p []byte, f int16) string {
	if f == 0 {
		return string(p)
	}
	switch len(p) {
	case 2:
		return strconv.Itoa(int(int16(binary.BigEndian.Uint16(p))))
	case 4:
		return strconv.Itoa(int(int32(binary.BigEndian.Uint32(p))))
	case 8:
		return strconv.FormatInt(int64(binary.BigEndian.Uint64(p)), 10)
	}
	return ""
}

// simpleQuery runs a Query message: each statement in turn, stopping at
// the first error.
func (ss *session) simpleQuery(text string) {
	a := ss.srv.analyze(text)
	ss.label = a.Labels.Dashboard
	if len(a.Statements) == 0 {
		ss.out.Begin('I')
		ss.out.Finish()
		return
	}
	for i := range a.Statements {
		st := &a.Statements[i]
		var res *result
		err := ss.run(func(ctx context.Context) error {
			var err error
			res, err = ss.exec(ctx, st, nil)
			return err
		})
		if err != nil {
			ss.fail(err)
			ss.skipping = false
			return
		}
		if res.fields != nil {
			ss.out.Bytes(res.fields)
		}
		for _, r := range res.rows {
			ss.out.Bytes(r)
			if len(ss.out.B) > 256<<10 {
				if err := ss.flush(); err != nil {
					return
				}
			}
		}
		ss.complete(res.tag)
	}
}

// complete appends CommandComplete.
func (ss *session) complete(tag string) {
	ss.out.Begin('C')
	ss.out.String(tag)
	ss.out.Finish()
}

// analyze splits and classifies a text.
func (s *Server) analyze(text string) *fingerprint.Analysis {
	if s.cfg.Analyzer != nil {
		return s.cfg.Analyzer.Analyze(text)
	}
	return fingerprint.Analyze(text)
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

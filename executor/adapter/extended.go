package adapter

import (
	"context"
	"fmt"
	"math"
	"strconv"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/pgwire"
)

// prepared is a statement of the extended protocol.
type prepared struct {
	st    *fingerprint.Statement // nil for an empty query
	label string                 // the dashboard label in its comments
	oids  []uint32
	desc  *executor.Description // once described
}

// portal is a bound statement, run when first described or executed and
// handed out in the portions Execute asks for.
type portal struct {
	stmt *prepared
	a    args
	res  *result
	pos  int
	done bool
}

// cursor is a DECLAREd cursor: its query's answer and a position (0
// before the first row, len+1 after the last).
type cursor struct {
	res  *result
	pos  int
	hold bool
}

func (ss *session) parse(body []byte) {
	sc := pgwire.NewScanner(body)
	name := string(sc.CString())
	text := string(sc.CString())
	n := int(sc.Int16())
	oids := make([]uint32, 0, max(n, 0))
	for range n {
		oids = append(oids, uint32(sc.Int32()))
	}
	if sc.Err != nil {
		ss.fail(pgErr(codeProtocolViolation, "invalid Parse message"))
		return
	}
	if _, ok := ss.stmts[name]; ok && name != "" {
		ss.fail(pgErr(codeDuplicateStmt, fmt.Sprintf("prepared statement %q already exists", name)))
		return
	}
	a := ss.srv.analyze(text)
	if len(a.Statements) > 1 {
		ss.fail(pgErr(codeSyntax, "cannot insert multiple commands into a prepared statement"))
		return
	}
	p := &prepared{oids: oids, label: a.Labels.Dashboard}
	if len(a.Statements) == 1 {
		p.st = &a.Statements[0]
	}
	if ss.stmts == nil {
		ss.stmts = map[string]*prepared{}
	}
	ss.stmts[name] = p
	ss.out.Begin('1')
	ss.out.Finish()
}

func (ss *session) bind(body []byte) {
	sc := pgwire.NewScanner(body)
	pname := string(sc.CString())
	sname := string(sc.CString())
	var a args
	for range int(sc.Int16()) {
		a.paramFormats = append(a.paramFormats, sc.Int16())
	}
	for range int(sc.Int16()) {
		n := sc.Int32()
		if n < 0 {
			a.params = append(a.params, nil)
			continue
		}
		a.params = append(a.params, append([]byte{}, sc.Next(int(n))...))
	}
	for range int(sc.Int16()) {
		a.resultFormats = append(a.resultFormats, sc.Int16())
	}
	if sc.Err != nil {
		ss.fail(pgErr(codeProtocolViolation, "invalid Bind message"))
		return
	}
	p, ok := ss.stmts[sname]
	if !ok {
		ss.fail(pgErr(codeUnknownStatement, fmt.Sprintf("prepared statement %q does not exist", sname)))
		return
	}
	if _, ok := ss.portals[pname]; ok && pname != "" {
		ss.fail(pgErr(codeDuplicateCursor, fmt.Sprintf("portal %q already exists", pname)))
		return
	}
	if p.desc != nil && len(a.params) != len(p.desc.ParamOIDs) {
		ss.fail(pgErr(codeProtocolViolation, fmt.Sprintf("bind message supplies %d parameters, but prepared statement %q requires %d", len(a.params), sname, len(p.desc.ParamOIDs))))
		return
	}
	a.oids = p.oids
	if p.desc != nil {
		a.oids = p.desc.ParamOIDs
	}
	if ss.portals == nil {
		ss.portals = map[string]*portal{}
	}
	ss.portals[pname] = &portal{stmt: p, a: a}
	ss.out.Begin('2')
	ss.out.Finish()
}

func (ss *session) describe(body []byte) {
	sc := pgwire.NewScanner(body)
	kind := sc.Byte()
	name := string(sc.CString())
	if sc.Err != nil {
		ss.fail(pgErr(codeProtocolViolation, "invalid Describe message"))
		return
	}
	if kind == 'P' {
		p, ok := ss.portals[name]
		if !ok {
			ss.fail(pgErr(codeUnknownPortal, fmt.Sprintf("portal %q does not exist", name)))
			return
		}
		if err := ss.runPortal(p); err != nil {
			ss.fail(err)
			return
		}
		ss.fields(p.res.fields)
		return
	}
	p, ok := ss.stmts[name]
	if !ok {
		ss.fail(pgErr(codeUnknownStatement, fmt.Sprintf("prepared statement %q does not exist", name)))
		return
	}
	if err := ss.describeStatement(p); err != nil {
		ss.fail(err)
		return
	}
	ss.out.Begin('t')
	ss.out.Int16(int16(len(p.desc.ParamOIDs)))
	for _, oid := range p.desc.ParamOIDs {
		ss.out.Int32(int32(oid))
	}
	ss.out.Finish()
	ss.fields(p.desc.Fields)
}

// fields appends a RowDescription, or NoData for nil.
func (ss *session) fields(f []byte) {
	if f == nil {
		ss.out.Begin('n')
		ss.out.Finish()
		return
	}
	ss.out.Bytes(f)
}

// describeStatement finds a statement's parameter types and answer
// columns without running it.
func (ss *session) describeStatement(p *prepared) error {
	if p.desc != nil {
		return nil
	}
	st := p.st
	d := &executor.Description{ParamOIDs: p.oids}
	switch {
	case st == nil:
	case st.Show != "":
		res, err := ss.show(st.Show, nil)
		if err != nil {
			return err
		}
		d.Fields = res.fields
	case st.Fetch != nil && !st.Fetch.Move:
		c, ok := ss.cursors[st.Fetch.Name]
		if !ok {
			return pgErr(codeUnknownCursor, fmt.Sprintf("cursor %q does not exist", st.Fetch.Name))
		}
		d.Fields = c.res.fields
	case callRE.MatchString(st.Normalized):
		m := callRE.FindStringSubmatch(st.Normalized)
		oid := uint32(oidBool)
		if m[1] == "pg_backend_pid" {
			oid = oidInt4
		}
		d.Fields = local([]column{{cmpOr(m[3], m[1]), oid}}, nil, "", nil).fields
		if m[2] == "$1" && len(d.ParamOIDs) == 0 {
			d.ParamOIDs = []uint32{oidInt4}
		}
	case st.Tx != nil || st.Set != nil || st.Kind == fingerprint.KindSession || st.Cursor != nil || st.Close != "" || st.CloseAll:
	default:
		desc, ok := ss.srv.cfg.Warehouse.(executor.Describer)
		if !ok {
			return pgErr(codeFeatureNotSupport, "the "+ss.srv.cfg.Name+" warehouse cannot describe a statement before it runs: describe the portal instead, or use the simple protocol")
		}
		var got *executor.Description
		err := ss.run(func(ctx context.Context) error {
			var err error
			got, err = desc.Describe(ctx, &executor.Request{
				Login: executor.Login{User: ss.user, Database: ss.database}, SQL: st.Text,
				ParamOIDs: p.oids, Settings: ss.requestSettings(),
			})
			return err
		})
		if err != nil {
			return err
		}
		d.Fields = got.Fields
		d.ParamOIDs = make([]uint32, max(len(got.ParamOIDs), len(p.oids)))
		for i := range d.ParamOIDs {
			if i < len(p.oids) && p.oids[i] != 0 {
				d.ParamOIDs[i] = p.oids[i]
			} else if i < len(got.ParamOIDs) {
				d.ParamOIDs[i] = got.ParamOIDs[i]
			}
		}
	}
	p.desc = d
	return nil
}

// runPortal runs a portal's statement, once.
func (ss *session) runPortal(p *portal) error {
	if p.res != nil {
		return nil
	}
	if p.stmt.st == nil {
		p.res = &result{empty: true}
		return nil
	}
	ss.label = p.stmt.label
	return ss.run(func(ctx context.Context) error {
		res, err := ss.exec(ctx, p.stmt.st, &p.a)
		p.res = res
		return err
	})
}

func (ss *session) execute(body []byte) {
	sc := pgwire.NewScanner(body)
	name := string(sc.CString())
	limit := int(sc.Int32())
	if sc.Err != nil {
		ss.fail(pgErr(codeProtocolViolation, "invalid Execute message"))
		return
	}
	p, ok := ss.portals[name]
	if !ok {
		ss.fail(pgErr(codeUnknownPortal, fmt.Sprintf("portal %q does not exist", name)))
		return
	}
	if p.res == nil && ss.tx == 'E' {
		ss.fail(pgErr(codeInFailedTx, "current transaction is aborted, commands ignored until end of transaction block"))
		return
	}
	if err := ss.runPortal(p); err != nil {
		ss.fail(err)
		return
	}
	res := p.res
	if res.empty {
		ss.out.Begin('I')
		ss.out.Finish()
		return
	}
	if limit <= 0 {
		limit = math.MaxInt
	}
	end := min(len(res.rows), p.pos+min(limit, len(res.rows)))
	for _, r := range res.rows[p.pos:end] {
		ss.out.Bytes(r)
		if len(ss.out.B) > 256<<10 {
			if ss.flush() != nil {
				return
			}
		}
	}
	sent := end - p.pos
	p.pos = end
	if end < len(res.rows) {
		ss.out.Begin('s')
		ss.out.Finish()
		return
	}
	tag := res.tag
	if res.count && (p.done || sent != len(res.rows)) {
		tag = "SELECT " + strconv.Itoa(sent)
	}
	p.done = true
	ss.complete(tag)
}

func (ss *session) closeMsg(body []byte) {
	sc := pgwire.NewScanner(body)
	kind := sc.Byte()
	name := string(sc.CString())
	if sc.Err != nil {
		ss.fail(pgErr(codeProtocolViolation, "invalid Close message"))
		return
	}
	if kind == 'S' {
		delete(ss.stmts, name)
	} else {
		delete(ss.portals, name)
	}
	ss.out.Begin('3')
	ss.out.Finish()
}

// declare runs DECLARE: the query runs now and its rows wait for FETCH.
func (ss *session) declare(ctx context.Context, c *fingerprint.Cursor) (*result, error) {
	if ss.tx == 'I' && !c.Hold {
		return nil, pgErr(codeNoActiveTx, "DECLARE CURSOR can only be used in transaction blocks")
	}
	if _, ok := ss.cursors[c.Name]; ok {
		return nil, pgErr(codeDuplicateCursor, fmt.Sprintf("cursor %q already exists", c.Name))
	}
	a := ss.srv.analyze(c.Query)
	if len(a.Statements) != 1 {
		return nil, pgErr(codeSyntax, "DECLARE CURSOR needs one query")
	}
	var formats []int16
	if c.Binary {
		formats = []int16{1}
	}
	res, err := ss.warehouse(ctx, &a.Statements[0], &args{resultFormats: formats})
	if err != nil {
		return nil, err
	}
	if res.fields == nil {
		return nil, pgErr("42P11", "cursor query does not return rows")
	}
	if ss.cursors == nil {
		ss.cursors = map[string]*cursor{}
	}
	ss.cursors[c.Name] = &cursor{res: res, hold: c.Hold}
	return command("DECLARE CURSOR"), nil
}

// fetch runs FETCH and MOVE.
func (ss *session) fetch(f *fingerprint.Fetch, formats []int16) (*result, error) {
	c, ok := ss.cursors[f.Name]
	if !ok {
		return nil, pgErr(codeUnknownCursor, fmt.Sprintf("cursor %q does not exist", f.Name))
	}
	n := len(c.res.rows)
	var rows [][]byte
	forward := func(k int) {
		for ; k > 0 && c.pos <= n; k-- {
			c.pos++
			if c.pos <= n {
				rows = append(rows, c.res.rows[c.pos-1])
			}
		}
	}
	backward := func(k int) {
		for ; k > 0 && c.pos > 0; k-- {
			c.pos--
			if c.pos >= 1 {
				rows = append(rows, c.res.rows[c.pos-1])
			}
		}
	}
	count := int(max(min(f.Count, math.MaxInt32), math.MinInt32))
	if f.All {
		count = math.MaxInt32
	}
	switch f.Direction {
	case fingerprint.FetchForward, fingerprint.FetchBackward:
		if f.Direction == fingerprint.FetchBackward {
			count = -count
		}
		if count >= 0 {
			forward(count)
		} else {
			backward(-count)
		}
	case fingerprint.FetchAbsolute, fingerprint.FetchRelative:
		target := count
		if f.Direction == fingerprint.FetchRelative {
			target = c.pos + count
		} else if count < 0 {
			target = n + 1 + count
		}
		c.pos = max(0, min(target, n+1))
		if c.pos >= 1 && c.pos <= n {
			rows = append(rows, c.res.rows[c.pos-1])
		}
	}
	word := "FETCH"
	if f.Move {
		word = "MOVE"
	}
	res := &result{rows: rows, tag: word + " " + strconv.Itoa(len(rows))}
	if f.Move {
		res.rows = nil
		return res, nil
	}
	res.fields = c.res.fields
	if len(formats) > 0 && !sameFormats(c.res.fields, formats) {
		return nil, pgErr(codeFeatureNotSupport, "FETCH through the extended protocol must ask for the cursor's own formats")
	}
	return res, nil
}

// sameFormats reports whether a RowDescription's format codes are the
// ones a Bind asked for.
func sameFormats(fields []byte, formats []int16) bool {
	sc := pgwire.NewScanner(pgwire.Body(fields))
	n := int(sc.Int16())
	for i := range n {
		sc.CString()
		sc.Next(16)
		if sc.Int16() != format(formats, i) {
			return false
		}
	}
	return sc.Err == nil
}

func (ss *session) closeCursor(name string, all bool) (*result, error) {
	if all {
		clear(ss.cursors)
		return command("CLOSE CURSOR ALL"), nil
	}
	if _, ok := ss.cursors[name]; !ok {
		return nil, pgErr(codeUnknownCursor, fmt.Sprintf("cursor %q does not exist", name))
	}
	delete(ss.cursors, name)
	return command("CLOSE CURSOR"), nil
}

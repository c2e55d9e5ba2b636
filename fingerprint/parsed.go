package fingerprint

import (
	"math"
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Cursor options from PostgreSQL's parsenodes.h.
const (
	cursorOptBinary = 0x0001
	cursorOptScroll = 0x0002
	cursorOptHold   = 0x0020
)

// analyzeParsed classifies the statements of a text PostgreSQL's parser
// accepted.
func analyzeParsed(sql string, toks []token, tree *pg_query.ParseResult, vol VolatilityMap, sure bool) ([]Statement, bool) {
	stmts := make([]Statement, 0, len(tree.Stmts))
	usedVol := false
	localTemps := map[string]bool{}
	for _, raw := range tree.Stmts {
		start := int(raw.StmtLocation)
		end := len(sql)
		if raw.StmtLen > 0 {
			end = start + int(raw.StmtLen)
		}
		s := Statement{Parsed: true, Offset: start, Text: strings.TrimSpace(sql[start:end])}
		s.Normalized = statementNormalized(sql, toks, start, end, sure)
		w := newWalker(vol, &s, localTemps)
		w.statement(raw.Stmt)
		if s.Cursor != nil {
			s.Cursor.Query = cursorQuery(sql, toks, start, end)
		}
		usedVol = usedVol || w.usedVol
		for _, t := range s.CreatesTemp {
			localTemps[t] = true
		}
		stmts = append(stmts, s)
	}
	return stmts, usedVol
}

// cursorQuery returns the query of the DECLARE CURSOR within [start,
// end): the text after the first FOR that follows CURSOR.
func cursorQuery(sql string, toks []token, start, end int) string {
	lo, hi := tokenRange(toks, start, end)
	seen := false
	for i := lo; i < hi; i++ {
		t := toks[i]
		if t.kind != tIdent {
			continue
		}
		w := sql[t.start:t.end]
		switch {
		case strings.EqualFold(w, "cursor"):
			seen = true
		case seen && strings.EqualFold(w, "for"):
			return strings.TrimSpace(strings.TrimRight(strings.TrimSpace(sql[t.end:end]), ";"))
		}
	}
	return ""
}

// statementNormalized renders the tokens within [start, end), without
// separating semicolons.
func statementNormalized(sql string, toks []token, start, end int, sure bool) string {
	if !sure {
		return rawNormalized(sql[start:end])
	}
	lo, hi := tokenRange(toks, start, end)
	for hi > lo && isSemicolon(sql, toks[hi-1]) {
		hi--
	}
	for lo < hi && isSemicolon(sql, toks[lo]) {
		lo++
	}
	return string(normalize(sql, toks[lo:hi], nil))
}

func isSemicolon(sql string, t token) bool {
	return t.kind == tOp && t.end-t.start == 1 && sql[t.start] == ';'
}

// tokenRange returns the indexes of the tokens lying within [start, end).
func tokenRange(toks []token, start, end int) (int, int) {
	lo := 0
	for lo < len(toks) && int(toks[lo].start) < start {
		lo++
	}
	hi := lo
	for hi < len(toks) && int(toks[hi].end) <= end {
		hi++
	}
	return lo, hi
}

// walker visits one statement's parse tree.
type walker struct {
	vol     VolatilityMap
	s       *Statement
	temps   map[string]bool // temporary tables created earlier in the same text
	top     protoreflect.Message
	writes  map[*pg_query.RangeVar]bool // RangeVars that are write targets
	ctes    []string                    // CTE names in scope, innermost last
	reads   map[string]bool
	written map[string]bool
	funcs   map[string]bool
	unqual  map[string]bool
	reason  string // first reason found not to cache
	nested  bool   // a DML statement below the top one
	usedVol bool
}

func newWalker(vol VolatilityMap, s *Statement, temps map[string]bool) *walker {
	return &walker{
		vol: vol, s: s, temps: temps,
		writes:  map[*pg_query.RangeVar]bool{},
		reads:   map[string]bool{},
		written: map[string]bool{},
		funcs:   map[string]bool{},
		unqual:  map[string]bool{},
	}
}

func (w *walker) deny(reason string) {
	if w.reason == "" {
		w.reason = reason
	}
}

// statement classifies the top node, walks the tree, and fills w.s.
func (w *walker) statement(n *pg_query.Node) {
	s := w.s
	m := nodeMessage(n)
	if m == nil {
		s.Kind, s.Command = KindUnknown, "UNKNOWN"
		s.Reason = ReasonUnknown
		return
	}
	w.top = m
	s.Kind, s.Command = classify(n)
	if s.Kind == KindWrite || s.Kind == KindDDL {
		w.markTargets(m)
	}
	w.details(n)
	w.walk(m)
	w.settle(n)
}

// settle turns what the walk found into the statement's fields.
func (w *walker) settle(n *pg_query.Node) {
	s := w.s
	if w.nested {
		switch x := n.Node.(type) {
		case *pg_query.Node_SelectStmt:
			s.Kind = KindWrite
			w.reason = ReasonModifyingCTE
		case *pg_query.Node_ExplainStmt:
			if explainAnalyze(x.ExplainStmt) {
				s.Kind = KindWrite
			}
		}
	}
	s.ReadTables = setKeys(w.reads)
	for _, t := range s.ReadTables {
		s.ReadsCatalog = s.ReadsCatalog || catalogTable(t)
	}
	s.WriteTables = setKeys(w.written)
	s.Functions = setKeys(w.funcs)
	s.unqualified = setKeys(w.unqual)
	s.CreatesTemp = sortedSet(s.CreatesTemp)
	switch {
	case s.Kind != KindRead:
		s.Reason = kindReason(s.Kind)
		if w.reason != "" && (w.reason == ReasonModifyingCTE || w.reason == ReasonSelectInto) {
			s.Reason = w.reason
		}
	case w.reason != "":
		s.Reason = w.reason
	default:
		s.Cacheable = true
	}
}

// nodeMessage returns the message inside a Node's oneof.
func nodeMessage(n *pg_query.Node) protoreflect.Message {
	if n == nil || n.Node == nil {
		return nil
	}
	m := n.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("node")
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message()
}

// classify gives the kind and command of a top-level statement.
func classify(n *pg_query.Node) (Kind, string) {
	switch x := n.Node.(type) {
	case *pg_query.Node_SelectStmt:
		if x.SelectStmt.IntoClause != nil {
			return KindDDL, "SELECT INTO"
		}
		return KindRead, "SELECT"
	case *pg_query.Node_InsertStmt:
		return KindWrite, "INSERT"
	case *pg_query.Node_UpdateStmt:
		return KindWrite, "UPDATE"
	case *pg_query.Node_DeleteStmt:
		return KindWrite, "DELETE"
	case *pg_query.Node_MergeStmt:
		return KindWrite, "MERGE"
	case *pg_query.Node_TruncateStmt:
		return KindWrite, "TRUNCATE"
	case *pg_query.Node_CallStmt:
		return KindWrite, "CALL"
	case *pg_query.Node_DoStmt:
		return KindWrite, "DO"
	case *pg_query.Node_RefreshMatViewStmt:
		return KindWrite, "REFRESH MATERIALIZED VIEW"
	case *pg_query.Node_ClusterStmt:
		return KindWrite, "CLUSTER"
	case *pg_query.Node_CopyStmt:
		if x.CopyStmt.IsFrom {
			return KindWrite, "COPY"
		}
		return KindUtility, "COPY"
	case *pg_query.Node_ExplainStmt:
		if explainAnalyze(x.ExplainStmt) {
			if k, _ := classify(x.ExplainStmt.Query); k == KindWrite || k == KindDDL || k == KindUnknown {
				return KindWrite, "EXPLAIN"
			}
		}
		return KindUtility, "EXPLAIN"
	case *pg_query.Node_TransactionStmt:
		return KindTransaction, txCommand(x.TransactionStmt)
	case *pg_query.Node_VariableSetStmt:
		if x.VariableSetStmt.Kind == pg_query.VariableSetKind_VAR_SET_MULTI && x.VariableSetStmt.Name == "TRANSACTION" {
			return KindTransaction, "SET TRANSACTION"
		}
		if k := x.VariableSetStmt.Kind; k == pg_query.VariableSetKind_VAR_RESET || k == pg_query.VariableSetKind_VAR_RESET_ALL {
			return KindSession, "RESET"
		}
		return KindSession, "SET"
	case *pg_query.Node_DiscardStmt:
		return KindSession, "DISCARD"
	case *pg_query.Node_VariableShowStmt:
		return KindUtility, "SHOW"
	case *pg_query.Node_ExecuteStmt:
		return KindUnknown, "EXECUTE"
	case *pg_query.Node_GrantStmt:
		if x.GrantStmt.IsGrant {
			return KindDDL, "GRANT"
		}
		return KindDDL, "REVOKE"
	case *pg_query.Node_CreateStmt:
		return KindDDL, "CREATE TABLE"
	case *pg_query.Node_ViewStmt:
		return KindDDL, "CREATE VIEW"
	case *pg_query.Node_IndexStmt:
		return KindDDL, "CREATE INDEX"
	case *pg_query.Node_CreateTableAsStmt:
		if x.CreateTableAsStmt.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
			return KindDDL, "CREATE MATERIALIZED VIEW"
		}
		return KindDDL, "CREATE TABLE AS"
	case *pg_query.Node_DropStmt:
		return KindDDL, "DROP " + objectName(x.DropStmt.RemoveType)
	case *pg_query.Node_ListenStmt, *pg_query.Node_UnlistenStmt, *pg_query.Node_NotifyStmt,
		*pg_query.Node_DeclareCursorStmt, *pg_query.Node_FetchStmt, *pg_query.Node_ClosePortalStmt,
		*pg_query.Node_PrepareStmt, *pg_query.Node_DeallocateStmt, *pg_query.Node_LockStmt,
		*pg_query.Node_VacuumStmt, *pg_query.Node_CheckPointStmt, *pg_query.Node_ReindexStmt,
		*pg_query.Node_LoadStmt, *pg_query.Node_ConstraintsSetStmt:
		return KindUtility, commandFromType(n)
	}
	cmd := commandFromType(n)
	for _, p := range []string{"CREATE ", "ALTER ", "DROP ", "RENAME", "COMMENT", "DEFINE", "COMPOSITE", "IMPORT", "REASSIGN", "SEC ", "RULE", "SECLABEL"} {
		if strings.HasPrefix(cmd, p) {
			return KindDDL, cmd
		}
	}
	return KindUnknown, cmd
}

// commandFromType spells a node type as a command: AlterTableStmt gives
// "ALTER TABLE".
func commandFromType(n *pg_query.Node) string {
	m := nodeMessage(n)
	if m == nil {
		return "UNKNOWN"
	}
	name := strings.TrimSuffix(string(m.Descriptor().Name()), "Stmt")
	var b strings.Builder
	for i, r := range name {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

func objectName(t pg_query.ObjectType) string {
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

func txCommand(t *pg_query.TransactionStmt) string {
	switch t.Kind {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:
		return "ROLLBACK"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:
		return "ROLLBACK TO"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "TRANSACTION"
}

var txOps = map[pg_query.TransactionStmtKind]TxOp{
	pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:             TxBegin,
	pg_query.TransactionStmtKind_TRANS_STMT_START:             TxBegin,
	pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:            TxCommit,
	pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK:          TxRollback,
	pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:         TxSavepoint,
	pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:           TxRelease,
	pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_TO:       TxRollbackTo,
	pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:           TxPrepare,
	pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:   TxCommitPrepared,
	pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED: TxRollbackPrepared,
}

func explainAnalyze(e *pg_query.ExplainStmt) bool {
	for _, o := range e.Options {
		if d := o.GetDefElem(); d != nil && d.Defname == "analyze" {
			return d.Arg == nil || constString(d.Arg) != "false" && constString(d.Arg) != "off" && constString(d.Arg) != "0"
		}
	}
	return false
}

// details fills what only some statement types carry: transaction and
// SET descriptions, session pins.
func (w *walker) details(n *pg_query.Node) {
	s := w.s
	switch x := n.Node.(type) {
	case *pg_query.Node_TransactionStmt:
		t := x.TransactionStmt
		tx := &Transaction{Op: txOps[t.Kind], Chain: t.Chain, Savepoint: t.SavepointName}
		if t.Gid != "" {
			tx.Savepoint = t.Gid
		}
		txOptions(tx, t.Options)
		s.Tx = tx
	case *pg_query.Node_VariableSetStmt:
		w.setCommand(x.VariableSetStmt)
	case *pg_query.Node_DiscardStmt:
		if x.DiscardStmt.Target == pg_query.DiscardMode_DISCARD_ALL {
			s.Set = &SetCommand{Reset: true, Known: true}
		}
	case *pg_query.Node_VariableShowStmt:
		s.Show = strings.ToLower(x.VariableShowStmt.Name)
	case *pg_query.Node_DeallocateStmt:
		if !x.DeallocateStmt.Isall {
			s.Deallocate = x.DeallocateStmt.Name
		}
	case *pg_query.Node_ListenStmt:
		s.Pin = "LISTEN"
	case *pg_query.Node_DeclareCursorStmt:
		d := x.DeclareCursorStmt
		if d.Options&cursorOptHold != 0 {
			s.Pin = "WITH HOLD cursor"
		}
		s.Cursor = &Cursor{Name: d.Portalname, Hold: d.Options&cursorOptHold != 0,
			Binary: d.Options&cursorOptBinary != 0, Scroll: d.Options&cursorOptScroll != 0}
	case *pg_query.Node_FetchStmt:
		f := x.FetchStmt
		s.Fetch = &Fetch{Name: f.Portalname, Move: f.Ismove, Count: f.HowMany, All: f.HowMany == math.MaxInt64}
		switch f.Direction {
		case pg_query.FetchDirection_FETCH_BACKWARD:
			s.Fetch.Direction = FetchBackward
		case pg_query.FetchDirection_FETCH_ABSOLUTE:
			s.Fetch.Direction = FetchAbsolute
		case pg_query.FetchDirection_FETCH_RELATIVE:
			s.Fetch.Direction = FetchRelative
		}
	case *pg_query.Node_ClosePortalStmt:
		s.Close = x.ClosePortalStmt.Portalname
		s.CloseAll = s.Close == ""
	case *pg_query.Node_PrepareStmt:
		s.Pin = "PREPARE"
	case *pg_query.Node_LoadStmt:
		s.Pin = "LOAD"
	}
}

func txOptions(tx *Transaction, opts []*pg_query.Node) {
	for _, o := range opts {
		d := o.GetDefElem()
		if d == nil {
			continue
		}
		v := constString(d.Arg)
		switch d.Defname {
		case "transaction_isolation":
			tx.Isolation = strings.ToLower(v)
		case "transaction_read_only":
			if v == "1" || v == "true" {
				tx.ReadOnly = true
			} else {
				tx.ReadWrite = true
			}
		case "transaction_deferrable":
			tx.Deferrable = v == "1" || v == "true"
			tx.NotDeferrable = !tx.Deferrable
		}
	}
}

// setCommand describes SET and RESET.
func (w *walker) setCommand(v *pg_query.VariableSetStmt) {
	s := w.s
	if v.Kind == pg_query.VariableSetKind_VAR_SET_MULTI && v.Name == "TRANSACTION" {
		tx := &Transaction{Op: TxSetTransaction}
		txOptions(tx, v.Args)
		s.Tx = tx
		return
	}
	c := &SetCommand{Name: strings.ToLower(v.Name), Local: v.IsLocal}
	switch v.Kind {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		var vals []string
		for _, a := range v.Args {
			vals = append(vals, constString(a))
		}
		c.Value = strings.Join(vals, ", ")
	case pg_query.VariableSetKind_VAR_SET_DEFAULT, pg_query.VariableSetKind_VAR_RESET:
		c.Reset = true
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		c.Reset, c.Name = true, ""
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		// SET SESSION CHARACTERISTICS AS TRANSACTION ...: the defaults of
		// the transactions that follow. The proxy follows them (an
		// isolation level above READ COMMITTED keeps transactions away
		// from the cache); they change no single statement's answer.
		// Each is followed under the name of the setting it changes, so
		// that a later change of another one does not replace it.
		tx := &Transaction{}
		txOptions(tx, v.Args)
		c.Value = tx.Isolation
		c.Known = true
		c.Characteristics = tx
		switch {
		case len(v.Args) != 1:
		case tx.Isolation != "":
			c.Name = "default_transaction_isolation"
		case tx.ReadOnly || tx.ReadWrite:
			c.Name = "default_transaction_read_only"
		default:
			c.Name = "default_transaction_deferrable"
		}
	}
	if c.Name != "" && v.Kind != pg_query.VariableSetKind_VAR_SET_MULTI {
		c.Key = keySettings[c.Name]
		c.Known = isKnownSetting(c.Name)
	} else if c.Name == "" {
		c.Known = true
	}
	if !c.Known && !c.Local {
		s.Pin = "SET of unknown setting " + c.Name
	}
	s.Set = c
}

// constString returns the text of a constant (string, number, boolean),
// looking through a type cast; "" for anything else.
func constString(n *pg_query.Node) string {
	if n == nil {
		return ""
	}
	if tc := n.GetTypeCast(); tc != nil {
		return constString(tc.Arg)
	}
	c := n.GetAConst()
	if c == nil {
		if s := n.GetString_(); s != nil {
			return s.Sval
		}
		if i := n.GetInteger(); i != nil {
			return itoa(int(i.Ival))
		}
		return ""
	}
	switch v := c.Val.(type) {
	case *pg_query.A_Const_Sval:
		return v.Sval.Sval
	case *pg_query.A_Const_Ival:
		return itoa(int(v.Ival.Ival))
	case *pg_query.A_Const_Fval:
		return v.Fval.Fval
	case *pg_query.A_Const_Boolval:
		if v.Boolval.Boolval {
			return "true"
		}
		return "false"
	}
	return ""
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	neg := i < 0
	if neg {
		i = -i
	}
	var b [20]byte
	p := len(b)
	for i > 0 {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
	}
	if neg {
		p--
		b[p] = '-'
	}
	return string(b[p:])
}

// markTargets records the relations a write or DDL statement names
// directly as written: the target of INSERT/UPDATE/DELETE/MERGE, the
// table created, altered or dropped. Relations in its subqueries are
// read. CREATE INDEX changes no answer and is left out.
func (w *walker) markTargets(m protoreflect.Message) {
	switch x := m.Interface().(type) {
	case *pg_query.IndexStmt, *pg_query.CreateStatsStmt, *pg_query.ExplainStmt, *pg_query.CallStmt,
		*pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt:
		return // DML marks its own target as the walk meets it
	case *pg_query.SelectStmt:
		if x.IntoClause != nil && x.IntoClause.Rel != nil {
			w.writes[x.IntoClause.Rel] = true
		}
		return
	case *pg_query.DropStmt:
		w.dropTargets(x)
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				if n, ok := l.Get(i).Message().Interface().(*pg_query.Node); ok {
					if rv := n.GetRangeVar(); rv != nil {
						w.writes[rv] = true
					}
				}
			}
			return true
		}
		switch x := v.Message().Interface().(type) {
		case *pg_query.RangeVar:
			w.writes[x] = true
		case *pg_query.IntoClause:
			if x.Rel != nil {
				w.writes[x.Rel] = true
			}
		}
		return true
	})
}

// dropTargets records the relations DROP TABLE/VIEW/... removes.
func (w *walker) dropTargets(d *pg_query.DropStmt) {
	switch d.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW, pg_query.ObjectType_OBJECT_MATVIEW,
		pg_query.ObjectType_OBJECT_FOREIGN_TABLE, pg_query.ObjectType_OBJECT_SEQUENCE:
	default:
		return
	}
	for _, o := range d.Objects {
		l := o.GetList()
		if l == nil {
			continue
		}
		var parts []string
		for _, it := range l.Items {
			if s := it.GetString_(); s != nil {
				parts = append(parts, s.Sval)
			}
		}
		name := qualify(parts...)
		w.written[name] = true
		if len(parts) == 1 {
			w.unqual[name] = true
		}
	}
}

// walk visits m and everything below it.
func (w *walker) walk(m protoreflect.Message) {
	if !m.IsValid() {
		return
	}
	withDone, pushed := w.visit(m)
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsMap() {
			return true
		}
		if withDone && fd.Name() == "with_clause" {
			return true
		}
		if fd.IsList() {
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				w.walk(l.Get(i).Message())
			}
			return true
		}
		w.walk(v.Message())
		return true
	})
	w.ctes = w.ctes[:len(w.ctes)-pushed]
}

// visit handles one node before its children. When the node has a WITH
// clause, visit walks the CTE bodies itself, each seeing the names before
// it (all of them when RECURSIVE), then brings every name into scope for
// the rest of the node; it returns how many names to pop after.
func (w *walker) visit(m protoreflect.Message) (withDone bool, pushed int) {
	switch x := m.Interface().(type) {
	case *pg_query.RangeVar:
		w.rangeVar(x)
	case *pg_query.FuncCall:
		w.funcCall(x)
	case *pg_query.SQLValueFunction:
		w.sqlValueFunction(x)
	case *pg_query.TypeCast:
		if x.TypeName != nil && len(x.TypeName.Names) > 0 {
			if t := x.TypeName.Names[len(x.TypeName.Names)-1].GetString_(); t != nil && catalogType(t.Sval) {
				w.s.ReadsCatalog = true
			}
		}
		if c := x.Arg.GetAConst(); c != nil && c.GetSval() != nil {
			switch strings.ToLower(strings.TrimSpace(c.GetSval().Sval)) {
			case "now", "today", "tomorrow", "yesterday":
				w.s.UsesTime = true
			}
		}
	case *pg_query.RangeTableSample:
		if x.Repeatable == nil {
			w.deny(ReasonSample)
		}
	case *pg_query.SelectStmt:
		if len(x.LockingClause) > 0 {
			w.deny(ReasonLocking)
		}
		if x.IntoClause != nil {
			w.deny(ReasonSelectInto)
		}
		return w.with(x.WithClause)
	case *pg_query.InsertStmt:
		w.dml(m, x.Relation)
		return w.with(x.WithClause)
	case *pg_query.UpdateStmt:
		w.dml(m, x.Relation)
		return w.with(x.WithClause)
	case *pg_query.DeleteStmt:
		w.dml(m, x.Relation)
		return w.with(x.WithClause)
	case *pg_query.MergeStmt:
		w.dml(m, x.Relation)
		return w.with(x.WithClause)
	}
	return false, 0
}

func (w *walker) dml(m protoreflect.Message, rel *pg_query.RangeVar) {
	if rel != nil {
		w.writes[rel] = true
	}
	if m.Interface() != w.top.Interface() {
		w.nested = true
		w.deny(ReasonModifyingCTE)
	}
}

func (w *walker) with(wc *pg_query.WithClause) (bool, int) {
	if wc == nil {
		return false, 0
	}
	names := make([]string, 0, len(wc.Ctes))
	for _, c := range wc.Ctes {
		if cte := c.GetCommonTableExpr(); cte != nil {
			names = append(names, cte.Ctename)
		}
	}
	for i, c := range wc.Ctes {
		cte := c.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		visible := names[:min(i, len(names))]
		if wc.Recursive {
			visible = names
		}
		w.ctes = append(w.ctes, visible...)
		if cte.Ctequery != nil {
			w.walk(cte.Ctequery.ProtoReflect())
		}
		w.ctes = w.ctes[:len(w.ctes)-len(visible)]
	}
	w.ctes = append(w.ctes, names...)
	return true, len(names)
}

func (w *walker) inCTEScope(name string) bool {
	for i := len(w.ctes) - 1; i >= 0; i-- {
		if w.ctes[i] == name {
			return true
		}
	}
	return false
}

// rangeVar records a relation reference.
func (w *walker) rangeVar(rv *pg_query.RangeVar) {
	write := w.writes[rv]
	if !write && rv.Schemaname == "" && rv.Catalogname == "" && w.inCTEScope(rv.Relname) {
		return
	}
	name := qualify(rv.Catalogname, rv.Schemaname, rv.Relname)
	if write {
		w.written[name] = true
	} else {
		w.reads[name] = true
	}
	if rv.Schemaname == "" && rv.Catalogname == "" {
		w.unqual[name] = true
	}
	switch {
	case rv.Relpersistence == "t" && write:
		w.s.CreatesTemp = append(w.s.CreatesTemp, rv.Relname)
		w.s.Pin = "temporary table"
		w.deny(ReasonTemp)
	case isTempSchema(rv.Schemaname):
		w.deny(ReasonTemp + " " + name)
	case rv.Schemaname == "" && w.temps[rv.Relname]:
		w.deny(ReasonTemp + " " + name)
	case isLive(rv.Schemaname, rv.Relname):
		w.deny(ReasonLiveState + " (" + name + ")")
	}
}

// funcCall records a function call and judges it.
func (w *walker) funcCall(f *pg_query.FuncCall) {
	var parts []string
	for _, n := range f.Funcname {
		if s := n.GetString_(); s != nil {
			parts = append(parts, s.Sval)
		}
	}
	if len(parts) == 0 {
		return
	}
	name := parts[len(parts)-1]
	schema := ""
	if len(parts) > 1 {
		schema = parts[len(parts)-2]
	}
	full := qualify(parts...)
	w.funcs[full] = true
	w.usedVol = true
	v, ok := w.vol.lookup(schema, name)
	catalog := schema == "" || schema == "pg_catalog"
	switch {
	case catalog && connectionBound(name):
		w.deny(ReasonConnection + " " + full + "()")
	case !ok:
		w.deny(ReasonVolatile + " " + full + "() (not in the catalog)")
	case v == Volatile:
		w.deny(ReasonVolatile + " " + full + "()")
	}
	if catalog && timeFuncs[name] {
		w.s.UsesTime = true
	}
	if catalog && catalogFunc(name) {
		w.s.ReadsCatalog = true
	}
	if catalog && name == "age" && len(f.Args) == 1 {
		w.s.UsesTime = true
	}
	if catalog && sessionFuncs[name] {
		w.s.PerUser = true
	}
	if catalog && name == "current_setting" {
		setting := ""
		if len(f.Args) > 0 {
			setting = strings.ToLower(constString(f.Args[0]))
		}
		if !keySettings[setting] {
			w.deny(ReasonSetting)
		}
	}
	if catalog && sessionLockFuncs[name] && w.s.Pin == "" {
		w.s.Pin = "session advisory lock"
	}
	if catalog && name == "set_config" && w.s.Pin == "" {
		if len(f.Args) < 3 || constString(f.Args[2]) != "true" {
			w.s.Pin = "set_config"
		}
	}
}

func (w *walker) sqlValueFunction(f *pg_query.SQLValueFunction) {
	switch f.Op {
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_ROLE, pg_query.SQLValueFunctionOp_SVFOP_CURRENT_USER,
		pg_query.SQLValueFunctionOp_SVFOP_USER, pg_query.SQLValueFunctionOp_SVFOP_SESSION_USER,
		pg_query.SQLValueFunctionOp_SVFOP_CURRENT_SCHEMA:
		w.s.PerUser = true
	case pg_query.SQLValueFunctionOp_SVFOP_CURRENT_CATALOG:
	default:
		w.s.UsesTime = true
	}
}

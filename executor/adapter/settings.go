package adapter

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// settings are a session's settings beyond the server's defaults, by
// lower-case name: those that last past the transaction block (session)
// and those in force now (current, which adds SET LOCAL).
type settings struct {
	session map[string]string
	current map[string]string
}

func (st settings) clone() settings {
	return settings{session: maps.Clone(st.session), current: maps.Clone(st.current)}
}

// get returns a setting's value in force, or the server's default; ""
// for a setting nobody set that the server does not know.
func (st settings) get(s *Server, name string) string {
	if v, ok := st.current[name]; ok {
		return v
	}
	return s.defaultSetting(name)
}

// reported are the settings PostgreSQL reports with ParameterStatus, in
// the order it sends them at startup.
var reported = []string{
	"application_name", "client_encoding", "datestyle", "default_transaction_read_only", "in_hot_standby",
	"integer_datetimes", "intervalstyle", "is_superuser", "server_encoding", "server_version",
	"session_authorization", "standard_conforming_strings", "timezone",
}

// canonicalNames spells settings as PostgreSQL reports and shows them.
var canonicalNames = map[string]string{
	"datestyle": "DateStyle", "intervalstyle": "IntervalStyle", "timezone": "TimeZone",
}

func canonical(name string) string {
	if c, ok := canonicalNames[name]; ok {
		return c
	}
	return name
}

// defaults are the values of the settings a client may ask about, as a
// PostgreSQL server configured for UTF-8 and UTC answers them.
var defaults = map[string]string{
	"application_name":                    "",
	"bytea_output":                        "hex",
	"client_encoding":                     "UTF8",
	"client_min_messages":                 "notice",
	"datestyle":                           "ISO, MDY",
	"default_transaction_isolation":       "read committed",
	"default_transaction_read_only":       "off",
	"default_transaction_deferrable":      "off",
	"extra_float_digits":                  "1",
	"idle_in_transaction_session_timeout": "0",
	"in_hot_standby":                      "off",
	"integer_datetimes":                   "on",
	"intervalstyle":                       "postgres",
	"is_superuser":                        "off",
	"lc_collate":                          "C.UTF-8",
	"lc_ctype":                            "C.UTF-8",
	"lc_messages":                         "C.UTF-8",
	"lc_monetary":                         "C.UTF-8",
	"lc_numeric":                          "C.UTF-8",
	"lc_time":                             "C.UTF-8",
	"lock_timeout":                        "0",
	"max_identifier_length":               "63",
	"search_path":                         `"$user", public`,
	"server_encoding":                     "UTF8",
	"standard_conforming_strings":         "on",
	"statement_timeout":                   "0",
	"timezone":                            "UTC",
	"transaction_deferrable":              "off",
	"transaction_isolation":               "read committed",
	"transaction_read_only":               "off",
}

// defaultSetting returns the server's value of a setting.
func (s *Server) defaultSetting(name string) string {
	switch name {
	case "server_version":
		return s.cfg.ServerVersion
	case "server_version_num":
		return versionNum(s.cfg.ServerVersion)
	}
	return defaults[name]
}

// known reports whether SHOW of name has an answer without a SET.
func (s *Server) known(name string) bool {
	_, ok := defaults[name]
	return ok || name == "server_version" || name == "server_version_num"
}

// versionNum turns "15.4 (...)" into "150004".
func versionNum(v string) string {
	major, rest, _ := strings.Cut(strings.Fields(v + " ")[0], ".")
	minor, _, _ := strings.Cut(rest, ".")
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	return strconv.Itoa(ma*10000 + mi)
}

// startupSettings are the settings a StartupMessage gives: every
// parameter but user, database, replication and options, and the -c
// name=value (or --name=value) pairs of options.
func (s *Server) startupSettings(params map[string]string, user string) settings {
	m := map[string]string{"session_authorization": user}
	for k, v := range params {
		switch k {
		case "user", "database", "replication", "options":
			continue
		}
		m[settingName(k)] = v
	}
	for _, kv := range optionPairs(params["options"]) {
		m[settingName(kv[0])] = kv[1]
	}
	return settings{session: m, current: maps.Clone(m)}
}

// optionPairs reads the -c name=value and --name=value pairs of a startup
// options string (backslash escapes a space).
func optionPairs(opts string) [][2]string {
	var words []string
	var w strings.Builder
	esc := false
	for _, r := range opts {
		switch {
		case esc:
			w.WriteRune(r)
			esc = false
		case r == '\\':
			esc = true
		case r == ' ' || r == '\t':
			if w.Len() > 0 {
				words = append(words, w.String())
				w.Reset()
			}
		default:
			w.WriteRune(r)
		}
	}
	if w.Len() > 0 {
		words = append(words, w.String())
	}
	var out [][2]string
	for i := 0; i < len(words); i++ {
		kv := ""
		switch {
		case words[i] == "-c" && i+1 < len(words):
			i++
			kv = words[i]
		case strings.HasPrefix(words[i], "-c"):
			kv = words[i][2:]
		case strings.HasPrefix(words[i], "--"):
			kv = words[i][2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(kv, "="); ok {
			out = append(out, [2]string{strings.ReplaceAll(k, "-", "_"), v})
		}
	}
	return out
}

// requestSettings are the settings in force, by lower-case name, each as
// the SQL that applies it: what executor.Request.Settings carries to the
// warehouse.
func (ss *session) requestSettings() map[string]string {
	if len(ss.set.current) == 0 {
		return nil
	}
	out := make(map[string]string, len(ss.set.current))
	for k, v := range ss.set.current {
		if k == "session_authorization" {
			continue
		}
		out[k] = "SET " + quoteName(k) + " = " + quoteLiteral(v)
	}
	return out
}

func quoteName(name string) string {
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
		}
	}
	return name
}

func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }

// applySet applies a SET or RESET: to the transaction only when local,
// else to the session too. It appends ParameterStatus for a reported
// setting whose value changed.
func (ss *session) applySet(name, value string, reset, local bool) {
	before := ss.set.get(ss.srv, name)
	if local && ss.tx == 'I' {
		// PostgreSQL warns and does nothing outside a transaction block.
		ss.notice("WARNING", "25P01", "SET LOCAL can only be used in transaction blocks")
		return
	}
	put := func(m map[string]string) {
		if reset {
			delete(m, name)
		} else {
			m[name] = value
		}
	}
	if reset && local {
		reset, value = false, ss.set.session[name]
		if _, ok := ss.set.session[name]; !ok {
			reset = true
		}
	}
	put(ss.set.current)
	if !local {
		put(ss.set.session)
	}
	ss.reportIfChanged(name, before)
}

// resetAll is RESET ALL and DISCARD ALL: every setting back to its
// startup value.
func (ss *session) resetAll(startup settings) {
	before := map[string]string{}
	for _, name := range reported {
		before[name] = ss.set.get(ss.srv, name)
	}
	ss.set = startup.clone()
	for _, name := range reported {
		ss.reportIfChanged(name, before[name])
	}
}

func (ss *session) reportIfChanged(name, before string) {
	if !slices.Contains(reported, name) {
		return
	}
	if now := ss.set.get(ss.srv, name); now != before {
		ss.out.Begin('S')
		ss.out.String(canonical(name))
		ss.out.String(now)
		ss.out.Finish()
	}
}

// notice appends a NoticeResponse.
func (ss *session) notice(severity, code, msg string) {
	var b = &ss.out
	pe := &pgconn.PgError{Severity: severity, Code: code, Message: msg}
	start := len(b.B)
	b.PgError(pe)
	b.B[start] = 'N'
}

package policy

import (
	"fmt"
	"regexp"
	"time"

	"github.com/sqlcached/sqlcached/internal/config"
)

// Set is a compiled list of rules. It is immutable: a reload builds a new
// one, and a Set in use by one statement is never changed under it.
type Set struct {
	rules   []*Rule
	sources []Source // where the dashboard label comes from, in order
	keep    time.Duration
}

// Source is where a dashboard label comes from.
type Source string

// Label sources.
const (
	FromComment         Source = "comment"          // sqlcommenter, Metabase, Looker, Redash comments
	FromSet             Source = "set"              // SET [LOCAL] sqlcached.dashboard = '...'
	FromStartup         Source = "startup"          // options=-c sqlcached.dashboard=...
	FromApplicationName Source = "application_name" // the client's application_name
)

// DefaultSources is the order in which label sources are tried when the
// configuration does not say.
var DefaultSources = []Source{FromComment, FromSet, FromStartup, FromApplicationName}

// New returns a set of rules tried in order, with the default label
// sources.
func New(rules ...Rule) *Set {
	s := &Set{sources: DefaultSources}
	for i := range rules {
		r := rules[i]
		r.Index = i
		s.rules = append(s.rules, &r)
	}
	return s.setKeep()
}

// Keep returns how long an answer stored under any of the rules may be of
// use to another: the longest ttl+stale_ttl of the caching rules (an
// entry is kept for its own rule's stale_if_error, not another's). A hint
// under allow_hints may ask for longer; that request's own window then
// keeps its entry.
func (s *Set) Keep() time.Duration { return s.keep }

// setKeep computes Keep once the rules are in place.
func (s *Set) setKeep() *Set {
	for _, r := range s.rules {
		if r.Cache {
			s.keep = max(s.keep, r.TTL+r.StaleTTL)
		}
	}
	return s
}

// Rules returns the rules in order. Do not modify them.
func (s *Set) Rules() []*Rule { return s.rules }

// Sources returns the dashboard label sources in the order they are tried.
func (s *Set) Sources() []Source { return s.sources }

// Compile builds the rules of a configuration. A pattern that does not
// compile is reported as a *config.Error naming the key and its line.
func Compile(cfg *config.Config) (*Set, error) {
	s := &Set{sources: DefaultSources}
	if len(cfg.Labels.Dashboard) > 0 {
		s.sources = nil
		for _, src := range cfg.Labels.Dashboard {
			s.sources = append(s.sources, Source(src))
		}
	}
	for i, p := range cfg.Policies {
		key := fmt.Sprintf("policies[%d].match", i)
		m, err := compileMatch(cfg, key, p.Match)
		if err != nil {
			return nil, err
		}
		maxEntry := p.MaxEntryBytes
		if maxEntry == 0 {
			maxEntry = cfg.Cache.MaxEntryBytes
		}
		s.rules = append(s.rules, &Rule{
			Name: p.Name, Index: i, Cache: p.Cache, TTL: p.TTL.Std(), StaleTTL: p.StaleTTL.Std(),
			StaleIfError: p.StaleIfError.Std(), Timeout: p.Timeout.Std(), Queue: p.Queue,
			Shared: p.Shared, MaxEntryBytes: int(maxEntry), CacheTimeFunctions: p.CacheTimeFunctions,
			AllowHints: p.AllowHints, CancelAbandoned: p.CancelAbandoned, RefreshAhead: p.RefreshAhead.Std(), Match: m,
		})
	}
	return s.setKeep(), nil
}

func compileMatch(cfg *config.Config, key string, cm config.Match) (Match, error) {
	var m Match
	for _, f := range []struct {
		name string
		src  string
		dst  *Glob
	}{
		{"dashboard", cm.Dashboard, &m.Dashboard},
		{"chart", cm.Chart, &m.Chart},
		{"user", cm.User, &m.User},
		{"database", cm.Database, &m.Database},
		{"application_name", cm.ApplicationName, &m.ApplicationName},
		{"tool", cm.Tool, &m.Tool},
		{"shape", cm.Shape, &m.Shape},
	} {
		g, err := CompileGlob(f.src)
		if err != nil {
			return m, cfg.Errorf(key+"."+f.name, "%v", err)
		}
		*f.dst = g
	}
	list := func(name string, pats []string) ([]Glob, error) {
		var out []Glob
		for j, p := range pats {
			g, err := CompileGlob(p)
			if err != nil {
				return nil, cfg.Errorf(fmt.Sprintf("%s.%s[%d]", key, name, j), "%v", err)
			}
			if g.any() {
				if name == "tables" {
					return nil, nil // any table, or none: no condition
				}
				continue // every table list has a table "*" fits, or none
			}
			out = append(out, g)
		}
		return out, nil
	}
	tables := cm.Tables
	if cm.Table != "" {
		tables = append([]string{cm.Table}, tables...)
	}
	var err error
	if m.Tables, err = list("tables", tables); err != nil {
		return m, err
	}
	if m.TablesAll, err = list("tables_all", cm.TablesAll); err != nil {
		return m, err
	}
	if cm.SQL != "" && cm.SQL != ".*" {
		re, err := regexp.Compile(cm.SQL)
		if err != nil {
			return m, cfg.Errorf(key+".sql", "invalid regular expression: %v", err)
		}
		m.SQL = re
	}
	return m, nil
}

// ForSession returns the rule that decides every statement of a session
// of user on database under application_name, when the rules can tell
// from the session alone: the first rule whose session patterns fit looks
// at nothing else. decided is false when some statement could match a
// different rule; then each statement is decided on its own.
func (s *Set) ForSession(user, database, app string) (r *Rule, decided bool) {
	for _, r := range s.rules {
		if !r.Match.session(user, database, app) {
			continue
		}
		return r, r.Match.sessionOnly()
	}
	return nil, true // no rule can match: nothing is cached
}

// Find returns the first rule that matches in, or nil.
func (s *Set) Find(in *Input) *Rule {
	for _, r := range s.rules {
		if r.Match.session(in.User, in.Database, in.ApplicationName) && r.Match.statement(in) {
			return r
		}
	}
	return nil
}

// Decision is what the rules make of one statement.
type Decision struct {
	// Rule is the rule that matched; nil when none did.
	Rule *Rule
	// Cache says whether the statement's answer is cached (and looked
	// up); Reason says why not when it is not.
	Cache  bool
	Reason string
	// TTL is the rule's TTL after the statement's hints.
	TTL time.Duration
	// Hint describes what a comment hint did to the TTL, if anything.
	Hint string
	// Shared says one answer serves every user.
	Shared bool
}

// Reasons a statement is not cached, besides the analyzer's.
const (
	ReasonNoRule     = "no rule matches"
	ReasonRuleOff    = "the rule says cache: false"
	ReasonTime       = "reads the clock and the rule says cache_time_functions: false"
	ReasonSeveral    = "several statements in one query"
	ReasonZeroTTL    = "the TTL is zero"
	ReasonNotAnalyse = "not analysed"
)

// Decide finds the rule of in and decides whether its answer is cached,
// applying the statement's hints. in.Analysis must be set.
func (s *Set) Decide(in *Input) Decision {
	r := s.Find(in)
	d := Decision{Rule: r}
	a := in.Analysis
	switch {
	case r == nil:
		d.Reason = ReasonNoRule
		return d
	case !r.Cache:
		d.Reason = ReasonRuleOff
		return d
	case a == nil:
		d.Reason = ReasonNotAnalyse
		return d
	case !a.Cacheable:
		d.Reason = a.Reason
		return d
	case len(a.Statements) != 1:
		d.Reason = ReasonSeveral
		return d
	case a.UsesTime && !r.CacheTimeFunctions:
		d.Reason = ReasonTime
		return d
	}
	d.TTL = r.TTL
	if h := a.Hints.TTL; h > 0 && h != r.TTL {
		switch {
		case h < r.TTL:
			d.TTL, d.Hint = h, fmt.Sprintf("sqlcached:ttl=%v shortens the rule's %v", h, r.TTL)
		case r.AllowHints:
			d.TTL, d.Hint = h, fmt.Sprintf("sqlcached:ttl=%v lengthens the rule's %v (allow_hints)", h, r.TTL)
		default:
			d.Hint = fmt.Sprintf("sqlcached:ttl=%v ignored: longer than the rule's %v and the rule does not allow_hints", h, r.TTL)
		}
	}
	if d.TTL <= 0 {
		d.Reason = ReasonZeroTTL
		return d
	}
	d.Cache = true
	d.Shared = r.Shared && !a.PerUser
	return d
}

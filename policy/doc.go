// Package policy decides what happens to a statement: whether its answers
// are cached, for how long, how stale they may be served, under which
// timeout and on which queue its misses run, and whether one answer serves
// every user.
//
// Rules come from the `policies` section of the configuration, in order;
// the first rule whose match fits a statement decides (see Set.Decide). A
// match can look at the session (user, database, application_name), which
// is known before any statement is parsed, and at the statement (its
// dashboard and chart labels, the tables it reads, its shape, its text).
// When the rules for a session can be decided from the session alone
// (Set.ForSession), a frontend need not parse that session's statements to
// know they are not cached.
//
// The dashboard label comes from the first source that has one, in the
// order the configuration gives (labels.dashboard): the statement's
// comments (sqlcommenter, Metabase, Looker, Redash), SET
// sqlcached.dashboard, the startup option -c sqlcached.dashboard=..., and
// the client's application_name.
//
// Hints in comments (/* sqlcached:nocache */, /* sqlcached:ttl=30s */) can
// only make caching more conservative, unless the rule says allow_hints.
//
// Admission keeps shapes whose answers are never asked for again (a lookup
// by a key that changes each time) out of the cache.
package policy

// Package config loads sqlcached's configuration file (YAML; see
// testdata/example.yaml for every section) into plain structs with every
// default filled in.
//
// Parse works in three steps. The YAML is parsed into a node tree and mapped
// onto the structs key by key, so that an unknown key, a value of the wrong
// type or an unset environment variable is reported with its line and key
// path ("line 12: cache.l2.redis.uri: unknown key"; Load adds the file:
// "sqlcached.yaml:12: ..."), and so that an absent key can be told from an
// explicit zero. The decoder keeps the line of every key it meets, so that
// errors found later name a line too: the key's own or, for an absent key,
// its nearest parent's. Defaults then fill the absent keys (each field's
// comment gives its default). Last, validation checks every rule that needs no
// I/O, the order of the policies among them (the last must match every query,
// and no other may), and returns the first failure as an *Error; what is
// allowed but likely a mistake (no policies, so nothing is cached) goes to
// Config.Warnings.
//
// The patterns of a policy's match (globs, and the sql regular expression)
// are compiled by package policy, not here; it reports a bad one with
// Config.Errorf, which gives the file and line of the key.
//
// Values may use ${NAME} and ${NAME:-default} to read the environment, and $$
// for a literal $. Only values are expanded, after the file's structure is
// parsed: comments may mention variables nobody sets, and a password holding
// ": " or "#" cannot change the structure of the file.
//
// Durations are Go durations (50ms, 90s, 5m, 24h). Sizes are bytes or a
// number with a unit: KiB, MiB, GiB, TiB are powers of 1024 and KB, MB, GB,
// TB powers of 1000.
//
// Files named by the configuration (tls.cert_file) are read when used
// (TLS.Load), so that a configuration can be checked on another machine.
package config

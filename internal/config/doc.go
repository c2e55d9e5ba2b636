// Package config loads sqlcached's configuration file (YAML; see
// testdata/example.yaml for every section) into plain structs with every
// default filled in.
//
// Parse works in three steps. The YAML is parsed into a node tree and mapped
// onto the structs key by key, so that an unknown key, a value of the wrong
// type or an unset environment variable is reported with its key path
// ("cache.l2.redis.url: unknown key"), and so that an absent key can be told
// from an explicit zero. Defaults then fill the absent keys (each field's
// comment gives its default). Last, validation checks every rule that needs no
// I/O and returns the first failure as an *Error; what is allowed but likely a
// mistake (no policy matching every query) goes to Config.Warnings.
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

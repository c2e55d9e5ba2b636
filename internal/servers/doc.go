// Package servers starts the servers sqlcached is tested and measured
// against — PostgreSQL, Redis, pgbouncer and pgpool-II — as child
// processes on free loopback ports, and stops them. It is the one way to
// start them: internal/testenv builds the tests' servers on it (a
// PostgreSQL copied from a template data directory, SCRAM over TCP,
// pg_stat_statements; Redis alone, in a cluster or under sentinels), and
// bench builds its harness on it (a PostgreSQL made by initdb for each
// run, trusting every client, with the contenders in front of it).
//
// Every child is started by Start (or Run, for a short command such as
// initdb) from one goroutine locked to a thread that lives as long as the
// process, with Pdeathsig: the kernel kills the child when that thread
// dies, so servers do not outlive a killed test binary or benchmark. Each
// child leads a process group of its own, so that ^C in a terminal does
// not reach it directly, and Proc.Stop takes what it left behind (postgres
// backends, a runaway child) with it.
//
// PostgreSQL and pgbouncer refuse to run as root. ServerAccount returns
// the postgres user when this process runs as root, and nil (the current
// user) otherwise; the directories a server writes must belong to that
// account (Account.ChownAll).
//
// A PostgreSQL is made in two steps: InitDB makes a data directory (the
// superuser, a password or trust, more postgresql.conf, a pg_hba.conf),
// and StartPostgres runs a server on it, with settings given as -c flags.
// StartPostgres (and Postgres.Start, after a stop) waits until the server
// accepts connections over its unix socket as the superuser, which both
// setups trust. StartRedis writes a redis.conf
// (loopback only, no persistence, then the caller's lines) and waits
// until the server answers PING. Both try other free ports when another
// process takes the first before the server binds it, and, once started,
// Stop, Kill and Start again on the same port. StartPgbouncer and
// StartPgpool set up a pooler in front of one PostgreSQL.
//
// Binaries are looked for by PostgresBinDir ($SQLCACHED_PG_BIN, the newest
// /usr/lib/postgresql/N/bin, then $PATH) and LookBinary ($SQLCACHED_...,
// the usual path, then $PATH). Errors of a server that does not come up
// quote the tail of its log.
package servers

// Package testenv starts real servers for tests: a private PostgreSQL and a
// private Redis, each on a free loopback port in its own temporary directory.
//
// Most tests share one server per test binary:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		pg := testenv.SharedPostgreSQL(t)
//		db := pg.NewDatabase(t) // a fresh database, dropped when the test ends
//		conn, err := pgx.Connect(ctx, pg.DSN(db))
//		...
//	}
//
// A test that stops, kills or restarts a server asks for its own with
// NewPostgreSQL or NewRedis; it is stopped and removed in t.Cleanup. Shared
// servers are stopped and removed by Main once every test has run.
//
// Tests of Redis's other modes ask for a whole setup of their own:
// NewRedisCluster starts a Redis Cluster of three masters (created with
// redis-cli --cluster create; SharedRedisCluster shares one per test binary),
// and NewRedisSentinel a master, its replica and one or three sentinels
// monitoring it, with Failover and KillMaster to move the master.
//
// A server that cannot start fails the test with the tail of its log: a
// missing server binary is a broken machine, not a reason to skip
// (scripts/test.sh installs them).
//
// The servers are started by internal/servers, which bench uses too;
// testenv adds what tests need around them: a PostgreSQL data directory
// made once per test binary by initdb (superuser password, SCRAM over TCP,
// pg_stat_statements) and copied for every server, lifetimes tied to a
// test or to the test binary, and removal of what killed test binaries
// left behind.
//
// PostgreSQL refuses to run as root. When the tests run as root, the data
// directory belongs to the "postgres" user and the server runs with that
// user's credentials. Server processes get SIGKILL when the test binary dies
// (Pdeathsig), and directories left behind by killed test binaries are removed
// after a few hours by the next run.
//
// The PostgreSQL binaries are looked for in $SQLCACHED_PG_BIN, then in the
// newest /usr/lib/postgresql/*/bin, then on $PATH; redis-server in
// $SQLCACHED_REDIS_SERVER, then /usr/bin, then on $PATH; redis-cli in
// $SQLCACHED_REDIS_CLI, then beside redis-server, then on $PATH.
package testenv

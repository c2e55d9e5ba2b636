package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/adapter"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/fingerprint"
	"github.com/sqlcached/sqlcached/internal/config"
	"github.com/sqlcached/sqlcached/proxy"
)

// backends are the configured warehouses, each behind a pool of
// PostgreSQL-protocol connections: to the warehouse itself for postgres,
// to an adapter serving it on a private socket for duckdb and snowflake.
type backends struct {
	pools   map[string]*postgres.Pool
	adapted map[string]bool
	closers []func()
}

// warehouseOpener opens the warehouse of a backend that does not speak
// the PostgreSQL protocol: it returns the warehouse, a name for messages
// and what closes it.
type warehouseOpener func(ctx context.Context, b config.Backend) (executor.Warehouse, string, func() error, error)

// openers are the warehouse kinds this build has, beyond postgres.
var openers = map[string]warehouseOpener{}

// openBackends opens every backend of cfg; extra, if set, supplies the
// warehouse of a backend by name instead of its kind's opener (the demo's
// prepared DuckDB).
func openBackends(ctx context.Context, cfg *config.Config, extra map[string]executor.Warehouse, log *slog.Logger) (*backends, error) {
	bs := &backends{pools: map[string]*postgres.Pool{}, adapted: map[string]bool{}}
	for i, b := range cfg.Backends {
		dsn, label := b.DSN, ""
		if b.Kind != config.KindPostgres {
			label = adapter.DashboardSetting
			var err error
			if dsn, err = bs.adapt(ctx, b, extra[b.Name], log); err != nil {
				bs.Close()
				return nil, &config.Error{Key: fmt.Sprintf("backends[%d]", i), Msg: err.Error()}
			}
		}
		p, err := postgres.NewPool(postgres.Config{
			DSN:          dsn,
			MaxConns:     b.MaxConns,
			MaxWait:      cfg.Pool.MaxWait.Std(),
			IdleTimeout:  cfg.Pool.IdleTimeout.Std(),
			LabelSetting: label,
			Name:         b.Name,
			Logger:       log,
		})
		if err != nil {
			bs.Close()
			return nil, &config.Error{Key: fmt.Sprintf("backends[%d].dsn", i), Msg: err.Error()}
		}
		bs.pools[b.Name] = p
		bs.closers = append(bs.closers, p.Close)
	}
	return bs, nil
}

// adapt opens the warehouse of b (or takes w) and serves it with an
// adapter on a socket in a new private directory; it returns the DSN of
// that socket.
func (bs *backends) adapt(ctx context.Context, b config.Backend, w executor.Warehouse, log *slog.Logger) (string, error) {
	name := b.Kind
	if w == nil {
		open, ok := openers[b.Kind]
		if !ok {
			return "", fmt.Errorf("%s backends need a build with cgo (CGO_ENABLED=1 and a C compiler)", b.Kind)
		}
		var closeW func() error
		var err error
		if w, name, closeW, err = open(ctx, b); err != nil {
			return "", err
		}
		bs.closers = append(bs.closers, func() { closeW() })
	}
	dir, err := os.MkdirTemp("", "sqlcached-"+b.Name+"-")
	if err != nil {
		return "", err
	}
	srv, err := adapter.New(adapter.Config{Warehouse: w, Name: name, Logger: log.With("backend", b.Name)})
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	ln, dsn, err := adapter.Listen(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	go srv.Serve(ln)
	// Closed after the pool (closers run last first).
	bs.closers = append(bs.closers, func() { srv.Close(); os.RemoveAll(dir) })
	bs.adapted[b.Name] = true
	return dsn, nil
}

// Close closes the pools, then the adapters, then the warehouses.
func (bs *backends) Close() {
	for i := len(bs.closers) - 1; i >= 0; i-- {
		bs.closers[i]()
	}
	bs.closers = nil
}

// pool is what the proxy and the read path use for backend name.
func (bs *backends) pool(name string) proxy.Pool {
	p, ok := bs.pools[name]
	if !ok {
		return nil
	}
	if bs.adapted[name] {
		return adaptedPool{p}
	}
	return p
}

// adaptedPool is the pool of an adapted warehouse: it has no pg_proc to
// read function volatility from, so the built-in list serves.
type adaptedPool struct{ *postgres.Pool }

func (adaptedPool) Volatility(context.Context, executor.Login) (map[string]byte, error) {
	vm := fingerprint.BuiltinVolatility()
	out := make(map[string]byte, len(vm))
	for k, v := range vm {
		out[k] = byte(v)
	}
	return out, nil
}

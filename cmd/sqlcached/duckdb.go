//go:build cgo

package main

import (
	"context"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/duckdb"
	"github.com/sqlcached/sqlcached/internal/config"
)

func init() {
	openers[config.KindDuckDB] = func(ctx context.Context, b config.Backend) (executor.Warehouse, string, func() error, error) {
		db, err := duckdb.Open(b.DSN)
		if err != nil {
			return nil, "", nil, err
		}
		return db, "DuckDB", db.Close, nil
	}
}

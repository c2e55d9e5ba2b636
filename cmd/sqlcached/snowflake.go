package main

import (
	"context"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/snowflake"
	"github.com/sqlcached/sqlcached/internal/config"
)

func init() {
	openers[config.KindSnowflake] = func(ctx context.Context, b config.Backend) (executor.Warehouse, string, func() error, error) {
		w, err := snowflake.Open(snowflake.Config{DSN: b.DSN, MaxConns: b.MaxConns})
		if err != nil {
			return nil, "", nil, err
		}
		return w, "Snowflake", w.Close, nil
	}
}

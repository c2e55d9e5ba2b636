//go:build cgo

package adapter_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/sqlcached/sqlcached/executor"
)

// BenchmarkPointQuery compares a point query run on DuckDB directly with
// the same query through the adapter (pgx over its socket, simple and
// extended protocol): the adapter's cost per statement.
func BenchmarkPointQuery(b *testing.B) {
	e := start(b)
	ctx := context.Background()
	const q = "select name, price from items where id = 42"
	b.Run("duckdb", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.wh.DB.Execute(ctx, &executor.Request{SQL: q}); err != nil {
				b.Fatal(err)
			}
		}
	})
	c, err := pgx.Connect(ctx, e.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		b.Run("adapter-"+mode.String(), func(b *testing.B) {
			var name string
			var price float64
			for b.Loop() {
				if err := c.QueryRow(ctx, q, mode).Scan(&name, &price); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

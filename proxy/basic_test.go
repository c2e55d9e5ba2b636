package proxy_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func TestPgxExecModes(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.PG.Exec(t, e.Database, `create table t (id int primary key, v text, n numeric, ts timestamptz)`)
	modes := []pgx.QueryExecMode{pgx.QueryExecModeCacheStatement, pgx.QueryExecModeCacheDescribe, pgx.QueryExecModeDescribeExec, pgx.QueryExecModeExec, pgx.QueryExecModeSimpleProtocol}
	for _, mode := range modes {
		t.Run(mode.String(), func(t *testing.T) {
			c := e.connect(t)
			ctx := ctxT(t)
			for i := 0; i < 20; i++ {
				id := int(mode)*100 + i
				if _, err := c.Exec(ctx, `insert into t values ($1, $2, $3, $4)`, mode, id, "v", "1.50", time.Unix(int64(id), 0)); err != nil {
					t.Fatal(err)
				}
				var v string
				var n float64
				if err := c.QueryRow(ctx, `select v, n::float8 from t where id = $1`, mode, id).Scan(&v, &n); err != nil {
					t.Fatal(err)
				}
				if v != "v" || n != 1.5 {
					t.Fatalf("got %q %v, want v 1.5", v, n)
				}
			}
		})
	}
}

func TestPgxBatch(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.connect(t)
	ctx := ctxT(t)
	b := &pgx.Batch{}
	for i := 0; i < 100; i++ {
		b.Queue(`select $1::int * 2`, i)
	}
	br := c.SendBatch(ctx, b)
	for i := 0; i < 100; i++ {
		var got int
		if err := br.QueryRow().Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != 2*i {
			t.Fatalf("row %d: got %d", i, got)
		}
	}
	if err := br.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestErrorInBatchSkipsToSync(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.connect(t)
	ctx := ctxT(t)
	b := &pgx.Batch{}
	b.Queue(`select 1`)
	b.Queue(`select 1/0`)
	b.Queue(`select 3`)
	err := c.SendBatch(ctx, b).Close()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "22012" {
		t.Fatalf("got %v, want division_by_zero", err)
	}
	var one int
	if err := c.QueryRow(ctx, `select 1`).Scan(&one); err != nil || one != 1 {
		t.Fatalf("after the failed batch: %v %d", err, one)
	}
}

func TestTransactionStatusAndSettings(t *testing.T) {
	e := newEnv(t, envOptions{maxConns: 2})
	c := e.connect(t)
	ctx := ctxT(t)
	if _, err := c.Exec(ctx, `set timezone = 'Asia/Tokyo'`); err != nil {
		t.Fatal(err)
	}
	// Other sessions take the connections in between.
	for i := 0; i < 4; i++ {
		o := e.connect(t)
		if _, err := o.Exec(ctx, `set timezone = 'UTC'`); err != nil {
			t.Fatal(err)
		}
		o.Close(ctx)
	}
	var tz string
	if err := c.QueryRow(ctx, `show timezone`).Scan(&tz); err != nil || tz != "Asia/Tokyo" {
		t.Fatalf("timezone after other sessions: %q %v", tz, err)
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := c.PgConn().TxStatus(); st != 'T' {
		t.Fatalf("status in transaction %q", st)
	}
	if _, err := tx.Exec(ctx, `set timezone = 'Europe/Paris'`); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `select 1/0`); err == nil {
		t.Fatal("no error")
	}
	if st := c.PgConn().TxStatus(); st != 'E' {
		t.Fatalf("status after error %q", st)
	}
	_ = tx.Rollback(ctx)
	if err := c.QueryRow(ctx, `show timezone`).Scan(&tz); err != nil || tz != "Asia/Tokyo" {
		t.Fatalf("timezone after rollback: %q %v", tz, err)
	}
}

func TestConcurrentClientsShareFewConnections(t *testing.T) {
	e := newEnv(t, envOptions{maxConns: 10})
	ctx := ctxT(t)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := pgx.Connect(ctx, e.DSN())
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(context.Background())
			for j := 0; j < 5; j++ {
				var got int
				if err := c.QueryRow(ctx, `select $1::int + $2::int`, i, j).Scan(&got); err != nil {
					errs <- err
					return
				}
				if got != i+j {
					errs <- errors.New("wrong answer")
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if s := e.Pool.Stats(); s.Open > 10 {
		t.Fatalf("%d warehouse connections open, max 10", s.Open)
	}
}

func TestWaitBoundGives53300(t *testing.T) {
	e := newEnv(t, envOptions{maxConns: 1, maxWait: 200 * time.Millisecond})
	ctx := ctxT(t)
	holder := e.connect(t)
	tx, err := holder.Begin(ctx) // holds the only connection
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, `select 1`); err != nil {
		t.Fatal(err)
	}
	c := e.connect(t)
	_, err = c.Exec(ctx, `select 1`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53300" {
		t.Fatalf("got %v, want SQLSTATE 53300", err)
	}
	_ = tx.Rollback(ctx)
	var one int
	if err := c.QueryRow(ctx, `select 1`).Scan(&one); err != nil {
		t.Fatalf("after the connection came free: %v", err)
	}
}

func TestCancelRequestCancelsOwnStatement(t *testing.T) {
	e := newEnv(t, envOptions{})
	c := e.connect(t)
	other := e.connect(t)
	ctx := ctxT(t)
	otherDone := make(chan error, 1)
	go func() {
		_, err := other.Exec(ctx, `select pg_sleep(1.5)`)
		otherDone <- err
	}()
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Exec(qctx, `select pg_sleep(30)`)
	if err == nil {
		t.Fatal("the statement was not cancelled")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if err := <-otherDone; err != nil {
		t.Fatalf("another session's statement was hit: %v", err)
	}
}

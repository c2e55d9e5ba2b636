package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/executor/postgres"
	"github.com/sqlcached/sqlcached/internal/testenv"
)

// A warehouse stopped under load is logged once when connecting to it
// fails and once when it takes connections again, with the count of
// attempts that failed in between.
func TestWarehouseOutageIsLoggedOnce(t *testing.T) {
	pg := testenv.NewPostgreSQL(t)
	db := pg.NewDatabase(t)
	out := &testenv.LogBuffer{}
	p, err := postgres.NewPool(postgres.Config{
		DSN:            fmt.Sprintf("postgres://%s/%s?sslmode=disable", pg.Addr(), db),
		MaxConns:       8,
		MaxWait:        2 * time.Second,
		ConnectTimeout: time.Second,
		Name:           "sales",
		Logger:         slog.New(slog.NewTextHandler(out, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	login := executor.Login{User: testenv.SuperUser, Password: testenv.SuperPassword, Database: db}

	var ok, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				_, err := p.Execute(ctx, &executor.Request{Login: login, SQL: "select 1"})
				cancel()
				if err != nil {
					failed.Add(1)
					time.Sleep(5 * time.Millisecond)
				} else {
					ok.Add(1)
				}
			}
		})
	}
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()

	time.Sleep(500 * time.Millisecond)
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	time.Sleep(5 * time.Second)
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL down %v", time.Since(down).Round(time.Millisecond))
	recovered := regexp.MustCompile(`msg="warehouse sales recovered after`)
	for deadline := time.Now().Add(15 * time.Second); len(out.Matching(recovered)) == 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // load goes on after the recovery
	close(stop)
	wg.Wait()
	stopped = true

	lines := out.Matching(regexp.MustCompile(``))
	for _, l := range lines {
		t.Log(l)
	}
	t.Logf("32 clients: %d statements answered, %d failed", ok.Load(), failed.Load())
	if len(lines) > 3 {
		t.Errorf("%d lines logged, want at most 3", len(lines))
	}
	if n := len(out.Matching(regexp.MustCompile(`level=ERROR msg="warehouse sales failing" err=`))); n != 1 {
		t.Errorf("%d failure lines, want 1", n)
	}
	rec := out.Matching(recovered)
	if len(rec) != 1 {
		t.Fatalf("%d recovery lines, want 1", len(rec))
	}
	m := regexp.MustCompile(`([0-9,]+) connection attempts failed`).FindStringSubmatch(rec[0])
	if m == nil {
		t.Fatalf("recovery line counts no failed connection attempts")
	}
	if n, _ := strconv.Atoi(strings.ReplaceAll(m[1], ",", "")); n == 0 {
		t.Errorf("recovery line counts 0 failed connection attempts")
	}
}

package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Outcomes are sqlcached's statements by outcome (hit_l1, hit_l2, miss,
// collapsed, stale, bypass, error), summed over rules and backends, as its
// /metrics counts them in sqlcached_requests_total.
type Outcomes map[string]float64

// Sub returns o minus before, outcome by outcome.
func (o Outcomes) Sub(before Outcomes) Outcomes {
	d := Outcomes{}
	for k, v := range o {
		d[k] = v - before[k]
	}
	return d
}

// Add adds d to o.
func (o Outcomes) Add(d Outcomes) {
	for k, v := range d {
		o[k] += v
	}
}

// Hits are the statements answered from the cache: hits in L1 and L2 and
// stale answers served while a refresh ran.
func (o Outcomes) Hits() float64 { return o["hit_l1"] + o["hit_l2"] + o["stale"] }

// Answered are the statements that did not fail.
func (o Outcomes) Answered() float64 {
	n := 0.0
	for k, v := range o {
		if k != "error" {
			n += v
		}
	}
	return n
}

// HitRatio is hits over the statements answered; false if there were none.
func (o Outcomes) HitRatio() (float64, bool) {
	n := o.Answered()
	if n == 0 {
		return 0, false
	}
	return o.Hits() / n, true
}

// CollapseRatio is the share of the statements that missed the cache which
// joined a warehouse execution already under way for the same key instead
// of starting one; false if none missed.
func (o Outcomes) CollapseRatio() (float64, bool) {
	n := o["miss"] + o["collapsed"]
	if n == 0 {
		return 0, false
	}
	return o["collapsed"] / n, true
}

// ScrapeOutcomes reads sqlcached_requests_total from a /metrics URL.
func ScrapeOutcomes(ctx context.Context, url string) (Outcomes, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return parseOutcomes(resp.Body)
}

// parseOutcomes reads the samples of sqlcached_requests_total in the
// Prometheus text format:
//
//	sqlcached_requests_total{backend="wh",outcome="hit_l1",rule="r"} 42
func parseOutcomes(r io.Reader) (Outcomes, error) {
	const name = "sqlcached_requests_total{"
	o := Outcomes{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		_, rest, _ := strings.Cut(line, `outcome="`)
		outcome, _, _ := strings.Cut(rest, `"`)
		fields := strings.Fields(line[strings.LastIndexByte(line, '}')+1:])
		if outcome == "" || len(fields) == 0 {
			return nil, fmt.Errorf("a sample of sqlcached_requests_total without an outcome or a value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("sqlcached_requests_total: %q: %v", line, err)
		}
		o[outcome] += v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// A sqlcached that has answered nothing yet has no samples: no
	// outcomes, all zero.
	return o, nil
}

// warehouseExecutionsSQL counts the completed executions of reads in the
// warehouse's current database that pg_stat_statements has seen: SELECT
// or WITH statements at the top level, leaving out the catalog queries
// proxies send on their own (pgpool-II's relcache, sqlcached's volatility
// lookups) and this query itself.
const warehouseExecutionsSQL = `SELECT coalesce(sum(s.calls), 0)::bigint
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = current_database() AND s.toplevel
  AND s.query ~* '^\s*(/\*.*?\*/\s*|--[^\n]*\n\s*)*(select|with)\M'
  AND s.query !~* '(pg_catalog|pg_stat|pg_class|pg_namespace|pg_type|pg_proc|pg_attribute|pg_database|pg_settings|information_schema|version\s*\()'`

// Warehouse counts the executions of the warehouse behind the targets
// through pg_stat_statements.
type Warehouse struct {
	conn *pgx.Conn
}

// OpenWarehouse connects to the warehouse and checks that
// pg_stat_statements can be read there.
func OpenWarehouse(ctx context.Context, dsn string) (*Warehouse, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	w := &Warehouse{conn: conn}
	if _, err := w.Executions(ctx); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("reading pg_stat_statements (shared_preload_libraries = 'pg_stat_statements' and CREATE EXTENSION pg_stat_statements in that database): %w", err)
	}
	return w, nil
}

// Executions is the number of reads the warehouse has executed so far.
func (w *Warehouse) Executions(ctx context.Context) (int64, error) {
	var n int64
	err := w.conn.QueryRow(ctx, warehouseExecutionsSQL, pgx.QueryExecModeSimpleProtocol).Scan(&n)
	return n, err
}

// Close closes the connection.
func (w *Warehouse) Close(ctx context.Context) { w.conn.Close(ctx) }

package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sqlcached/sqlcached/internal/servers"
)

// Workload is what pgbench runs: a built-in transaction chosen by Args
// (such as -S), or custom scripts, each written to a file and passed with
// -f; with several, pgbench picks one per transaction at random, in
// proportion to their weights.
type Workload struct {
	Name    string
	Args    []string
	Scripts []Script
}

// Script is one pgbench script file.
type Script struct {
	Name   string // the file is Name.sql
	SQL    string
	Weight int // 0: 1
}

func (s Script) file() string { return s.Name + ".sql" }

// Workloads the passthrough benchmark knows by name.
var Workloads = map[string]Workload{
	// pgbench's built-in select-only transaction: one primary-key lookup
	// in pgbench_accounts.
	"select-only": {Name: "select-only", Args: []string{"-S"}},
	// The smallest round trip: no table, one row of one column.
	"select1": {Name: "select1", Scripts: []Script{{Name: "select1", SQL: "SELECT 1;\n"}}},
}

// Pgbench is one pgbench run against one endpoint.
type Pgbench struct {
	Path     string // the pgbench binary
	Endpoint Endpoint
	Database string
	Workload Workload
	Clients  int
	Jobs     int
	Mode     string // simple, extended or prepared
	Seconds  int    // -T
	// Transactions, if positive, is -t (transactions per client) in place
	// of -T.
	Transactions int
	Dir          string // an empty directory for the scripts and the logs
}

// Args are pgbench's arguments for the run. Each transaction is logged
// (-l) under Dir so that latency percentiles can be computed.
func (p Pgbench) Args() []string {
	a := []string{
		"-h", p.Endpoint.Host, "-p", strconv.Itoa(p.Endpoint.Port), "-U", "postgres",
		"-n", "-c", strconv.Itoa(p.Clients), "-j", strconv.Itoa(p.Jobs),
		"-M", p.Mode,
	}
	if p.Transactions > 0 {
		a = append(a, "-t", strconv.Itoa(p.Transactions))
	} else {
		a = append(a, "-T", strconv.Itoa(p.Seconds))
	}
	a = append(a, "-l", "--log-prefix="+filepath.Join(p.Dir, "pgbench_log"))
	a = append(a, p.Workload.Args...)
	for _, s := range p.Workload.Scripts {
		f := filepath.Join(p.Dir, s.file())
		if s.Weight > 0 {
			f += "@" + strconv.Itoa(s.Weight)
		}
		a = append(a, "-f", f)
	}
	return append(a, p.Database)
}

// Result is what one pgbench run measured.
type Result struct {
	TPS          float64 // excluding the initial connection time
	Transactions int64   // transactions pgbench counted as processed
	Failed       int64   // failed transactions, from pgbench's summary
	Logged       int     // successful transactions in the per-transaction log
	Avg          float64 // pgbench's average latency in milliseconds (duration × clients / transactions)
	P50, P99     float64 // latency percentiles in milliseconds, from the log
	Output       string  // pgbench's output
	// Err is set when pgbench failed or reported failed transactions.
	// Unsupported says that the failure is the endpoint not supporting
	// protocol-level prepared statements.
	Err         error
	Unsupported bool
}

// OK reports whether the run completed without errors.
func (r Result) OK() bool { return r.Err == nil }

// Run runs pgbench and reads its summary and per-transaction logs. The logs
// are removed afterwards. The error is only for a run that could not be set
// up; pgbench's own failures are in the result.
func (p Pgbench) Run(ctx context.Context) (Result, error) {
	if err := os.MkdirAll(p.Dir, 0o755); err != nil {
		return Result{}, err
	}
	for _, s := range p.Workload.Scripts {
		if err := os.WriteFile(filepath.Join(p.Dir, s.file()), []byte(s.SQL), 0o644); err != nil {
			return Result{}, err
		}
	}
	// A run that hangs (a client waiting forever on an endpoint that
	// stopped answering) is killed after a generous deadline: pgbench
	// waits for the transactions in flight when -T runs out, which take
	// many seconds on a saturated warehouse.
	limit := 2*time.Duration(p.Seconds)*time.Second + 90*time.Second
	if p.Transactions > 0 {
		limit = 10 * time.Minute
	}
	rctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	out, runErr := servers.Run(rctx, nil, p.Dir, p.Path, p.Args()...)
	if ctx.Err() != nil {
		return Result{}, ctx.Err()
	}
	var r Result
	r.Output = out
	if rctx.Err() != nil {
		r.Err = fmt.Errorf("pgbench did not finish within %s and was killed; %s", limit, firstError(out))
		return r, nil
	}
	logs, _ := filepath.Glob(filepath.Join(p.Dir, "pgbench_log.*"))
	defer func() {
		for _, f := range logs {
			os.Remove(f)
		}
	}()
	s, perr := ParsePgbenchSummary(out)
	r.TPS, r.Transactions, r.Failed, r.Avg = s.TPS, s.Transactions, s.Failed, s.Avg
	switch {
	case runErr != nil:
		r.Err = errors.New(firstError(out))
	case perr != nil:
		r.Err = perr
	case r.Failed > 0:
		r.Err = fmt.Errorf("pgbench: %d failed transactions: %s", r.Failed, firstError(out))
	}
	if r.Err != nil {
		r.Unsupported = p.Mode == "prepared" && preparedUnsupported.MatchString(out)
		return r, nil
	}
	lat, err := ReadLatencyLogs(logs)
	if err != nil {
		r.Err = err
		return r, nil
	}
	r.Logged = len(lat)
	if len(lat) == 0 {
		r.Err = errors.New("pgbench logged no transactions")
		return r, nil
	}
	slices.Sort(lat)
	r.P50 = float64(Percentile(lat, 50)) / 1000
	r.P99 = float64(Percentile(lat, 99)) / 1000
	return r, nil
}

// preparedUnsupported matches the errors of a pooler that hands a client's
// transactions to server connections that do not hold the statements the
// client prepared (pgbouncer before 1.21 in transaction mode).
var preparedUnsupported = regexp.MustCompile(`prepared statement "[^"]*" (does not exist|already exists)`)

// firstError returns pgbench's first error line, or the output's tail.
func firstError(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "error:") || strings.Contains(line, "ERROR:") || strings.Contains(line, "FATAL:") {
			return strings.TrimSpace(line)
		}
	}
	return tail(strings.TrimSpace(out), 300)
}

// Summary is what pgbench prints at the end of a run.
type Summary struct {
	TPS          float64
	Avg          float64 // average latency, ms
	Transactions int64
	Failed       int64
}

var (
	reTPS       = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	reProcessed = regexp.MustCompile(`(?m)^number of transactions actually processed: ([0-9]+)`)
	reFailed    = regexp.MustCompile(`(?m)^number of failed transactions: ([0-9]+)`)
	reAvg       = regexp.MustCompile(`(?m)^latency average = ([0-9.]+) ms`)
)

// ParsePgbenchSummary reads pgbench's (15 or later) summary: the TPS
// excluding the initial connection time, the transactions processed and
// the failed ones.
func ParsePgbenchSummary(out string) (Summary, error) {
	var s Summary
	if m := reProcessed.FindStringSubmatch(out); m != nil && m[1] == "0" {
		return s, errors.New("pgbench processed no transactions (did connecting take the whole run?)")
	}
	m := reTPS.FindStringSubmatch(out)
	if m == nil {
		return s, fmt.Errorf("pgbench printed no tps line: %s", tail(strings.TrimSpace(out), 300))
	}
	var err error
	if s.TPS, err = strconv.ParseFloat(m[1], 64); err != nil {
		return s, err
	}
	if m := reProcessed.FindStringSubmatch(out); m != nil {
		s.Transactions, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reFailed.FindStringSubmatch(out); m != nil {
		s.Failed, _ = strconv.ParseInt(m[1], 10, 64)
	}
	if m := reAvg.FindStringSubmatch(out); m != nil {
		s.Avg, _ = strconv.ParseFloat(m[1], 64)
	}
	return s, nil
}

// ReadLatencyLogs reads pgbench's per-transaction logs (one file per
// thread; lines "client_id transaction_no time script_no time_epoch
// time_us ...") and returns the latencies of the successful transactions
// in microseconds. Failed and skipped transactions are left out.
//
// pgbench (15) reads the clock lazily, once per wake-up of a client: a
// transaction whose answer is already waiting when pgbench looks for it
// (pgbench was descheduled while the server answered) is logged with
// the time since that clock reading, often 0. On a busy machine this pulls
// the low percentiles of the fastest endpoints down; the average latency
// pgbench derives from the run's duration does not have this bias.
func ReadLatencyLogs(paths []string) ([]int64, error) {
	var lat []int64
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			fields := strings.Fields(sc.Text())
			if len(fields) < 6 {
				f.Close()
				return nil, fmt.Errorf("%s:%d: not a pgbench transaction log line: %q", path, n, sc.Text())
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				continue // "failed" or "skipped"
			}
			lat = append(lat, us)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

package main

import (
	"cmp"
	"net/http"
	"slices"
	"time"

	"github.com/sqlcached/sqlcached/internal/observe"
	"github.com/sqlcached/sqlcached/internal/status"
)

// statusShapes is how many statement shapes each table of the status
// page lists.
const statusShapes = 10

// statusPage serves the live status page at /. It is made as the server
// starts, which is when the page's uptime counts from.
func statusPage(con *console) http.Handler {
	started := time.Now()
	return status.Handler(status.SourceFunc(func() status.Snapshot { return con.snapshot(started) }))
}

// snapshot is what the status page shows now.
func (con *console) snapshot(started time.Time) status.Snapshot {
	s := status.Snapshot{
		Now: time.Now(), Started: started, Version: version,
		Listen: con.cfg.Listen.Postgres, Statements: con.cfg.Audit.Statements,
		Totals:   con.obs.Totals(),
		History:  con.obs.History(),
		TopRuns:  con.obs.TopShapes(observe.ByRuns, statusShapes),
		TopSaved: con.obs.TopShapes(observe.BySaved, statusShapes),
		Errors:   con.obs.RecentErrors(),
		Queues:   statusQueues(con),
		Pools:    statusPools(con.bs),
	}
	if con.srv != nil {
		s.Clients = con.srv.Clients()
	}
	if g := con.cache; g != nil {
		s.Cache = &status.Cache{L1: g.L1Stats(), Redis: con.cfg.Cache.L2 != nil, BreakerOpen: g.L2Suspended(), Stats: g.Stats()}
	}
	return s
}

func statusQueues(con *console) []status.Queue {
	var out []status.Queue
	for _, q := range con.queues.Each() {
		out = append(out, status.Queue{Backend: q.Backend, Name: q.Queue, Workers: q.Workers, Busy: q.Busy, Waiting: q.Waiting})
	}
	return out
}

func statusPools(bs *backends) []status.Pool {
	out := make([]status.Pool, 0, len(bs.pools))
	for name, p := range bs.pools {
		st := p.Stats()
		out = append(out, status.Pool{Backend: name, Busy: st.Open - st.Idle, Idle: st.Idle, Waiting: st.Waiting, Max: st.Max})
	}
	slices.SortFunc(out, func(a, b status.Pool) int { return cmp.Compare(a.Backend, b.Backend) })
	return out
}

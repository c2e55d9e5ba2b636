package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sqlcached/sqlcached/cache"
	"github.com/sqlcached/sqlcached/executor"
	"github.com/sqlcached/sqlcached/proxy"
)

// gauges reports, at each scrape, what the queues, pools, cache and
// client connections hold.
type gauges struct {
	srv    *proxy.Server
	bs     *backends
	cache  *cache.Group // nil when nothing is cached
	queues *executor.Queues

	queueDepth, queueBusy, queueWorkers *prometheus.Desc
	poolConns, poolMax                  *prometheus.Desc
	cacheBytes, cacheEntries, evictions *prometheus.Desc
	clients, breakerOpen                *prometheus.Desc
}

func newGauges(srv *proxy.Server, bs *backends, g *cache.Group, queues *executor.Queues) *gauges {
	d := prometheus.NewDesc
	return &gauges{
		srv: srv, bs: bs, cache: g, queues: queues,
		queueDepth:   d("sqlcached_queue_depth", "Runs waiting for a worker.", []string{"backend", "queue"}, nil),
		queueBusy:    d("sqlcached_queue_busy_workers", "Workers running.", []string{"backend", "queue"}, nil),
		queueWorkers: d("sqlcached_queue_workers", "Workers of the queue.", []string{"backend", "queue"}, nil),
		poolConns:    d("sqlcached_pool_connections", "Warehouse connections, busy or idle.", []string{"backend", "state"}, nil),
		poolMax:      d("sqlcached_pool_max_connections", "The bound on warehouse connections.", []string{"backend"}, nil),
		cacheBytes:   d("sqlcached_cache_bytes", "Bytes the cache tier holds.", []string{"tier"}, nil),
		cacheEntries: d("sqlcached_cache_entries", "Entries the cache tier holds.", []string{"tier"}, nil),
		evictions:    d("sqlcached_cache_evictions_total", "Entries the tier let go: for room, at expiry, or refused.", []string{"tier"}, nil),
		clients:      d("sqlcached_client_connections", "Client connections open.", nil, nil),
		breakerOpen:  d("sqlcached_l2_breaker_open", "1 while calls to Redis are suspended after failures.", nil, nil),
	}
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.queueDepth, g.queueBusy, g.queueWorkers, g.poolConns, g.poolMax,
		g.cacheBytes, g.cacheEntries, g.evictions, g.clients, g.breakerOpen} {
		ch <- d
	}
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	for _, q := range g.queues.Each() {
		gauge(g.queueDepth, float64(q.Waiting), q.Backend, q.Queue)
		gauge(g.queueBusy, float64(q.Busy), q.Backend, q.Queue)
		gauge(g.queueWorkers, float64(q.Workers), q.Backend, q.Queue)
	}
	for name, p := range g.bs.pools {
		st := p.Stats()
		gauge(g.poolConns, float64(st.Open-st.Idle), name, "busy")
		gauge(g.poolConns, float64(st.Idle), name, "idle")
		gauge(g.poolMax, float64(st.Max), name)
	}
	if g.cache != nil {
		l1 := g.cache.L1Stats()
		gauge(g.cacheBytes, float64(l1.Bytes), "l1")
		gauge(g.cacheEntries, float64(l1.Entries), "l1")
		ch <- prometheus.MustNewConstMetric(g.evictions, prometheus.CounterValue, float64(l1.Evictions), "l1")
		open := 0.0
		if g.cache.L2Suspended() {
			open = 1
		}
		gauge(g.breakerOpen, open)
	}
	gauge(g.clients, float64(g.srv.Clients()))
}

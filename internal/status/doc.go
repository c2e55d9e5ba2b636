// Package status renders sqlcached's live status page: what the cache
// did for the dashboards and the warehouses, at a glance.
//
// The page is one server-rendered HTML document with inline CSS and
// inline SVG charts; it needs no script and no asset, and reloads itself
// every ten seconds. Each request asks a Source for a Snapshot (the
// observer's totals, an hour of per-minute history, the top statement
// shapes and the recent errors, with the state of the queues, pools and
// cache tiers), turns it into a view with its numbers formatted and its
// charts laid out (chart.go), and executes page.html on it. html/template
// escapes everything that came from clients (statements, labels, error
// messages) in the context it lands in, text, attribute or SVG.
//
// The package knows nothing of how sqlcached is wired: the command fills
// the Snapshot from its console.
package status

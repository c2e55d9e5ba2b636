package cache

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// InvalidateTables drops every entry that read one of tables, here and, via
// Redis, in every process sharing it. Fills running now that read one of
// them are not stored.
//
// In-process invalidation always takes effect. The error, wrapping
// ErrInvalidationPending, says that Redis could not be told: the Group then
// stops using Redis entries and retries in the background until it can.
func (g *Group) InvalidateTables(ctx context.Context, tables ...string) error {
	return g.invalidate(ctx, genNames(tables, nil))
}

// InvalidateLabel drops every entry stored by a request carrying the label
// name=value, as InvalidateTables does for tables.
func (g *Group) InvalidateLabel(ctx context.Context, name, value string) error {
	return g.invalidate(ctx, genNames(nil, []Label{{Name: name, Value: value}}))
}

// InvalidateAll drops every entry, as InvalidateTables does for tables.
func (g *Group) InvalidateAll(ctx context.Context) error {
	return g.invalidate(ctx, []string{allName})
}

func (g *Group) invalidate(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	if !g.invalidateLocal(names) {
		return ErrClosed
	}
	if g.l2 == nil {
		return nil
	}
	err := g.l2.invalidate(context.WithoutCancel(ctx), names, g.message(names), invalidationsLate)
	if err != nil {
		g.pending.add(names)
		g.stats.pending.Add(1)
		return fmt.Errorf("%w: %w", ErrInvalidationPending, err)
	}
	return nil
}

// invalidateLocal applies an invalidation to this process, reporting false
// after Close.
func (g *Group) invalidateLocal(names []string) bool {
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if g.closed {
		return false
	}
	if slices.Contains(names, allName) {
		g.l1.invalidateAll()
	} else {
		g.l1.invalidate(names)
	}
	g.stats.invalidations.Add(1)
	return true
}

// message encodes an invalidation for the other processes: this Group's
// origin, then the names, each as a uvarint length and bytes.
func (g *Group) message(names []string) []byte {
	b := append([]byte(nil), g.origin[:]...)
	for _, n := range names {
		b = appendString(b, n)
	}
	return b
}

// parseMessage returns the names of an invalidation from another process,
// or nil for this Group's own or a malformed one.
func (g *Group) parseMessage(b []byte) []string {
	if len(b) < len(g.origin) || [8]byte(b[:8]) == g.origin {
		return nil
	}
	d := decoder{b: b[8:]}
	var names []string
	for len(d.b) > 0 {
		names = append(names, d.string())
	}
	if d.err {
		return []string{allName} // unreadable: assume the worst
	}
	return names
}

// startL2 starts the writers, subscribes to invalidations and starts the
// watchers. The first subscription is awaited for up to the L2 timeout (in
// sentinel mode, after the sentinels named the master), so that a Group
// that starts with Redis up hears every later invalidation.
func (g *Group) startL2() {
	for range g.cfg.L2.Writers {
		g.wg.Go(func() { g.l2.writer(g.ctx) })
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.l2.timeout)
	if g.l2.sentinel != nil {
		g.l2.sentinel.resolve(ctx)
	}
	g.sub = g.l2.rdb().Subscribe(g.ctx, g.l2.channel())
	_, _ = g.sub.Receive(ctx)
	cancel()
	g.wg.Go(g.watch)
	g.wg.Go(g.retryPending)
	if g.l2.sentinel != nil {
		g.wg.Go(g.followMaster)
	}
}

// stopL2 ends the subscription, which unblocks the watcher.
func (g *Group) stopL2() {
	g.subMu.Lock()
	defer g.subMu.Unlock()
	g.subStopped = true
	if g.sub != nil {
		g.sub.Close()
	}
}

// resubscribe replaces the subscription with a new one, made through the
// client of the moment, and closes the former, which unblocks the watcher.
// Subscribing is awaited for up to the L2 timeout; if it fails, the new
// subscription is made again on the watcher's next Receive.
func (g *Group) resubscribe() {
	ctx, cancel := context.WithTimeout(g.ctx, g.l2.timeout)
	sub := g.l2.rdb().Subscribe(ctx, g.l2.channel())
	cancel()
	g.subMu.Lock()
	old := g.sub
	if g.subStopped {
		old = sub
	} else {
		g.sub = sub
	}
	g.subMu.Unlock()
	old.Close()
}

// subscription returns the current subscription.
func (g *Group) subscription() *redis.PubSub {
	g.subMu.Lock()
	defer g.subMu.Unlock()
	return g.sub
}

// watch applies other processes' invalidations until Close. Pub/sub
// delivers at most once: a message sent while the subscription was down is
// lost, so every subscription watch sees confirmed (those after the one New
// awaited, or that one if it came late) drops all of L1.
func (g *Group) watch() {
	sub := g.subscription()
	for {
		msg, err := sub.Receive(g.ctx)
		if g.ctx.Err() != nil {
			return
		}
		if err != nil {
			if next := g.subscription(); next != sub { // replaced after a master switch
				sub = next
				continue
			}
			select {
			case <-g.ctx.Done():
				return
			case <-time.After(100 * time.Millisecond): // go-redis reconnects on the next Receive
			}
			continue
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" {
				g.resetL1()
			}
		case *redis.Message:
			if names := g.parseMessage([]byte(m.Payload)); names != nil {
				g.invalidateLocal(names)
				if g.cfg.OnRemoteInvalidation != nil {
					g.cfg.OnRemoteInvalidation()
				}
			}
		}
	}
}

// resetL1 drops all of L1 after invalidations may have been missed.
func (g *Group) resetL1() {
	g.closeMu.RLock()
	defer g.closeMu.RUnlock()
	if !g.closed {
		g.l1.invalidateAll()
	}
}

// retryPending sends pending invalidations to Redis until Close.
func (g *Group) retryPending() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-g.ctx.Done():
			return
		case <-t.C:
		}
		if !g.pending.any() {
			continue
		}
		names := g.pending.list()
		if g.l2.invalidate(g.ctx, names, g.message(names), invalidationRetry) == nil {
			g.pending.done(names)
		}
	}
}

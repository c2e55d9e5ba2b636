package cache

// L2Suspended reports whether calls to Redis are suspended now: the
// breaker opened after consecutive failures and has not closed again.
// False without an L2.
func (g *Group) L2Suspended() bool {
	if g.l2 == nil {
		return false
	}
	return g.l2.breaker.open()
}

// open reports whether the breaker stops calls (or lets only a probe
// through).
func (b *breaker) open() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.failures >= b.threshold
}

package postgres

// IdleLogins returns how many logins p keeps a list of idle connections
// for.
func IdleLogins(p *Pool) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}

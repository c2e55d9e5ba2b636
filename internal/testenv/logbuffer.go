package testenv

import (
	"regexp"
	"strings"
	"sync"
)

// LogBuffer is where a test's log/slog handler writes, safe for the
// concurrent writers of a server under load.
type LogBuffer struct {
	mu sync.Mutex // protects b
	b  strings.Builder
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines returns the lines written, without empty ones.
func (l *LogBuffer) Lines() []string {
	return strings.FieldsFunc(l.String(), func(r rune) bool { return r == '\n' })
}

// Matching returns the lines written that re matches.
func (l *LogBuffer) Matching(re *regexp.Regexp) []string {
	var m []string
	for _, line := range l.Lines() {
		if re.MatchString(line) {
			m = append(m, line)
		}
	}
	return m
}

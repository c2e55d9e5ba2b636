package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"time"

	"github.com/sqlcached/sqlcached/internal/config"
)

// Load reads a configuration file and compiles its rules. Errors name the
// file, the line and the key at fault.
func Load(path string) (*Set, *config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	s, err := Compile(cfg)
	if err != nil {
		return nil, nil, err
	}
	return s, cfg, nil
}

// Reloader puts a configuration file's rules in force again when the file
// changes and when it is told to (SIGHUP). A file that does not load
// changes nothing: the error is logged and the rules in force stay.
type Reloader struct {
	Path string
	// Apply puts a new set of rules in force; cfg is the whole new
	// configuration, for the caller to notice changes that need a
	// restart.
	Apply func(s *Set, cfg *config.Config)
	Log   *slog.Logger
	// Interval is how often the file is looked at; 0 means 250ms.
	Interval time.Duration
}

// Run watches the file until ctx ends, reloading on each change and on
// each value from hup.
func (r *Reloader) Run(ctx context.Context, hup <-chan os.Signal) {
	interval := r.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	last := r.fingerprint()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			last = r.fingerprint()
			r.reload("SIGHUP")
		case <-t.C:
			if fp := r.fingerprint(); !bytes.Equal(fp, last) {
				last = fp
				r.reload("file changed")
			}
		}
	}
}

// fingerprint identifies the file's contents; nil when it cannot be read
// (an editor replacing it).
func (r *Reloader) fingerprint() []byte {
	b, err := os.ReadFile(r.Path)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(b)
	return sum[:]
}

// Reload loads the file now and applies it when it is valid.
func (r *Reloader) Reload() error {
	s, cfg, err := Load(r.Path)
	if err != nil {
		return err
	}
	r.Apply(s, cfg)
	return nil
}

func (r *Reloader) reload(why string) {
	if _, err := os.Stat(r.Path); err != nil {
		r.Log.Error("configuration not reloaded: the rules in force stay", "why", why, "err", err)
		return
	}
	if err := r.Reload(); err != nil {
		r.Log.Error("configuration not reloaded: the rules in force stay", "why", why, "err", err)
		return
	}
	r.Log.Info("configuration reloaded", "why", why, "file", r.Path)
}

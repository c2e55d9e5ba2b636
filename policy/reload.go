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
	var w watched
	w.changed(r.Path)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			w.changed(r.Path)
			r.reload("SIGHUP")
		case <-t.C:
			if w.changed(r.Path) {
				r.reload("file changed")
			}
		}
	}
}

// watched is what was last seen of the file: its metadata, looked at on
// every tick (one system call), and a digest of its contents, read only
// when the metadata moved. A file that cannot be read (an editor
// replacing it) has neither.
type watched struct {
	info os.FileInfo
	sum  []byte
}

// changed looks at the file and reports whether its contents differ from
// what was last seen.
func (w *watched) changed(path string) bool {
	info, err := os.Stat(path)
	if err != nil {
		w.info = nil
		return w.set(nil)
	}
	if w.info != nil && sameFile(w.info, info) {
		return false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		w.info = nil
		return w.set(nil)
	}
	// A change within the file system's clock tick may leave the size and
	// times as they were: metadata that recent is not relied on.
	w.info = nil
	if changed := changeTime(info); time.Since(info.ModTime()) >= recent && time.Since(changed) >= recent {
		w.info = info
	}
	sum := sha256.Sum256(b)
	return w.set(sum[:])
}

// recent is how old a file's modification time must be for its metadata
// to stand for its contents.
const recent = 2 * time.Second

func (w *watched) set(sum []byte) bool {
	moved := !bytes.Equal(sum, w.sum)
	w.sum = sum
	return moved
}

// sameFile reports whether a and b describe the same file with the same
// contents as far as its metadata tells: the same file (an editor's
// rename makes another), size, modification time and change time (which
// moves when a copy puts the old modification time back, as cp -p and
// rsync -t do).
func sameFile(a, b os.FileInfo) bool {
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime()) &&
		changeTime(a).Equal(changeTime(b))
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

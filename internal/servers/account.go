package servers

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// Account is a system user servers run as. PostgreSQL and pgbouncer refuse
// to run as root, so when this process runs as root they run as the
// postgres account. A nil *Account is the current user.
type Account struct {
	Name     string
	UID, GID uint32
}

// ServerAccount returns the account servers run as: nil (the current
// user) unless this process runs as root, in which case it is the postgres
// user.
func ServerAccount() (*Account, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and no postgres user to run PostgreSQL as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &Account{Name: u.Username, UID: uint32(uid), GID: uint32(gid)}, nil
}

// Chown gives path to the account; a nil account leaves it alone.
func (a *Account) Chown(path string) error {
	if a == nil {
		return nil
	}
	return os.Lchown(path, int(a.UID), int(a.GID))
}

// ChownAll gives dir and everything under it to the account; a nil
// account leaves them alone.
func (a *Account) ChownAll(dir string) error {
	if a == nil {
		return nil
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return a.Chown(path)
	})
}

// credential returns the credential a child runs with, nil for the
// current user. The child keeps this process's supplementary groups
// (NoSetGroups), which setgroups may not change in a user namespace.
func (a *Account) credential() *syscall.Credential {
	if a == nil {
		return nil
	}
	return &syscall.Credential{Uid: a.UID, Gid: a.GID, NoSetGroups: true}
}

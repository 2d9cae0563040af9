package database

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/channels/container"
)

// hostSocketDir is the host directory shared as the server's socket
// directory. Its parents are root's alone (0700): on the host only root
// reaches the socket; inside instances the mount is all there is.
func (m *Manager) hostSocketDir(db Database) string {
	return filepath.Join(m.dir, db.Name, "socket")
}

// makeSocketDir makes the shared directory (root's until the server's
// instance is up and its postgres user's host ids are known).
func (m *Manager) makeSocketDir(db Database) error {
	if err := os.MkdirAll(m.dir, 0o700); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(m.dir, db.Name), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(m.hostSocketDir(db), 0o711); err != nil && !os.IsExist(err) {
		return err
	}
	return nil
}

// ownSocketDir gives the shared directory to the host ids the instance's
// postgres user has, so that Postgres can make its socket there. Done at
// every start: an instance made again may have another id map.
func (m *Manager) ownSocketDir(ctx context.Context, db Database) error {
	out, err := m.sh(ctx, db.Instance(), "id -u postgres; id -g postgres", nil)
	if err != nil {
		return fmt.Errorf("find the postgres user: %w", err)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return fmt.Errorf("find the postgres user: %q", out)
	}
	uid, err1 := strconv.Atoi(f[0])
	gid, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil {
		return fmt.Errorf("find the postgres user: %q", out)
	}
	hu, hg, err := m.rt.HostIDs(db.Instance(), uid, gid)
	if err != nil {
		return err
	}
	dir := m.hostSocketDir(db)
	if err := os.Chown(dir, hu, hg); err != nil {
		return err
	}
	return os.Chmod(dir, 0o711)
}

// socketDevice mounts the shared directory at db.SocketDir(): writable
// for the server, which makes its socket there, read-only for apps. A
// read-only mount still lets a process connect to the socket (Linux checks
// a read-only filesystem only for files, directories and links), and with
// the default shared id map an app's root could otherwise delete the socket
// or put its own in its place for the other apps attached.
func (m *Manager) socketDevice(db Database, readonly bool) container.Devices {
	d := map[string]string{"type": "disk", "source": m.hostSocketDir(db), "path": db.SocketDir()}
	if readonly {
		d["readonly"] = "true"
	}
	return container.Devices{db.device(): d}
}

// Attachment is what an app instance needs to use a database: the devices
// to add to it (at launch: LaunchWithDevices) and the environment variable.
type Attachment struct {
	Devices container.Devices
	URL     string // DATABASE_URL
}

// Attach is the attachment of db for an app that logs in with creds.
func (m *Manager) Attach(db Database, creds Credentials) Attachment {
	return Attachment{Devices: m.socketDevice(db, true), URL: URL(db, creds)}
}

// URL is the libpq connection URI: no host in the authority and the socket
// directory as the host parameter, which libpq (psql, psycopg, Ruby's pg),
// pgx and node-postgres read as "connect over the unix socket there".
func URL(db Database, creds Credentials) string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(creds.User, creds.Password), Path: "/" + creds.Database, RawQuery: "host=" + db.SocketDir()}
	return u.String()
}

// Shell is the command `db psql` runs (interactively, in db's instance):
// psql as the superuser on the apps' database, over the instance's
// loopback. Whoever may run it may read and change everything.
func Shell(db Database) (instance string, argv []string) {
	return db.Instance(), []string{"psql", "-X", "-h", "127.0.0.1", "-U", "postgres", "-d", db.DBName()}
}

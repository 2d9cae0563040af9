package database

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// An app instance with no network reaches a new database through the
// shared socket, with DATABASE_URL alone, as an unprivileged user, and a
// wrong password is refused.
func TestProvisionedDatabaseServesAnAppOverTheSharedSocket(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	db, creds := e.provision(t, "shop")
	app, att := e.app(t, "app-1", db, creds)
	if !strings.HasPrefix(att.URL, "postgres://shop:") || !strings.HasSuffix(att.URL, "@/shop?host=/slipway/db/shop") {
		t.Errorf("DATABASE_URL %s", att.URL)
	}
	out, err := e.appSQL(t, app, att.URL, "CREATE TABLE items (id int PRIMARY KEY, name text);\nINSERT INTO items VALUES (1, 'one'), (2, 'two');\nSELECT count(*) FROM items;\n")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(out) != "2" {
		t.Errorf("rows written: %q", out)
	}
	checkSocketDir(t, e.m.hostSocketDir(db))
	if out, err := e.rt.ExecStreams(context.Background(), app, []string{"rm", "-f", db.SocketDir() + "/.s.PGSQL.5432"}, nil, nil, nil, nil); err != nil || out == 0 {
		t.Errorf("the app's root removed the server's socket (exit %d, %v)", out, err)
	}
	wrong := strings.Replace(att.URL, creds.Password, "not-the-password", 1)
	if _, err := e.appSQL(t, app, wrong, "SELECT 1;\n"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("a wrong password: %v", err)
	}
}

// checkSocketDir: on the host the shared directory belongs to the
// instance's postgres user as the host sees it (not root: Postgres made its
// socket there), mode 0711, and the socket is 0777 (any app user connects;
// the password guards it).
func checkSocketDir(t *testing.T, dir string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	if sys.Uid == 0 || st.Mode().Perm() != 0o711 {
		t.Errorf("socket directory owned by %d:%d, mode %o", sys.Uid, sys.Gid, st.Mode().Perm())
	}
	sock, err := os.Stat(filepath.Join(dir, ".s.PGSQL.5432"))
	if err != nil || sock.Mode()&os.ModeSocket == 0 || sock.Mode().Perm() != 0o777 {
		t.Errorf("socket: %v %v", sock, err)
	}
	t.Logf("socket directory on the host: uid %d gid %d mode %o", sys.Uid, sys.Gid, st.Mode().Perm())
}

// A server whose instance stopped hard (Postgres killed, its pid and lock
// files left behind) comes back with Start, its rows intact, and an app
// attached before reaches it again through the same mount.
func TestServerComesBackAfterItsInstanceStops(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	db, creds := e.provision(t, "again")
	app, att := e.app(t, "app-1", db, creds)
	if _, err := e.appSQL(t, app, att.URL, "CREATE TABLE t (n int); INSERT INTO t VALUES (1), (2), (3);\n"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Stop(ctx, db.Instance()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.appSQL(t, app, att.URL, "SELECT 1;\n"); err == nil {
		t.Fatal("the app reached a stopped server")
	}
	if err := e.m.Start(ctx, db); err != nil {
		t.Fatalf("start: %v", err)
	}
	if got := e.count(t, app, att.URL, "SELECT count(*) FROM t;"); got != "3" {
		t.Errorf("rows after the restart: %s", got)
	}
	if err := e.m.Start(ctx, db); err != nil {
		t.Errorf("start of a running server: %v", err)
	}
	if got := e.count(t, app, att.URL, "SELECT count(*) FROM t;"); got != "3" {
		t.Errorf("rows after a second start: %s", got)
	}
}

// Scratch servers a killed daemon left are found by their label and deleted;
// the database's own instance is not touched.
func TestDeleteScratchLeavesTheServer(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	db, _ := e.provision(t, "left")
	if err := e.rt.LaunchWithDevices(ctx, "db-verify-left", e.m.image, map[string]string{LabelScratch: "database", LabelDatabase: "left"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.m.DeleteScratch(ctx); err != nil {
		t.Fatal(err)
	}
	list, err := e.rt.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
	}
	if strings.Join(names, ",") != db.Instance() {
		t.Errorf("instances after DeleteScratch: %v", names)
	}
}

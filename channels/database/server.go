package database

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
	"github.com/slipway-dev/slipway/channels/runtime"
)

// Where things are inside a server's instance.
const (
	pgBin     = "/usr/lib/postgresql/" + baseimage.PostgresVersion + "/bin"
	dataMount = "/var/lib/slipway-db"                                     // the volume
	pgData    = dataMount + "/" + baseimage.PostgresVersion               // initdb's directory, one per major version
	localDir  = "/run/postgresql"                                         // a scratch server's socket directory
	asPG      = "setpriv --reuid=postgres --regid=postgres --init-groups" // exec as postgres, signals and all
)

// hba is every server's pg_hba.conf, rewritten at each start so it is
// slipway's whatever the data directory went through. Apps come over the
// shared socket and must give a password (scram-sha-256); slipway's own
// tools come over the instance's loopback, which only this instance's
// processes can reach, as the superuser.
const hba = `# Written by slipway at every start; changes here are lost.
local all all          scram-sha-256
host  all postgres 127.0.0.1/32 trust
`

// prepareScript runs as root in the instance before the server starts
// ($1 data directory, $2 socket directory, $3 more initdb flags). It leaves a running server
// alone, clears a dead one's pid and lock files (a pid recorded before a
// reboot may well be a live process now, which Postgres would take for
// another server), makes the cluster on first start and rewrites pg_hba.
const prepareScript = `set -eu
cd /
D=$1 S=$2 F=$3
mkdir -p "$S"
if [ "$(stat -c %U "$S")" != postgres ]; then chown postgres:postgres "$S"; chmod 0711 "$S"; fi
if [ -f "$D/postmaster.pid" ]; then
	pid=$(head -n 1 "$D/postmaster.pid")
	if [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = postgres ]; then exit 0; fi
	rm -f "$D/postmaster.pid" "$S/.s.PGSQL.5432" "$S/.s.PGSQL.5432.lock"
fi
if [ ! -s "$D/PG_VERSION" ]; then
	mkdir -p "$D"
	chown postgres:postgres "$D"
	chmod 0700 "$D"
	` + asPG + ` ` + pgBin + `/initdb -D "$D" -U postgres -E UTF8 --locale=C.UTF-8 -A trust --no-instructions $F
fi
cat >"$D/pg_hba.conf" <<'HBA'
` + hba + `HBA
chown postgres:postgres "$D/pg_hba.conf"
chmod 0600 "$D/pg_hba.conf"
`

// readyScript waits (up to 60 s: a loaded two-CPU host has taken over 15)
// until the server accepts connections on its loopback and on its socket.
const readyScript = `S=$1 i=0
until pg_isready -q -h 127.0.0.1 && pg_isready -q -h "$S"; do
	i=$((i+1)); [ $i -lt 1200 ] || { echo "postgres did not become ready in 60 s" >&2; exit 1; }
	sleep 0.05
done`

// server is one kind of server: a database's, or a scratch one that
// proves a backup and is deleted after, which need not survive a crash
// (no fsync: initdb takes 0.5 s instead of 1.2, a restore less too).
type server struct {
	instance  string
	socketDir string
	scratch   bool
}

// serverProcesses is what the supervisor runs: postgres itself, as the
// postgres user (setpriv execs it, so the supervisor's TERM reaches it),
// logging to stderr, which the supervisor keeps.
func serverProcesses(srv server) runtime.Processes {
	cmd := "exec " + asPG + " " + pgBin + "/postgres -D " + pgData +
		" -c listen_addresses=127.0.0.1 -c unix_socket_directories=" + srv.socketDir +
		" -c unix_socket_permissions=0777"
	if srv.scratch {
		cmd += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
	}
	return runtime.Processes{
		List:  []runtime.Process{{Name: "postgres", Command: cmd}},
		Dir:   "/",
		Grace: 30 * time.Second, // a checkpoint at shutdown saves recovery at the next start
	}
}

// startServer brings Postgres up in a running instance: prepare, run it
// under the supervisor (a no-op when it runs already), wait until ready.
func (m *Manager) startServer(ctx context.Context, srv server) error {
	start := time.Now()
	flags := ""
	if srv.scratch {
		flags = "--no-sync"
	}
	if _, err := m.sh(ctx, srv.instance, prepareScript, nil, pgData, srv.socketDir, flags); err != nil {
		return fmt.Errorf("prepare the server: %w", err)
	}
	if err := m.rt.StartProcesses(ctx, srv.instance, serverProcesses(srv)); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	if _, err := m.sh(ctx, srv.instance, readyScript, nil, srv.socketDir); err != nil {
		return err
	}
	m.log.Debug("Postgres ready", "instance", srv.instance, "took", time.Since(start))
	return nil
}

// sh runs script with sh -c in the instance (args are $1...), stdin from
// stdin (may be nil), and returns its stdout; a failure carries the line
// of stderr that says why.
func (m *Manager) sh(ctx context.Context, instance, script string, stdin io.Reader, args ...string) (string, error) {
	argv := append([]string{"/bin/sh", "-c", script, "sh"}, args...)
	var out, errs bytes.Buffer
	code, err := m.rt.ExecStreams(ctx, instance, argv, nil, stdin, &out, &errs)
	if err != nil {
		return "", err
	}
	if code != 0 {
		return out.String(), fmt.Errorf("%w: %s", ErrServer, why(errs.String(), code))
	}
	return out.String(), nil
}

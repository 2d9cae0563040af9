package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestADatabaseServesAnApp: a Postgres server provisioned for production,
// attached to an app that keeps its rows there through DATABASE_URL; the
// rows outlive deploys and a reload; a viewer may not change it; it is not
// deprovisioned while attached.
func TestADatabaseServesAnApp(t *testing.T) {
	t.Parallel()
	copies := t.TempDir()
	d := startDaemonOpts(t, []string{"--backup-copy-dir", copies}, nil)
	d.setupApp("notes")
	out := d.mustSSH("db", "create", "notesdb", "--env", "production")
	if !strings.Contains(out, "Database notesdb is running") {
		t.Fatalf("db create:\n%s", out)
	}
	if out := d.mustSSH("db", "attach", "notesdb", "notes/production"); !strings.Contains(out, "the first deploy will have it") {
		t.Errorf("db attach before the first deploy:\n%s", out)
	}
	w := d.newApp("notes", "notes")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push: %d\n%s", code, out)
	}
	const host = "notes.production.localhost"
	if code, body := d.post(host, "/", "remember the milk"); code != 201 {
		t.Fatalf("POST a note: %d %q", code, body)
	}
	d.serves(host, "1 notes; the newest: remember the milk")
	if cfg := d.mustSSH("config", "notes/production"); !strings.Contains(cfg, "DATABASE_URL") || strings.Contains(cfg, "@/notesdb") {
		t.Errorf("config shows the URL unmasked, or not at all:\n%s", cfg)
	}
	if info := d.mustSSH("db", "info", "notesdb"); !strings.Contains(info, "notes/production as DATABASE_URL") {
		t.Errorf("db info:\n%s", info)
	}

	// Deploys, a rollback and a reload keep the rows.
	firstCommit := w.head()
	w.commitFile("NEWS", "a second commit\n", "two")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("second push: %d\n%s", code, out)
	}
	d.serves(host, "1 notes; the newest: remember the milk")
	d.mustSSH("pin", "notes/production", firstCommit)
	d.serves(host, "1 notes; the newest: remember the milk")
	d.mustSSH("track", "notes/production", "main")
	d.mustSSH("db", "reload", "notesdb")
	d.serves(host, "1 notes; the newest: remember the milk")
	// The app reaches its database without the daemon.
	d.stop(syscall.SIGKILL)
	d.post(host, "/", "written while slipway was down")
	d.serves(host, "2 notes; the newest: written while slipway was down")
	d.start()

	// A backup is proven by a restore, table by table; a restore brings
	// its rows back; a dump changed by one byte is refused.
	if out := d.mustSSH("db", "backup", "notesdb"); !strings.Contains(out, "verified: 1 tables match") {
		t.Fatalf("db backup:\n%s", out)
	}
	var backups []struct {
		ID          int64
		File, State string
	}
	d.sshJSON(&backups, "db", "backups", "notesdb", "--json")
	if len(backups) != 1 || backups[0].State != "verified" {
		t.Fatalf("db backups: %+v", backups)
	}
	first := fmt.Sprint(backups[0].ID)
	if out := d.mustSSH("db", "schedule", "notesdb"); !strings.Contains(out, "default (0 3 * * *)") {
		t.Errorf("db schedule: %s", out)
	}
	d.mustSSH("db", "schedule", "notesdb", "off")
	if out := d.mustSSH("db", "purge", "notesdb"); !strings.Contains(out, "Kept 1 backup") {
		t.Errorf("db purge:\n%s", out)
	}
	// Off the host: copied, and read back there against its SHA-256.
	if out := d.mustSSH("backup", "copy", first); !strings.Contains(out, "as recorded") {
		t.Errorf("backup copy:\n%s", out)
	}
	if copied, err := os.ReadFile(filepath.Join(copies, "databases", "notesdb", filepath.Base(backups[0].File))); err != nil || len(copied) == 0 {
		t.Errorf("the copy: %d bytes, %v", len(copied), err)
	}
	d.post(host, "/", "buy bread")
	d.serves(host, "3 notes; the newest: buy bread")
	// Into a new database: it gets the backup's rows, the old one keeps its own.
	if out := d.mustSSH("db", "restore", "notesdb", first, "--to-new", "notescopy"); !strings.Contains(out, "notescopy holds backup "+first+"'s data") {
		t.Errorf("db restore --to-new:\n%s", out)
	}
	if out, _, _ := d.sshAs(d.key, "SELECT count(*) FROM notes;\n", "db", "psql", "notescopy"); !strings.Contains(out, " 2\n") {
		t.Errorf("the new database holds:\n%s", out)
	}
	d.serves(host, "3 notes; the newest: buy bread")
	out = d.mustSSH("db", "restore", "notesdb", first)
	for _, want := range []string{"what was written since is lost", "Safety backup", "in maintenance for the swap", "holds backup " + first + "'s data"} {
		if !strings.Contains(out, want) {
			t.Errorf("db restore: no %q in\n%s", want, out)
		}
	}
	d.serves(host, "2 notes; the newest: written while slipway was down")
	dump := backups[0].File // where it is on the host
	data, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	os.WriteFile(dump, data, 0o600)
	if _, errOut, code := d.ssh("db", "restore", "notesdb", first); code == 0 || !strings.Contains(errOut, "SHA-256") {
		t.Errorf("restore of a damaged dump: %d %s", code, errOut)
	}
	d.serves(host, "2 notes; the newest: written while slipway was down")

	// psql as the apps' role, SQL on stdin; the data stays out of the log.
	out, errOut, code := d.sshAs(d.key, "SELECT body FROM notes;\n", "db", "psql", "notesdb")
	if code != 0 || !strings.Contains(out, "remember the milk") {
		t.Errorf("db psql: %d\n%s%s", code, out, errOut)
	}
	if ops := d.ops("--type", "execute"); len(ops) == 0 || !strings.Contains(d.mustSSH("logs", fmt.Sprint(ops[0].ID)), "psql on database notesdb") ||
		strings.Contains(d.mustSSH("logs", fmt.Sprint(ops[0].ID)), "remember the milk") {
		t.Errorf("the psql operation's log: %+v", ops)
	}

	// On a terminal (ssh -t), psql is interactive: its prompt, its answers.
	term := exec.Command("timeout", append(append([]string{"20", "ssh", "-tt"}, d.sshArgs(d.key)...), "db", "psql", "notesdb")...)
	term.Stdin = strings.NewReader("SELECT 40 + 2 AS answer;\n\\q\n")
	if out, err := term.CombinedOutput(); err != nil || !strings.Contains(string(out), "notesdb=>") || !strings.Contains(string(out), "42") {
		t.Errorf("db psql on a terminal: %v\n%s", err, out)
	}

	// The backup role backs up and lists, and opens nothing.
	keeper := d.addUser("bea")
	d.mustSSH("grant", "bea", "production", "backup")
	if out, errOut, code := d.sshAs(keeper, "", "db", "backups", "notesdb"); code != 0 || !strings.Contains(out, "(database notesdb)") {
		t.Errorf("db backups as the backup role: %d %s %s", code, out, errOut)
	}
	for _, args := range [][]string{{"db", "info", "notesdb"}, {"db", "restore", "notesdb", first}, {"config", "notes/production"}, {"db", "psql", "notesdb"}} {
		if _, _, code := d.sshAs(keeper, "", args...); code == 0 {
			t.Errorf("%v as the backup role succeeded", args)
		}
	}

	// A viewer reads, and changes nothing.
	viewer := d.addUser("vera")
	d.mustSSH("grant", "vera", "production", "viewer")
	if out, _, code := d.sshAs(viewer, "", "db", "list"); code != 0 || !strings.Contains(out, "notesdb") {
		t.Errorf("db list as a viewer: %d %s", code, out)
	}
	for _, args := range [][]string{{"db", "reload", "notesdb"}, {"db", "detach", "notesdb", "notes/production"}, {"db", "deprovision", "notesdb"}, {"db", "psql", "notesdb"}} {
		if _, errOut, code := d.sshAs(viewer, "", args...); code == 0 || !strings.Contains(errOut, "may not") {
			t.Errorf("%v as a viewer: %d %s", args, code, errOut)
		}
	}
	if _, errOut, code := d.ssh("db", "deprovision", "notesdb"); code == 0 || !strings.Contains(errOut, "attached") {
		t.Errorf("deprovision while attached: %d %s", code, errOut)
	}
	// The app needs its database: detaching fails its health check, and the
	// installation keeps serving with it attached.
	if _, _, code := d.ssh("db", "detach", "notesdb", "notes/production"); code == 0 {
		t.Error("detaching the database the app needs succeeded")
	}
	d.serves(host, "2 notes; the newest: written while slipway was down")
	out = d.mustSSH("db", "deprovision", "notesdb", "--force")
	if !strings.Contains(out, "its volume db-notesdb is kept") || !strings.Contains(out, "DATABASE_URL unset in notes/production") {
		t.Errorf("db deprovision --force:\n%s", out)
	}
	if cfg := d.mustSSH("config", "notes/production"); strings.Contains(cfg, "DATABASE_URL") {
		t.Errorf("the URL of a deprovisioned database is still in the config:\n%s", cfg)
	}
	d.mustSSH("db", "deprovision", "notescopy")
	if list := d.mustSSH("db", "list"); !strings.Contains(list, "No databases") {
		t.Errorf("db list after deprovision:\n%s", list)
	}
}

// post sends body to path of host through the front proxy.
func (d *slipwayd) post(host, path, body string) (int, string) {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addrs["proxy"]+path, strings.NewReader(body))
	req.Host = host
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		d.t.Fatalf("POST %s%s: %v", host, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDaemonKilledDuringADatabaseBackup: kill -9 while the dump is being
// proven leaves, after the restart, no scratch server and no backup
// recorded as anything but failed.
func TestDaemonKilledDuringADatabaseBackup(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.mustSSH("env", "create", "production")
	d.mustSSH("db", "create", "killdb", "--env", "production")
	backup := exec.Command("ssh", append(d.sshArgs(d.key), "db", "backup", "killdb")...)
	if err := backup.Start(); err != nil {
		t.Fatal(err)
	}
	defer backup.Wait()
	eventually(t, 30*time.Second, "the backup verifying", func() (bool, string) {
		ops := d.ops("--type", "backup")
		if len(ops) == 0 {
			return false, "no backup yet"
		}
		log := d.mustSSH("logs", fmt.Sprint(ops[0].ID))
		return strings.Contains(log, "Verifying"), log
	})
	d.stop(syscall.SIGKILL)
	d.start()
	eventually(t, 30*time.Second, "no scratch server left", func() (bool, string) {
		left := d.instances()
		return !strings.Contains(strings.Join(left, " "), "db-verify-"), strings.Join(left, " ")
	})
	var backups []struct{ State, Reason string }
	d.sshJSON(&backups, "db", "backups", "killdb", "--json")
	if len(backups) != 1 || backups[0].State != "failed" || !strings.Contains(backups[0].Reason, "interrupted") {
		t.Errorf("the backup after the kill: %+v", backups)
	}
}

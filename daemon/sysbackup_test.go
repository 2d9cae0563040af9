package daemon_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startOn starts a second daemon on a data directory of its own (one a
// system backup was restored into) in a new Incus project, as on a new host,
// with the first one's admin key at hand.
func (d *slipwayd) startOn(data string) *slipwayd {
	d.t.Helper()
	n := &slipwayd{t: d.t, dir: d.dir, data: data, project: "slipway-test-" + randomHex(4), key: d.key, env: d.env}
	d.t.Cleanup(n.cleanupProject)
	d.t.Cleanup(n.stopProxy)
	n.start()
	return n
}

// hostKey is the SSH host key the daemon presents, as ssh-keyscan sees it.
func (d *slipwayd) hostKey() string {
	d.t.Helper()
	host, port, _ := strings.Cut(d.addrs["ssh"], ":")
	out := run(d.t, d.dir, nil, "ssh-keyscan", "-t", "ed25519", "-p", port, host)
	for _, line := range strings.Split(out, "\n") {
		if fields := strings.Fields(line); len(fields) == 3 && !strings.HasPrefix(line, "#") {
			return fields[1] + " " + fields[2]
		}
	}
	d.t.Fatalf("ssh-keyscan: %q", out)
	return ""
}

func TestSystemBackupRestoresOntoANewHost(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "SLIPWAY_BACKUP_SCHEDULE=off", "SLIPWAY_STORE_BACKUP_SCHEDULE=off", "SLIPWAY_SYSTEM_BACKUP_SCHEDULE=off")
	host, w := d.deployed("phoenix", "version one\n")
	v1 := w.head()
	v2 := w.commitFile("public/index.html", "version two\n", "v2")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push v2 exited %d:\n%s", code, out)
	}
	d.serves(host, "version two")
	bea := d.addUser("bea")
	if _, errOut, code := d.sshAs(bea, "", "backup", "now", "--system"); code == 0 || !strings.Contains(errOut, "only an admin") {
		t.Fatalf("non-admin system backup: exit %d %q", code, errOut)
	}

	out := d.mustSSH("backup", "now", "--system")
	if !strings.Contains(out, "keep it as secret as the host") || !strings.Contains(out, "Verified") {
		t.Fatalf("backup now --system:\n%s", out)
	}
	var list []backupJSON
	d.sshJSON(&list, "backup", "list", "--system", "--json")
	if len(list) != 1 || list[0].Kind != "system" || list[0].State != "verified" || fileSum(t, list[0].File) != list[0].SHA256 {
		t.Fatalf("system backups: %+v", list)
	}
	archive := list[0].File
	if side, err := os.ReadFile(archive + ".sha256"); err != nil || !strings.HasPrefix(string(side), list[0].SHA256+"  ") {
		t.Fatalf("sidecar: %q %v", side, err)
	}
	if out := d.mustSSH("backup", "verify", "--system", fmt.Sprint(list[0].ID)); !strings.Contains(out, "Verified") {
		t.Fatalf("backup verify --system:\n%s", out)
	}
	if out := d.mustSSH("backup", "purge", "--system"); !strings.Contains(out, "Kept 1 backup, removed 0") {
		t.Fatalf("backup purge --system:\n%s", out)
	}
	oldKey := d.hostKey()
	d.stop(syscall.SIGTERM)

	// The new host: restore into a new data directory, refused a second time.
	data := filepath.Join(t.TempDir(), "data")
	out = run(t, d.dir, nil, slipwayBin, "restore-system", archive, "--data", data)
	for _, want := range []string{"matches its .sha256", "repositories (git fsck ok): phoenix", "phoenix/production at " + v2[:12], "Not restored:", "volumes"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore-system output lacks %q:\n%s", want, out)
		}
	}
	again := exec.Command(slipwayBin, "restore-system", archive, "--data", data)
	if msg, err := again.CombinedOutput(); err == nil || !strings.Contains(string(msg), "already holds a slipway store") || strings.Count(string(msg), "\n") != 1 {
		t.Fatalf("restore over a store: %v %q", err, msg)
	}

	n := d.startOn(data)
	if got := n.hostKey(); got != oldKey {
		t.Fatalf("host key after restore: %s, want %s", got, oldKey)
	}
	// No instance in the new project: the start redeploys the served commit.
	eventually(t, 3*time.Minute, "the restored daemon serves v2 again", func() (bool, string) {
		code, body, err := n.get(host, "/")
		return err == nil && code == 200 && strings.Contains(body, "version two"), fmt.Sprintf("%d %q %v", code, body, err)
	})
	if _, errOut, code := n.sshAs(bea, "", "backup", "now", "--system"); code == 0 || !strings.Contains(errOut, "only an admin") {
		t.Fatalf("bea after restore: exit %d %q", code, errOut)
	}
	var h []struct{ ID string }
	n.sshJSON(&h, "history", "phoenix/production", "--json")
	if ids := fmt.Sprint(h); !strings.Contains(ids, v1) || !strings.Contains(ids, v2) {
		t.Fatalf("history after restore: %s", ids)
	}

	// Pushes reach the restored repository through the new daemon's hook.
	w.git("remote", "set-url", "deploy", "ssh://git@"+n.addrs["ssh"]+"/phoenix")
	w.commitFile("public/index.html", "version three\n", "v3")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push to the restored daemon exited %d:\n%s", code, out)
	}
	n.serves(host, "version three")
	if out := n.mustSSH("pin", "phoenix/production", v1); !strings.Contains(out, "now follows pinned commit "+v1[:12]) {
		t.Fatalf("pin v1 after restore:\n%s", out)
	}
	n.serves(host, "version one")
}

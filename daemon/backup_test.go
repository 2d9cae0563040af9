package daemon_test

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/slipway-dev/slipway/channels/container"
)

// volumeManifest is a CGI app that keeps a log in its persistent volume:
// /cgi-bin/write?TEXT appends a line, /cgi-bin/read shows the log.
const volumeManifest = `image: slipway/busybox
build:
  - chmod +x public/cgi-bin/*
volumes:
  data: /var/lib/data
web: httpd -f -p $PORT -h /app/public
health:
  path: /
  timeout: 10s
`

const writeScript = `#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "$QUERY_STRING" >> /var/lib/data/log.txt
echo stored
`

const readScript = `#!/bin/sh
echo "Content-Type: text/plain"
echo
cat /var/lib/data/log.txt
`

// startBackupDaemon is startDaemon with no backups on a schedule (tests
// start them by hand), whose clean-up also deletes the project's volumes,
// pass or fail.
func startBackupDaemon(t *testing.T) *slipwayd {
	t.Helper()
	d := startDaemon(t, "SLIPWAY_BACKUP_SCHEDULE=off", "SLIPWAY_STORE_BACKUP_SCHEDULE=off")
	t.Cleanup(func() { // runs before startDaemon's, which deletes the project
		d.stop(syscall.SIGTERM)
		rt, err := container.Connect(d.project, "", slog.New(slog.DiscardHandler))
		if err != nil {
			t.Logf("cleanup: %v", err)
			return
		}
		defer rt.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		names, _ := rt.Server().GetInstanceNames("")
		for _, name := range names {
			rt.Delete(ctx, name)
		}
		if err := rt.DeleteVolumes(ctx); err != nil {
			t.Errorf("cleanup volumes of %s: %v", d.project, err)
		}
	})
	return d
}

// volumeApp deploys the log-keeping app as app/production.
func (d *slipwayd) volumeApp(app string) (string, *workTree) {
	d.t.Helper()
	host := d.setupApp(app)
	w := d.newApp(app, "static")
	w.commitFile("public/cgi-bin/write", writeScript, "write")
	w.commitFile("public/cgi-bin/read", readScript, "read")
	w.commitFile("slipway.yml", volumeManifest, "manifest with a volume")
	if out, code := w.push("deploy", "main"); code != 0 {
		d.t.Fatalf("push exited %d:\n%s", code, out)
	}
	return host, w
}

func (d *slipwayd) write(host, text string) {
	d.t.Helper()
	if code, body, err := d.get(host, "/cgi-bin/write?"+text); err != nil || code != 200 || !strings.Contains(body, "stored") {
		d.t.Fatalf("write %s: %d %q %v", text, code, body, err)
	}
}

func (d *slipwayd) readLog(host string) string {
	d.t.Helper()
	code, body, err := d.get(host, "/cgi-bin/read")
	if err != nil || code != 200 {
		d.t.Fatalf("read: %d %q %v", code, body, err)
	}
	return body
}

type backupJSON struct {
	ID                                   int64
	Kind, Resource, Volume, Source, File string
	Size                                 int64
	SHA256                               string
	Files                                int
	State, Reason, Origin                string
	OperationID                          int64     `json:"operation_id"`
	CreatedAt                            time.Time `json:"created_at"`
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func TestVolumeOutlivesDeploysAndRestoresFromBackup(t *testing.T) {
	t.Parallel()
	d := startBackupDaemon(t)
	host, w := d.volumeApp("shop")
	d.write(host, "before-deploy")

	// Writes go on through a deploy: the old and the new instance mount the
	// one volume, so every write that was answered is in it afterwards.
	var acked []string
	var mu sync.Mutex
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			text := fmt.Sprintf("during-%d", i)
			if code, body, err := d.get(host, "/cgi-bin/write?"+text); err == nil && code == 200 && strings.Contains(body, "stored") {
				mu.Lock()
				acked = append(acked, text)
				mu.Unlock()
			}
		}
	}()
	w.commitFile("public/index.html", "version two\n", "v2")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("second push exited %d:\n%s", code, out)
	}
	close(stop)
	<-done
	d.write(host, "after-deploy")
	log := d.readLog(host)
	for _, want := range append([]string{"before-deploy", "after-deploy"}, acked...) {
		if !strings.Contains(log, want+"\n") {
			t.Errorf("the log lost %q across the deploy:\n%s", want, log)
		}
	}
	if len(acked) == 0 {
		t.Error("no write was answered during the deploy")
	}
	t.Logf("%d writes answered during the deploy, all kept", len(acked))

	out := d.mustSSH("backup", "now", "shop/production")
	if !strings.Contains(out, "Verified: restored into a scratch volume") {
		t.Fatalf("backup now:\n%s", out)
	}
	var list []backupJSON
	d.sshJSON(&list, "backup", "list", "shop/production", "--json")
	if len(list) != 1 || list[0].State != "verified" || list[0].Volume != "data" || list[0].Source != "shop_production_data" || list[0].Files != 1 {
		t.Fatalf("backup list: %+v", list)
	}
	first := list[0]
	if !strings.HasPrefix(first.File, filepath.Join(d.data, "backups")+"/") || fileSum(t, first.File) != first.SHA256 {
		t.Fatalf("backup file %s does not match its recorded sha256 %s", first.File, first.SHA256)
	}
	backedUp := d.readLog(host)

	d.write(host, "after-backup")

	// Restore under load: the site answers throughout.
	var failures, requests atomic.Int64
	stop, done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			requests.Add(1)
			if code, _, err := d.get(host, "/"); err != nil || code != 200 {
				failures.Add(1)
			}
		}
	}()
	out = d.mustSSH("restore", "shop/production", fmt.Sprint(first.ID))
	close(stop)
	<-done
	for _, want := range []string{"Warning: restoring replaces the data", "roll forward", "Safety backup", "Verified: restored into a scratch volume", "now serves commit", "serves the data of backup"} {
		if !strings.Contains(out, want) {
			t.Errorf("restore output lacks %q:\n%s", want, out)
		}
	}
	if failures.Load() != 0 {
		t.Errorf("%d of %d requests failed during the restore", failures.Load(), requests.Load())
	}
	if got := d.readLog(host); got != backedUp {
		t.Fatalf("after restore the app reads\n%s\nwant what was backed up\n%s", got, backedUp)
	}
	d.sshJSON(&list, "backup", "list", "shop/production", "--json")
	if len(list) != 2 || list[0].Origin != "safety" || list[0].State != "verified" {
		t.Fatalf("backups after restore: %+v", list)
	}

	// A damaged backup fails verification, and restore refuses it, changing nothing.
	data, err := os.ReadFile(first.File)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0xff
	if err := os.WriteFile(first.File, data, 0o640); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := d.ssh("backup", "verify", "shop/production", fmt.Sprint(first.ID))
	if code == 0 || !strings.Contains(errOut, "verification failed: its file no longer matches the SHA-256") {
		t.Fatalf("verify of a damaged backup: exit %d\n%s\n%s", code, out, errOut)
	}
	table := d.mustSSH("backup", "list", "shop/production")
	if !strings.Contains(table, "verification failed: its file no longer matches") || !strings.Contains(table, "verified") {
		t.Errorf("backup list:\n%s", table)
	}
	var st struct{ Instance string }
	d.statusJSON(&st, "shop/production")
	out, errOut, code = d.ssh("restore", "shop/production", fmt.Sprint(first.ID))
	lines := strings.Split(strings.TrimSpace(errOut), "\n")
	if code == 0 || len(lines) != 1 || !strings.Contains(errOut, fmt.Sprintf("backup %d is damaged", first.ID)) || !strings.Contains(errOut, "nothing was changed") {
		t.Fatalf("restore of a damaged backup: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var after struct{ Instance string }
	d.statusJSON(&after, "shop/production")
	if after.Instance != st.Instance || d.readLog(host) != backedUp {
		t.Fatalf("a refused restore changed the installation: %s -> %s", st.Instance, after.Instance)
	}
	ops := d.ops("--app", "shop", "--limit", "3")
	if ops[0].Type != "restore" || ops[0].Status != "failed" || !strings.Contains(ops[0].Reason, "is damaged") ||
		ops[1].Type != "backup" || ops[1].Status != "failed" || !strings.Contains(ops[1].Reason, "verification failed") {
		t.Errorf("ops: %+v", ops)
	}

	resp, err := httpClient.Get("http://" + d.addrs["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`slipway_backups{state="verified"} 1`, `slipway_backups{state="failed"} 1`, "slipway_backup_last_verified_timestamp_seconds 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
}

func TestStoreBackupAndWhoMayBackUp(t *testing.T) {
	t.Parallel()
	d := startBackupDaemon(t)
	d.volumeApp("shop")

	out := d.mustSSH("backup", "now", "--store")
	if !strings.Contains(out, "integrity_check ok") {
		t.Fatalf("backup now --store:\n%s", out)
	}
	var list []backupJSON
	d.sshJSON(&list, "backup", "list", "--store", "--json")
	if len(list) != 1 || list[0].Kind != "store" || list[0].State != "verified" || fileSum(t, list[0].File) != list[0].SHA256 {
		t.Fatalf("store backups: %+v", list)
	}
	// The backup is a gzipped SQLite database that passes integrity_check.
	f, err := os.Open(list[0].File)
	if err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(t.TempDir(), "copy.db")
	dst, _ := os.Create(copyPath)
	if _, err := io.Copy(dst, zr); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	f.Close()
	db, err := sql.Open("sqlite3", "file:"+copyPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	var installs int
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check: %q %v", check, err)
	}
	if err := db.QueryRow(`SELECT count(*) FROM installations`).Scan(&installs); err != nil || installs != 1 {
		t.Fatalf("installations in the copy: %d %v", installs, err)
	}

	// The backup role may run and list backups, not restore them; a deployer
	// may do neither; only global admins touch the store's backups.
	bea := d.addUser("bea")
	dave := d.addUser("dave")
	d.mustSSH("grant", "bea", "production", "backup")
	d.mustSSH("grant", "dave", "production", "deployer")
	as := func(key string, args ...string) (string, string, int) { return d.sshAs(key, "", args...) }
	if out, errOut, code := as(bea, "backup", "now", "shop/production"); code != 0 || !strings.Contains(out, "Verified") {
		t.Fatalf("backup role: backup now: exit %d\n%s\n%s", code, out, errOut)
	}
	d.sshJSON(&list, "backup", "list", "shop/production", "--json")
	if out, _, code := as(bea, "backup", "list", "shop/production"); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("backup role: backup list: exit %d\n%s", code, out)
	}
	if _, errOut, code := as(bea, "restore", "shop/production", fmt.Sprint(list[0].ID)); code == 0 || !strings.Contains(errOut, "only an admin of production may restore") {
		t.Fatalf("backup role: restore: exit %d %q", code, errOut)
	}
	if _, errOut, code := as(bea, "backup", "now", "--store"); code == 0 || !strings.Contains(errOut, "only an admin") {
		t.Fatalf("backup role: store backup: exit %d %q", code, errOut)
	}
	for _, args := range [][]string{{"backup", "list", "shop/production"}, {"backup", "now", "shop/production"}} {
		if _, errOut, code := as(dave, args...); code == 0 || !strings.Contains(errOut, "ask an admin of production for the backup role") {
			t.Fatalf("deployer: %v: exit %d %q", args, code, errOut)
		}
	}
	if _, errOut, code := as(dave, "restore", "shop/production", fmt.Sprint(list[0].ID)); code == 0 || !strings.Contains(errOut, "only an admin of production may restore") {
		t.Fatalf("deployer: restore: exit %d %q", code, errOut)
	}

	if out := d.mustSSH("backup", "schedule", "shop/production", "0", "*/6", "*", "*", "*"); !strings.Contains(out, `"0 */6 * * *" (UTC, its own)`) {
		t.Fatalf("backup schedule: %s", out)
	}
	if _, errOut, code := d.ssh("backup", "schedule", "shop/production", "every", "day"); code == 0 || !strings.Contains(errOut, "is not a cron schedule") {
		t.Fatalf("bad schedule: exit %d %q", code, errOut)
	}
	if out := d.mustSSH("backup", "purge", "shop/production"); !strings.Contains(out, "Kept 1 backup, removed 0") {
		t.Fatalf("purge:\n%s", out)
	}
}

package daemon_test

import (
	"database/sql"
	"encoding/csv"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/slipway-dev/slipway/channels"
)

// addUser registers a user with a new key and returns the private key's path.
func (d *slipwayd) addUser(name string) string {
	d.t.Helper()
	key := filepath.Join(d.dir, name+"_key")
	run(d.t, d.dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key)
	d.mustSSH("user", "add", name)
	pub := run(d.t, d.dir, nil, "cat", key+".pub")
	if out, errOut, code := d.sshAs(d.key, pub, "key", "add", name); code != 0 {
		d.t.Fatalf("key add %s: %s %s", name, out, errOut)
	}
	return key
}

func TestEnvironmentAccessAndReports(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.mustSSH("env", "create", "staging")
	prodHost, w := d.deployed("shop", "prod v1\n")
	if out, code := w.push("deploy", "main:staging"); code != 0 {
		t.Fatalf("push branch staging: %d\n%s", code, out)
	}
	d.mustSSH("install", "shop/staging", "--branch", "staging")
	stagingHost := "shop.staging.localhost"
	d.serves(stagingHost, "prod v1")

	vera := d.addUser("vera") // viewer of staging
	dave := d.addUser("dave") // deployer of staging
	d.mustSSH("grant", "vera", "staging", "viewer")
	d.mustSSH("grant", "dave", "staging", "deployer")

	// A viewer cannot push at all.
	w.commitFile("public/index.html", "v2\n", "v2")
	w.env = append(w.env, "GIT_SSH_COMMAND=ssh "+strings.Join(sshOptions(vera), " "))
	if out, code := w.push("deploy", "main"); code == 0 || !strings.Contains(out, "you may not push to shop") {
		t.Fatalf("viewer push: exit %d\n%s", code, out)
	}
	// A deployer of staging deploys staging only, and learns nothing of production.
	w.env = append(w.env, "GIT_SSH_COMMAND=ssh "+strings.Join(sshOptions(dave), " "))
	out, code := w.push("deploy", "main:staging")
	if code != 0 || strings.Contains(out, "production") {
		t.Fatalf("deployer push: exit %d\n%s", code, out)
	}
	d.serves(stagingHost, "v2")
	d.serves(prodHost, "prod v1")
	// Nor may it move, rewrite or delete the branch production follows.
	prodHead := strings.Fields(d.mustSSH("history", "shop/production"))
	w.git("checkout", "-q", "--orphan", "evil")
	w.commitFile("public/index.html", "evil\n", "evil")
	w.git("checkout", "-q", "main")
	for _, args := range [][]string{{"main"}, {"-f", "-o", "force-deploy", "evil:main"}, {"-o", "force-deploy", ":main"}} {
		out, code := w.push(append([]string{"deploy"}, args...)...)
		if code == 0 || !strings.Contains(out, "you may not update branch main") || strings.Contains(out, "production") {
			t.Errorf("deployer of staging: push %v: exit %d\n%s", args, code, out)
		}
	}
	if now := strings.Fields(d.mustSSH("history", "shop/production")); strings.Join(now, " ") != strings.Join(prodHead, " ") {
		t.Errorf("production's history changed:\n%v\n%v", prodHead, now)
	}
	d.serves(prodHost, "prod v1")

	// Viewers see staging only, everywhere.
	as := func(key string, args ...string) (string, string, int) { return d.sshAs(key, "", args...) }
	if out, _, _ := as(vera, "status"); strings.Contains(out, "production") || !strings.Contains(out, "shop/staging") {
		t.Fatalf("viewer status:\n%s", out)
	}
	if out, _, _ := as(vera, "ops", "--json"); strings.Contains(out, "production") || !strings.Contains(out, "staging") {
		t.Fatalf("viewer ops:\n%s", out)
	}
	for _, args := range [][]string{
		{"status", "shop/production"}, {"history", "shop/production"}, {"logs", "shop/production"},
		{"report", "list", "production"}, {"pin", "shop/production", "main"},
	} {
		_, errOut, code := as(vera, args...)
		if code == 0 || !strings.Contains(errOut, "unknown") {
			t.Errorf("viewer %v: exit %d %q, want the answer for something that does not exist", args, code, errOut)
		}
	}
	if _, errOut, code := as(vera, "pin", "shop/staging", "main"); code == 0 || !strings.Contains(errOut, "you may not change shop/staging") {
		t.Errorf("viewer pin staging: exit %d %q", code, errOut)
	}
	if _, errOut, code := as(dave, "grant", "vera", "staging", "admin"); code == 0 || !strings.Contains(errOut, "only an admin of staging") {
		t.Errorf("deployer grant: exit %d %q", code, errOut)
	}
	if _, errOut, code := as(dave, "install", "shop/staging", "--branch", "main"); code == 0 || !strings.Contains(errOut, "you may not install in staging") {
		t.Errorf("deployer install: exit %d %q", code, errOut)
	}

	// A report lists operations on an installation deleted since.
	d.mustSSH("deprovision", "shop/staging")
	week := channels.ISOWeek(time.Now())
	d.mustSSH("report", "make", "staging", week)
	data, _, code := as(vera, "report", "get", "staging", week)
	if code != 0 {
		t.Fatalf("viewer report get: exit %d", code)
	}
	rows, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatalf("report is not CSV: %v\n%s", err, data)
	}
	types := map[string]int{}
	for _, r := range rows[1:] {
		if r[4] != "staging" {
			t.Fatalf("staging report holds %q", r)
		}
		types[r[1]]++
	}
	if types["deploy"] < 2 || types["deprovision"] != 1 {
		t.Fatalf("report rows by type %v:\n%s", types, data)
	}
	if list, _, _ := as(vera, "report", "list", "staging"); !strings.Contains(list, week) {
		t.Fatalf("report list:\n%s", list)
	}
}

func TestWeeklyReportCronFires(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "SLIPWAY_REPORT_SCHEDULE=@every 1s")
	d.mustSSH("env", "create", "production")
	// An environment made two weeks ago: the job reports only weeks it lived through.
	db, err := sql.Open("sqlite3", filepath.Join(d.data, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE environments SET created_at = ? WHERE name = 'production'`,
		time.Now().UTC().AddDate(0, 0, -14).Format("2006-01-02T15:04:05.000000Z")); err != nil {
		t.Fatal(err)
	}
	week := channels.PreviousWeek(time.Now())
	eventually(t, 15*time.Second, "the report job fires", func() (bool, string) {
		out, _, _ := d.ssh("report", "list", "production")
		return strings.Contains(out, week), out
	})
	ops := d.ops("--type", "report")
	if len(ops) == 0 || ops[0].User != "slipway" || ops[0].Status != "succeeded" {
		t.Fatalf("report operations: %+v", ops)
	}
}

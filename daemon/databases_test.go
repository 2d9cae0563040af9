package daemon_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestADatabaseServesAnApp: a Postgres server provisioned for production,
// attached to an app that keeps its rows there through DATABASE_URL; the
// rows outlive deploys and a reload; a viewer may not change it; it is not
// deprovisioned while attached.
func TestADatabaseServesAnApp(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
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

	// Deploys and a reload keep the rows.
	w.commitFile("NEWS", "a second commit\n", "two")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("second push: %d\n%s", code, out)
	}
	d.serves(host, "1 notes; the newest: remember the milk")
	d.mustSSH("db", "reload", "notesdb")
	d.serves(host, "1 notes; the newest: remember the milk")

	// A viewer reads, and changes nothing.
	viewer := d.addUser("vera")
	d.mustSSH("grant", "vera", "production", "viewer")
	if out, _, code := d.sshAs(viewer, "", "db", "list"); code != 0 || !strings.Contains(out, "notesdb") {
		t.Errorf("db list as a viewer: %d %s", code, out)
	}
	for _, args := range [][]string{{"db", "reload", "notesdb"}, {"db", "detach", "notesdb", "notes/production"}, {"db", "deprovision", "notesdb"}} {
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
	d.serves(host, "1 notes; the newest: remember the milk")
	out = d.mustSSH("db", "deprovision", "notesdb", "--force")
	if !strings.Contains(out, "its volume db-notesdb is kept") {
		t.Errorf("db deprovision --force:\n%s", out)
	}
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

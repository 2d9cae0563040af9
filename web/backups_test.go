package web

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

// addBackup records a backup of hello/production's data volume as a backup
// operation would.
func (s *site) addBackup(size int64, sum, state, reason string) store.Backup {
	s.t.Helper()
	ctx := context.Background()
	inst, err := s.store.InstallationByName(ctx, "hello", "production")
	if err != nil {
		s.t.Fatal(err)
	}
	b, err := s.store.CreateBackup(ctx, store.Backup{Kind: store.BackupKindVolume, InstallationID: inst.ID,
		App: "hello", Environment: "production", Volume: "data", Source: "hello_production_data", Origin: store.OriginScheduled})
	if err != nil {
		s.t.Fatal(err)
	}
	if err := s.store.SetBackupFile(ctx, b.ID, "hello/production/data.tar.gz", size, sum, 3); err != nil {
		s.t.Fatal(err)
	}
	if err := s.store.SetBackupState(ctx, b.ID, state, reason); err != nil {
		s.t.Fatal(err)
	}
	return b
}

func TestBackupsShowToAdminAndBackupRoles(t *testing.T) {
	s := newSite(t, Config{})
	s.installHello()
	s.env("staging")
	ctx := context.Background()
	inst, _ := s.store.InstallationByName(ctx, "hello", "production")
	if err := s.store.SetVolume(ctx, inst.ID, "data", "hello_production_data"); err != nil {
		t.Fatal(err)
	}
	if err := s.engine.SetBackupSchedule(ctx, "hello", "production", "0 */6 * * *"); err != nil {
		t.Fatal(err)
	}
	good := strings.Repeat("ab", 32)
	s.addBackup(123456, good, store.BackupVerified, "")
	s.addBackup(2048, strings.Repeat("cd", 32), store.BackupFailed, "checksums differ: log.txt is 10 bytes in the backup, 0 restored")

	users := map[string]browser{"root": s.signIn(s.user("root", true))}
	for name, role := range map[string]string{"pam": store.RoleAdmin, "bea": store.RoleBackup, "vic": store.RoleViewer, "dan": store.RoleDeployer} {
		u := s.user(name, false)
		s.grant(name, "production", role)
		users[name] = s.signIn(u)
	}
	listed := []string{
		`<h2>Backups</h2>`, `<code title="` + good + `">abababababab</code>`, `title="123456 bytes">120.6 KiB<`,
		`<span class="status" data-status="succeeded">verified</span>`,
		`<tr class="failed">`, `<span class="status" data-status="failed">verification failed</span>`,
		`checksums differ: log.txt is 10 bytes in the backup, 0 restored`, "<td>data</td>", "scheduled",
		"Backed up on its own schedule, 0 */6 * * * (UTC).",
	}

	// Admins see the backups on the installation page.
	for _, name := range []string{"root", "pam"} {
		resp, body := s.do("GET", "/installations/hello/production", users[name], nil)
		for _, want := range append(listed, `id="pin"`) {
			if resp.StatusCode != 200 || !strings.Contains(body, want) {
				t.Errorf("%s: installation page (%d) lacks %q", name, resp.StatusCode, want)
			}
		}
	}
	// Viewers and deployers see the installation but not its backups.
	for _, name := range []string{"vic", "dan"} {
		resp, body := s.do("GET", "/installations/hello/production", users[name], nil)
		if resp.StatusCode != 200 || !strings.Contains(body, `id="pin"`) || strings.Contains(body, "Backups") || strings.Contains(body, good[:12]) {
			t.Errorf("%s: installation page (%d) shows backups:\n%s", name, resp.StatusCode, body)
		}
		resp, body = s.do("GET", "/installations/hello/production/backups", users[name], nil)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "ask an admin of production for the backup role") || strings.Contains(body, good[:12]) {
			t.Errorf("%s: backups page: %d\n%s", name, resp.StatusCode, body)
		}
	}

	// The backup role gets the backups on a page of their own, and nothing
	// else of the installation.
	bea := users["bea"]
	resp, _ := s.do("GET", "/installations/hello/production", bea, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/installations/hello/production/backups" {
		t.Fatalf("backup role, installation page: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, body := s.do("GET", "/installations/hello/production/backups", bea, nil)
	for _, want := range append(listed[1:], "Backups of hello/production", "ssh -p 2222 git@127.0.0.1 backup now hello/production") {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("backup role, backups page (%d) lacks %q", resp.StatusCode, want)
		}
	}
	for _, secret := range []string{`id="pin"`, "Commits", "Recent operations", "hello.production.localhost", `href="/installations/hello/production"`} {
		if strings.Contains(body, secret) {
			t.Errorf("backup role, backups page shows %q:\n%s", secret, body)
		}
	}
	_, body = s.do("GET", "/", bea, nil)
	if !strings.Contains(body, `href="/installations/hello/production/backups"`) || strings.Contains(body, "hello.production.localhost") || strings.Contains(body, "/activity?env=production") {
		t.Errorf("backup role, front page:\n%s", body)
	}
	if resp, _ := s.do("POST", "/installations/hello/production/pin", bea, nil); resp.StatusCode == http.StatusSeeOther {
		t.Errorf("backup role may pin")
	}

	// Elsewhere the backups page answers like a missing installation.
	for _, path := range []string{"/installations/hello/staging/backups", "/installations/nope/production/backups"} {
		resp, body := s.do("GET", path, bea, nil)
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "There is no installation") {
			t.Errorf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
	}
	guest := s.signIn(s.user("guest", false))
	resp, hidden := s.do("GET", "/installations/hello/production/backups", guest, nil)
	_, missing := s.do("GET", "/installations/nope/production/backups", guest, nil)
	if resp.StatusCode != http.StatusNotFound || strings.ReplaceAll(hidden, "hello", "nope") != missing {
		t.Errorf("no role, backups page: %d\n%s\nunlike a missing installation:\n%s", resp.StatusCode, hidden, missing)
	}
}

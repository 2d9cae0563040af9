package database

import (
	"strings"
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
	wrong := strings.Replace(att.URL, creds.Password, "not-the-password", 1)
	if _, err := e.appSQL(t, app, wrong, "SELECT 1;\n"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("a wrong password: %v", err)
	}
}

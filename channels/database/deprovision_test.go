package database

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
)

// Deprovisioning with the volume kept leaves the data: a new server of the
// same name finds the rows, with a new password (the old one is refused).
// Without keeping it, the volume goes too.
func TestDeprovisionKeepsTheVolumeWhenAsked(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	ctx := context.Background()
	db, creds := e.provision(t, "kept")
	app, att := e.app(t, "app-1", db, creds)
	if _, err := e.appSQL(t, app, att.URL, "CREATE TABLE notes (n int); INSERT INTO notes VALUES (1), (2);\n"); err != nil {
		t.Fatal(err)
	}
	if err := e.rt.Delete(ctx, app); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Deprovision(ctx, db, true); err != nil {
		t.Fatalf("deprovision: %v", err)
	}
	vols, err := e.rt.Volumes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(vols, db.Volume()) {
		t.Fatalf("volume %s gone after a deprovision that kept it (volumes: %v)", db.Volume(), vols)
	}
	if _, err := os.Stat(e.m.hostSocketDir(db)); !os.IsNotExist(err) {
		t.Errorf("socket directory left: %v", err)
	}

	again, creds2 := e.provision(t, "kept")
	app2, att2 := e.app(t, "app-2", again, creds2)
	if got := e.count(t, app2, att2.URL, "SELECT count(*) FROM notes;"); got != "2" {
		t.Errorf("rows on the kept volume: %s", got)
	}
	if creds2.Password == creds.Password {
		t.Error("the new server has the old password")
	}
	if _, err := e.appSQL(t, app2, att.URL, "SELECT 1;\n"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("the old password: %v", err)
	}

	if err := e.m.Deprovision(ctx, again, false); err != nil {
		t.Fatalf("deprovision: %v", err)
	}
	if vols, _ := e.rt.Volumes(ctx); slices.Contains(vols, db.Volume()) {
		t.Errorf("volume %s still there after a deprovision that did not keep it", db.Volume())
	}
}

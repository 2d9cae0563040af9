package channels

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/database"
	"github.com/slipway-dev/slipway/store"
)

// fakeServers stands in for database.Manager: dumps are a line of text,
// and verification fails when told to.
type fakeServers struct{ verifyErr error }

func (fakeServers) Provision(context.Context, database.Database) (database.Credentials, error) {
	return database.Credentials{User: "app", Password: "s3cret-password", Database: "app"}, nil
}
func (fakeServers) Start(context.Context, database.Database) error { return nil }
func (fakeServers) Deprovision(context.Context, database.Database, bool) error {
	return nil
}
func (fakeServers) Attach(db database.Database, creds database.Credentials) database.Attachment {
	return database.Attachment{URL: database.URL(db, creds)}
}
func (fakeServers) Dump(_ context.Context, db database.Database, w io.Writer) (database.Manifest, error) {
	body := "dump of " + db.Name + "\n"
	io.WriteString(w, body)
	sum := sha256.Sum256([]byte(body))
	return database.Manifest{Database: db.Name, Size: int64(len(body)), SHA256: hex.EncodeToString(sum[:]),
		Tables: []database.Table{{Name: "public.notes", Rows: 2, Sum: "x"}}}, nil
}
func (f *fakeServers) Verify(context.Context, io.ReadSeeker, database.Manifest) error {
	return f.verifyErr
}
func (fakeServers) Restore(context.Context, database.Database, io.ReadSeeker, database.Manifest) error {
	return nil
}

func TestScheduledDatabaseBackupsAreProvenAndPurged(t *testing.T) {
	te, _ := newBackupEngine(t)
	servers := &fakeServers{}
	te.cfg.Databases = servers
	ctx := context.Background()
	op := te.wait(mustOp(te.CreateDatabase(ctx, "notesdb", "prod", "", "alice")))
	if op.Status != store.StatusSucceeded || strings.Contains(te.log(op.ID), "s3cret") {
		t.Fatalf("provision: %+v\n%s", op, te.log(op.ID))
	}
	from := time.Date(2026, 12, 3, 2, 59, 0, 0, time.UTC)
	if ops := te.BackUpDueDatabases(ctx, from, from.Add(30*time.Second), "0 3 * * *"); len(ops) != 0 {
		t.Fatalf("before 03:00: %+v", ops)
	}
	ops := te.BackUpDueDatabases(ctx, from, from.Add(time.Minute), "0 3 * * *")
	if len(ops) != 2 || ops[0].Type != store.OpBackup || ops[1].Type != store.OpPurge {
		t.Fatalf("scheduled: %+v", ops)
	}
	for _, op := range ops {
		if op = te.wait(op); op.Status != store.StatusSucceeded {
			t.Fatalf("%s: %+v\n%s", op.Type, op, te.log(op.ID))
		}
	}
	list, _ := te.DatabaseBackups(ctx, "notesdb")
	if len(list) != 1 || list[0].State != store.BackupVerified || list[0].Files != 1 || list[0].Origin != store.OriginScheduled {
		t.Fatalf("backups: %+v", list)
	}
	// Not proven: recorded as failed, with the reason.
	servers.verifyErr = errors.New("table public.notes has 1 rows, 2 at dump time")
	op = te.wait(mustOp(te.BackupDatabase(ctx, "notesdb", "alice", store.OriginManual)))
	list, _ = te.DatabaseBackups(ctx, "notesdb")
	if op.Status != store.StatusFailed || list[0].State != store.BackupFailed || !strings.Contains(list[0].Reason, "2 at dump time") {
		t.Errorf("an unproven backup: %s %+v", op.Status, list[0])
	}
	if _, err := te.RestoreDatabase(ctx, "notesdb", "999", "", "alice"); !errors.Is(err, ErrUnknownBackup) {
		t.Errorf("restore of an unknown backup: %v", err)
	}
}

func TestADatabasesOwnScheduleWins(t *testing.T) {
	te, _ := newBackupEngine(t)
	te.cfg.Databases = &fakeServers{}
	ctx := context.Background()
	te.wait(mustOp(te.CreateDatabase(ctx, "quiet", "prod", "", "alice")))
	if _, err := te.SetDatabaseSchedule(ctx, "quiet", "off"); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 12, 3, 2, 59, 30, 0, time.UTC)
	if ops := te.BackUpDueDatabases(ctx, from, from.Add(time.Minute), "0 3 * * *"); len(ops) != 0 {
		t.Errorf("a database with backups off was backed up: %+v", ops)
	}
	if _, err := te.SetDatabaseSchedule(ctx, "quiet", "every day"); err == nil {
		t.Error("a schedule that is not cron was taken")
	}
}

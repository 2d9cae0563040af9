package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestMigrationsAreIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	for i := 0; i < 2; i++ {
		s, err := Open(path)
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		var mode string
		s.db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
		var fk int
		s.db.QueryRow(`PRAGMA foreign_keys`).Scan(&fk)
		if mode != "wal" || fk != 1 {
			t.Fatalf("journal_mode=%s foreign_keys=%d, want wal and 1", mode, fk)
		}
		s.Close()
	}
}

func TestUsersAndKeys(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	u, err := s.CreateUser(ctx, "alice", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "alice", false); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate user: %v, want ErrExists", err)
	}
	if err := s.AddKey(ctx, u.ID, "SHA256:abc", "ssh-ed25519 AAAA"); err != nil {
		t.Fatal(err)
	}
	got, err := s.UserByFingerprint(ctx, "SHA256:abc")
	if err != nil || got.Name != "alice" || !got.Admin {
		t.Fatalf("by fingerprint: %+v %v", got, err)
	}
	if _, err := s.UserByFingerprint(ctx, "SHA256:nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown key: %v, want ErrNotFound", err)
	}
}

func TestInstallationsAndOperations(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	clock := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return clock })
	if _, err := s.CreateApp(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateEnvironment(ctx, "production"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInstallation(ctx, "nope", "production", "x", ChannelBranch, "main"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("installation of unknown app: %v", err)
	}
	inst, err := s.CreateInstallation(ctx, "hello", "production", "hello.production.localhost", ChannelBranch, "main")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateInstallation(ctx, "hello", "production", "other", ChannelBranch, "main"); !errors.Is(err, ErrExists) {
		t.Fatalf("second installation: %v, want ErrExists", err)
	}
	op, err := s.CreateOperation(ctx, Operation{Type: "deploy", App: "hello", Environment: "production", InstallationID: inst.ID, User: "alice", Commit: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, op.ID, "one", "two"); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendLogs(ctx, op.ID, "three"); err != nil {
		t.Fatal(err)
	}
	lines, err := s.Logs(ctx, op.ID, 1, 0)
	if err != nil || len(lines) != 2 || lines[0].Text != "two" || lines[1].Seq != 3 {
		t.Fatalf("logs after 1: %+v %v", lines, err)
	}
	if err := s.StartOperation(ctx, op.ID); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(90 * time.Second)
	if err := s.SetServing(ctx, inst.ID, "abc", "hello-production-1", StateRunning, "h"); err != nil {
		t.Fatal(err)
	}
	// A second, still running operation is what a crash leaves behind.
	op2, _ := s.CreateOperation(ctx, Operation{Type: "deploy", App: "hello", Environment: "production", InstallationID: inst.ID, User: "bob"})
	s.StartOperation(ctx, op2.ID)
	if err := s.FinishOperation(ctx, op.ID, StatusSucceeded, ""); err != nil {
		t.Fatal(err)
	}
	interrupted, err := s.InterruptOperations(ctx, "interrupted")
	if err != nil || len(interrupted) != 1 || interrupted[0].ID != op2.ID {
		t.Fatalf("interrupted %+v %v", interrupted, err)
	}
	got, _ := s.Operation(ctx, op2.ID)
	if got.Status != StatusFailed || got.Reason != "interrupted" {
		t.Fatalf("op2 after interrupt: %+v", got)
	}
	got, _ = s.Operation(ctx, op.ID)
	if got.FinishedAt.Sub(got.QueuedAt) != 90*time.Second || got.Resource() != "hello/production" {
		t.Fatalf("op times %+v", got)
	}
	ops, err := s.Operations(ctx, OperationFilter{User: "alice"})
	if err != nil || len(ops) != 1 || ops[0].ID != op.ID {
		t.Fatalf("filter by user: %+v %v", ops, err)
	}
	ops, _ = s.Operations(ctx, OperationFilter{Environments: []string{}})
	if len(ops) != 0 {
		t.Fatalf("no visible environments must list nothing, got %d", len(ops))
	}
	ops, _ = s.Operations(ctx, OperationFilter{})
	if len(ops) != 2 || ops[0].ID != op2.ID {
		t.Fatalf("newest first: %+v", ops)
	}
	i, _ := s.InstallationByName(ctx, "hello", "production")
	if i.Commit != "abc" || i.Instance != "hello-production-1" || i.State != StateRunning {
		t.Fatalf("installation %+v", i)
	}
}

func TestLoginTokensAreSingleUseAndExpire(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	u, _ := s.CreateUser(ctx, "alice", false)
	tok := NewSecret()
	if err := s.CreateLoginToken(ctx, u.ID, "", tok, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.UseLoginToken(ctx, tok); err != nil || got.Name != "alice" {
		t.Fatalf("first use: %+v %v", got, err)
	}
	if _, _, err := s.UseLoginToken(ctx, tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("second use: %v, want ErrExpired", err)
	}
	late := NewSecret()
	s.CreateLoginToken(ctx, u.ID, "", late, 5*time.Minute)
	now = now.Add(5*time.Minute + time.Second)
	if _, _, err := s.UseLoginToken(ctx, late); !errors.Is(err, ErrExpired) {
		t.Fatalf("late use: %v, want ErrExpired", err)
	}
	if _, _, err := s.UseLoginToken(ctx, "made-up"); !errors.Is(err, ErrExpired) {
		t.Fatalf("unknown token: %v, want ErrExpired", err)
	}
	id, sess, err := s.CreateWebSession(ctx, u.ID, 0, time.Hour)
	if err != nil || sess.CSRFToken == "" {
		t.Fatalf("session: %+v %v", sess, err)
	}
	got, err := s.WebSessionByID(ctx, id)
	if err != nil || got.User.Name != "alice" || got.CSRFToken != sess.CSRFToken {
		t.Fatalf("session lookup: %+v %v", got, err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := s.WebSessionByID(ctx, id); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired session: %v", err)
	}
}

func TestPurgeDeprovisionedLogs(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	s.CreateApp(ctx, "a")
	s.CreateEnvironment(ctx, "e")
	s.CreateEnvironment(ctx, "f")
	gone, _ := s.CreateInstallation(ctx, "a", "e", "a.e", ChannelBranch, "main")
	kept, _ := s.CreateInstallation(ctx, "a", "f", "a.f", ChannelBranch, "main")
	opGone, _ := s.CreateOperation(ctx, Operation{Type: "deploy", App: "a", Environment: "e", InstallationID: gone.ID, User: "u"})
	opKept, _ := s.CreateOperation(ctx, Operation{Type: "deploy", App: "a", Environment: "f", InstallationID: kept.ID, User: "u"})
	report, _ := s.CreateOperation(ctx, Operation{Type: "report", Environment: "e", User: "slipway"})
	for _, id := range []int64{opGone.ID, opKept.ID, report.ID} {
		s.AppendLogs(ctx, id, "line")
		s.FinishOperation(ctx, id, StatusSucceeded, "")
	}
	if err := s.DeleteInstallation(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.PurgeDeprovisionedLogs(ctx, now.Add(-time.Hour)); n != 0 {
		t.Fatalf("purged %d lines of logs younger than the cutoff", n)
	}
	if n, err := s.PurgeDeprovisionedLogs(ctx, now.Add(time.Hour)); err != nil || n != 1 {
		t.Fatalf("purged %d (%v), want the deprovisioned installation's one line", n, err)
	}
	for id, want := range map[int64]int{opGone.ID: 0, opKept.ID: 1, report.ID: 1} {
		if lines, _ := s.Logs(ctx, id, 0, 0); len(lines) != want {
			t.Errorf("op %d has %d lines, want %d", id, len(lines), want)
		}
	}
	if op, err := s.Operation(ctx, opGone.ID); err != nil || op.App != "a" {
		t.Fatalf("the operation row must stay: %+v %v", op, err)
	}
}

func TestRemovingAKeyEndsTheSessionsItOpened(t *testing.T) {
	ctx := context.Background()
	s := openTest(t)
	u, _ := s.CreateUser(ctx, "alice", false)
	s.AddKey(ctx, u.ID, "SHA256:laptop", "ssh-ed25519 AAAA laptop")
	s.AddKey(ctx, u.ID, "SHA256:desktop", "ssh-ed25519 AAAA desktop")
	open := func(fp string) string {
		tok := NewSecret()
		if err := s.CreateLoginToken(ctx, u.ID, fp, tok, 5*time.Minute); err != nil {
			t.Fatal(err)
		}
		_, keyID, err := s.UseLoginToken(ctx, tok)
		if err != nil || keyID == 0 {
			t.Fatalf("use token of %s: key %d, %v", fp, keyID, err)
		}
		id, _, err := s.CreateWebSession(ctx, u.ID, keyID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	laptop, desktop := open("SHA256:laptop"), open("SHA256:desktop")
	unspent := NewSecret()
	s.CreateLoginToken(ctx, u.ID, "SHA256:laptop", unspent, 5*time.Minute)
	if err := s.RemoveKey(ctx, "SHA256:laptop"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.WebSessionByID(ctx, laptop); !errors.Is(err, ErrNotFound) {
		t.Fatalf("session of the removed key: %v, want it gone", err)
	}
	if _, _, err := s.UseLoginToken(ctx, unspent); !errors.Is(err, ErrExpired) {
		t.Fatalf("sign-in link of the removed key: %v, want it gone", err)
	}
	if _, err := s.WebSessionByID(ctx, desktop); err != nil {
		t.Fatalf("session of the other key: %v", err)
	}
}

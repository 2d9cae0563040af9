package database

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// seedSQL is an app's schema and rows: a plain table, one with a quoted
// name in its own schema, timestamps (they print in the session's time
// zone), a float and enough rows that the dump's middle is table data.
const seedSQL = `CREATE TABLE items (id int PRIMARY KEY, name text, at timestamptz DEFAULT '2026-12-03 08:00+01', price float8);
INSERT INTO items (id, name, price) VALUES (1, 'one', 0.1), (2, 'two', 1e-7), (3, 'three', 3.14159);
CREATE SCHEMA sales;
CREATE TABLE sales."Order Lines" (n bigserial, note text);
INSERT INTO sales."Order Lines" (note) SELECT md5(i::text) FROM generate_series(1, 20000) i;
CREATE TABLE events (id serial, what text);
`

// dumpTo dumps db into a file of the test's and says how long it took.
func (e *testEnv) dumpTo(t *testing.T, db Database) (string, Manifest) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dump.pgc")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	man, err := e.m.Dump(context.Background(), db, f)
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	t.Logf("dump: %.2f s, %d bytes, %d tables", time.Since(start).Seconds(), man.Size, len(man.Tables))
	return path, man
}

// verify runs Verify on the file at path and says how long it took.
func (e *testEnv) verify(t *testing.T, path string, man Manifest) error {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	err = e.m.Verify(context.Background(), f, man)
	t.Logf("verify: %.2f s (%v)", time.Since(start).Seconds(), err)
	return err
}

// seeded provisions a database and an app that wrote seedSQL through it.
func (e *testEnv) seeded(t *testing.T) (Database, string, string) {
	t.Helper()
	db, creds := e.provision(t, "shop")
	app, att := e.app(t, "app-1", db, creds)
	if _, err := e.appSQL(t, app, att.URL, seedSQL); err != nil {
		t.Fatal(err)
	}
	return db, app, att.URL
}

func (e *testEnv) count(t *testing.T, app, url, sql string) string {
	t.Helper()
	out, err := e.appSQL(t, app, url, sql)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// A dump taken while the app writes is verified by a restore (the manifest
// was read in the dump's own snapshot); the rows then change; Restore brings
// the dump's rows back, and the app reads them with its own URL.
func TestBackupVerifiedThenRestoreBringsItsRowsBack(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	db, app, url := e.seeded(t)

	// An app writing all through the dump: a manifest read outside the
	// dump's snapshot would count other rows than the dump holds.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			// Not appSQL: t.Fatal is for the test's own goroutine.
			_, _ = e.rt.ExecStreams(context.Background(), app, []string{"psql", "-X", "-q", url},
				nil, strings.NewReader("INSERT INTO events (what) SELECT 'tick' FROM generate_series(1, 50);\n"), nil, nil)
		}
	}()
	time.Sleep(200 * time.Millisecond)
	path, man := e.dumpTo(t, db)
	close(stop)
	wg.Wait()

	if len(man.Tables) != 3 || man.SHA256 == "" || man.Size == 0 {
		t.Fatalf("manifest %+v", man)
	}
	if err := e.verify(t, path, man); err != nil {
		t.Fatalf("a good dump was refused: %v", err)
	}
	events := tableRows(t, man, "public.events")
	if events == "0" {
		t.Fatal("the app wrote nothing before the dump: the test proves nothing about the snapshot")
	}
	if n := e.count(t, app, url, "SELECT count(*) FROM events;"); n == events {
		t.Logf("no writes landed after the dump's snapshot (%s events)", n)
	} else {
		t.Logf("events: %s in the dump's snapshot, %s once the writer stopped", events, n)
	}

	if _, err := e.appSQL(t, app, url, "DELETE FROM items WHERE id = 1; UPDATE items SET name = 'changed'; INSERT INTO items (id, name) VALUES (9, 'nine');\n"); err != nil {
		t.Fatal(err)
	}
	if got := e.count(t, app, url, "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM items;"); got != "2=changed,3=changed,9=nine" {
		t.Fatalf("rows after the change: %s", got)
	}

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if err := e.m.Restore(context.Background(), db, f, man); err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restore: %.2f s", time.Since(start).Seconds())
	if got := e.count(t, app, url, "SELECT string_agg(id || '=' || name, ',' ORDER BY id) FROM items;"); got != "1=one,2=two,3=three" {
		t.Errorf("rows after the restore: %s", got)
	}
	if got := e.count(t, app, url, "SELECT count(*) FROM events;"); got != events {
		t.Errorf("events after the restore: %s, the dump had %s", got, events)
	}
	// The app still owns its tables: it can write after a restore.
	if _, err := e.appSQL(t, app, url, "INSERT INTO items (id, name) VALUES (10, 'after');\n"); err != nil {
		t.Errorf("write after the restore: %v", err)
	}
}

func tableRows(t *testing.T, man Manifest, name string) string {
	t.Helper()
	for _, tb := range man.Tables {
		if tb.Name == name {
			return strconv.FormatInt(tb.Rows, 10)
		}
	}
	t.Fatalf("no table %s in %+v", name, man.Tables)
	return ""
}

// A dump with one byte changed is refused with one line: by its SHA-256;
// and, were the damage there before the checksum was taken, by pg_restore
// or by the rows. Neither reaches the live database.
func TestDumpAlteredByOneByteIsRefused(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	db, app, url := e.seeded(t)
	path, man := e.dumpTo(t, db)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	bad := filepath.Join(t.TempDir(), "bad.pgc")
	if err := os.WriteFile(bad, b, 0o600); err != nil {
		t.Fatal(err)
	}

	err = e.verify(t, bad, man)
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "SHA-256") || strings.Contains(err.Error(), "\n") {
		t.Errorf("verify of an altered dump: %v", err)
	}
	f, _ := os.Open(bad)
	defer f.Close()
	if err := e.m.Restore(context.Background(), db, f, man); !errors.Is(err, ErrDamaged) {
		t.Errorf("restore of an altered dump: %v", err)
	}
	if got := e.count(t, app, url, "SELECT count(*) FROM items;"); got != "3" {
		t.Errorf("the live database after a refused restore: %s items", got)
	}

	same := man
	same.SHA256 = sha256File(t, bad)
	err = e.verify(t, bad, same)
	if !errors.Is(err, ErrNotRestored) && !errors.Is(err, ErrMismatch) || strings.Contains(fmt.Sprint(err), "\n") {
		t.Errorf("verify of a dump damaged before its checksum: %v", err)
	}
	// Restored into the live server, it stops at pg_restore's error, before
	// the swap: the live rows stay, the half-restored database is dropped.
	f2, _ := os.Open(bad)
	defer f2.Close()
	if err := e.m.Restore(context.Background(), db, f2, same); !errors.Is(err, ErrNotRestored) {
		t.Errorf("restore of a dump damaged before its checksum: %v", err)
	}
	if got := e.count(t, app, url, "SELECT count(*) FROM items;"); got != "3" {
		t.Errorf("the live database after a failed restore: %s items", got)
	}
	if got := e.count(t, app, url, "SELECT count(*) FROM pg_database WHERE datname LIKE '%restoring';"); got != "0" {
		t.Errorf("half-restored databases left: %s", got)
	}
}

// A manifest that says otherwise than the dump is caught, naming the table.
func TestVerifyNamesTheTableThatDiffers(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	db, _, _ := e.seeded(t)
	path, man := e.dumpTo(t, db)
	wrong := man
	wrong.Tables = append([]Table{}, man.Tables...)
	for i := range wrong.Tables {
		if wrong.Tables[i].Name == "public.items" {
			wrong.Tables[i].Rows++
		}
	}
	err := e.verify(t, path, wrong)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "table public.items has 3 rows, 4 at dump time") {
		t.Errorf("a wrong count: %v", err)
	}
	if strings.Contains(err.Error(), "Order Lines") {
		t.Errorf("a table that matched was named: %v", err)
	}
	list, lerr := e.rt.List(context.Background())
	if lerr != nil {
		t.Fatal(lerr)
	}
	for _, in := range list {
		if in.Labels[LabelScratch] != "" {
			t.Errorf("scratch server %s left behind", in.Name)
		}
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// A dump whose destination fails (a full disk) ends with that error, and
// promptly: pg_dump is not left blocked on a stream nobody reads.
func TestDumpToAFailingWriterEnds(t *testing.T) {
	t.Parallel()
	e := newTestEnv(t)
	db, _, _ := e.seeded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := e.m.Dump(ctx, db, &fullDisk{room: 4096})
	if err == nil || !strings.Contains(err.Error(), "no space left") || ctx.Err() != nil {
		t.Fatalf("dump to a full disk: %v (ctx %v)", err, ctx.Err())
	}
	if _, man := e.dumpTo(t, db); len(man.Tables) != 3 {
		t.Errorf("the next dump: %+v", man)
	}
}

type fullDisk struct{ room int }

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.room {
		return 0, errors.New("write dump: no space left on device")
	}
	f.room -= len(p)
	return len(p), nil
}

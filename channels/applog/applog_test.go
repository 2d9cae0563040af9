package applog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func rec(i int, process string) Record {
	return Record{Time: time.Unix(1700000000+int64(i), 0).UTC(), Instance: "app-prod-1", Process: process,
		Stream: "stdout", Line: fmt.Sprintf("line %d", i), Boot: "b1", Seq: uint64(i)}
}

func open(t *testing.T, dir string, limit int64) *Store {
	t.Helper()
	s, err := Open(dir, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestReadFilters(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	for i := 1; i <= 10; i++ {
		p := "web"
		if i%2 == 0 {
			p = "worker"
		}
		if err := s.Append(7, rec(i, p)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Read(7, Filter{Process: "worker", Last: 3})
	if err != nil {
		t.Fatal(err)
	}
	if lines(got) != "line 6,line 8,line 10" {
		t.Errorf("last 3 of worker = %s", lines(got))
	}
	got, _ = s.Read(7, Filter{Since: time.Unix(1700000009, 0)})
	if lines(got) != "line 9,line 10" {
		t.Errorf("since = %s", lines(got))
	}
	if got, _ := s.Read(8, Filter{}); len(got) != 0 {
		t.Errorf("another installation has %d records", len(got))
	}
}

func lines(rs []Record) string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Line)
	}
	return strings.Join(out, ",")
}

// The two files never hold more than the limit, and the newest records are
// the ones kept.
func TestBoundedAndNewestKept(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 8<<10)
	for i := 1; i <= 2000; i++ {
		if err := s.Append(1, rec(i, "web")); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	for _, name := range []string{"1.log", "1.1.log"} {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		total += st.Size()
	}
	if total > 8<<10 || total < 4<<10 {
		t.Errorf("the logs take %d bytes, want between 4 and 8 KiB", total)
	}
	got, _ := s.Read(1, Filter{})
	if len(got) == 0 || got[len(got)-1].Line != "line 2000" || got[0].Seq < 1000 {
		t.Errorf("kept %d records from %v to %v", len(got), got[0].Line, got[len(got)-1].Line)
	}
}

// A reopened store knows how far each instance's logs were stored, and skips
// a line a crash cut short.
func TestCursorSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	s.Append(3, rec(1, "web"), rec(2, "web"))
	other := rec(9, "web")
	other.Instance, other.Boot = "app-prod-2", "b2"
	s.Append(3, other)
	s.Close()
	f, _ := os.OpenFile(filepath.Join(dir, "3.log"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"t":"2023-`)
	f.Close()

	s = open(t, dir, 0)
	if c, _ := s.Cursor(3, "app-prod-1"); c != (Cursor{Boot: "b1", Seq: 2}) {
		t.Errorf("cursor of app-prod-1 = %+v", c)
	}
	if c, _ := s.Cursor(3, "app-prod-2"); c != (Cursor{Boot: "b2", Seq: 9}) {
		t.Errorf("cursor of app-prod-2 = %+v", c)
	}
	if got, _ := s.Read(3, Filter{}); len(got) != 3 {
		t.Errorf("read %d records after the cut line, want 3", len(got))
	}
}

func TestFollowAndSlowFollower(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	ch, stop, err := s.Follow(5, Filter{Process: "web"})
	if err != nil {
		t.Fatal(err)
	}
	s.Append(5, rec(1, "worker"), rec(2, "web"))
	if r := <-ch; r.Line != "line 2" {
		t.Errorf("followed %q, want line 2 (the worker's line is filtered out)", r.Line)
	}
	for i := 0; i < followBuffer+10; i++ {
		s.Append(5, rec(100+i, "web"))
	}
	for i := 0; i < followBuffer; i++ {
		<-ch
	}
	s.Append(5, rec(5000, "web"))
	if r := <-ch; r.Stream != "event" || !strings.Contains(r.Line, "10 lines were dropped") {
		t.Errorf("after falling behind: %+v", r)
	}
	if r := <-ch; r.Line != "line 5000" {
		t.Errorf("then %q", r.Line)
	}
	stop()
	if _, ok := <-ch; ok {
		t.Error("channel still open after stop")
	}
	stop() // twice is fine
}

func TestRemove(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 0)
	s.Append(2, rec(1, "web"))
	if err := s.Remove(2); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "2.log")); !os.IsNotExist(err) {
		t.Errorf("2.log still there: %v", err)
	}
	if got, _ := s.Read(2, Filter{}); len(got) != 0 {
		t.Errorf("removed logs read back %d records", len(got))
	}
}

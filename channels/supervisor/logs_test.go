package supervisor

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readAll reads the logs after cur without following.
func readAll(t *testing.T, root string, cur Cursor) []Record {
	t.Helper()
	var recs []Record
	err := Logs(context.Background(), dial(t, root), cur, false, func(r Record) error {
		recs = append(recs, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func lines(recs []Record, process string) []string {
	var out []string
	for _, r := range recs {
		if r.Process == process {
			out = append(out, r.Line)
		}
	}
	return out
}

func TestLogsCursorReturnsOnlyNewerRecords(t *testing.T) {
	s, root := newTest(t, Options{})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "web", Command: "echo one; sleep 0.05; echo two >&2; sleep 0.05; echo three; exec sleep 100"}}})
	f.waitLine(t, 5*time.Second, "three")

	all := readAll(t, root, Cursor{})
	if got := strings.Join(lines(all, "web"), ","); got != "one,two,three" {
		t.Fatalf("web's lines %q", got)
	}
	for i, r := range all {
		if r.Boot != s.Boot() || (i > 0 && r.Seq != all[i-1].Seq+1) || r.Time.IsZero() {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	var two Record
	for _, r := range all {
		if r.Line == "two" {
			two = r
		}
	}
	if two.Stream != StreamStderr {
		t.Errorf("two on %s", two.Stream)
	}
	after := readAll(t, root, Cursor{Boot: s.Boot(), After: two.Seq})
	if len(after) == 0 || after[0].Line != "three" {
		t.Errorf("after two: %+v", after)
	}
	// A cursor of another boot reads everything of this one.
	if other := readAll(t, root, Cursor{Boot: "an-earlier-boot", After: two.Seq}); len(other) != len(all) && len(other) < len(all) {
		t.Errorf("other boot: %d records, want %d", len(other), len(all))
	}
}

func TestLogsFollowStreamsNewRecordsUntilCancelled(t *testing.T) {
	_, root := newTest(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan Record, 100)
	done := make(chan error, 1)
	go func() {
		done <- Logs(ctx, dial(t, root), Cursor{}, true, func(r Record) error { got <- r; return nil })
	}()
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "tick", Command: "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; done"}}})
	for want := 1; want <= 3; {
		select {
		case r := <-got:
			if r.Process == "tick" {
				if r.Line != "tick "+strconv.Itoa(want) {
					t.Fatalf("got %q, want tick %d", r.Line, want)
				}
				want++
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no ticks followed")
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("follow ended with %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("follow does not end with its context")
	}
}

func TestLogsSaysHowManyRecordsWereDropped(t *testing.T) {
	s, root := newTest(t, Options{RingRecords: 10})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "web", Command: "i=0; while [ $i -lt 50 ]; do i=$((i+1)); echo line $i; done; exec sleep 100"}}})
	f.waitLine(t, 5*time.Second, "line 50")

	recs := readAll(t, root, Cursor{Boot: s.Boot(), After: 5})
	if len(recs) != 11 {
		t.Fatalf("%d records, want the dropped event and 10", len(recs))
	}
	drop := recs[0]
	if drop.Stream != StreamEvent || drop.Process != EventProcess || drop.Seq != recs[1].Seq-1 {
		t.Errorf("drop record %+v", drop)
	}
	if want := strconv.Itoa(int(drop.Seq-5)) + " log records were dropped"; !strings.HasPrefix(drop.Line, want) {
		t.Errorf("drop line %q, want %q…", drop.Line, want)
	}
	if recs[10].Line != "line 50" {
		t.Errorf("last %q", recs[10].Line)
	}
	// A follower that fell behind was told, and its seqs still only grow.
	f.mu.Lock()
	defer f.mu.Unlock()
	told := false
	for i, r := range f.recs {
		if i > 0 && r.Seq <= f.recs[i-1].Seq {
			t.Errorf("seq %d after %d", r.Seq, f.recs[i-1].Seq)
		}
		told = told || strings.Contains(r.Line, "were dropped")
	}
	if n := len(lines(f.recs, "web")); n < 50 && !told {
		t.Errorf("follower has %d lines and no word of the others", n)
	}
}

func TestRingBoundsBytes(t *testing.T) {
	r := newRing("b", 1000, 1000)
	for i := 0; i < 100; i++ {
		r.add("web", StreamStdout, strings.Repeat("x", 100))
	}
	recs, oldest, _ := r.since(0)
	if len(recs)*(100+recordOverhead) > 1000 || len(recs) == 0 || oldest != recs[0].Seq || recs[len(recs)-1].Seq != 100 {
		t.Errorf("%d records kept, oldest %d", len(recs), oldest)
	}
}

func TestLongLinesAreCut(t *testing.T) {
	_, root := newTest(t, Options{})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "web", Command: "head -c 40000 /dev/zero | tr '\\0' a; echo; echo after; exec sleep 100"}}})
	f.waitLine(t, 5*time.Second, "after")
	web := lines(f.recs, "web")
	if len(web) != 2 || web[0] != strings.Repeat("a", MaxLogLine)+cutMark {
		t.Errorf("got %d lines, first %d bytes", len(web), len(web[0]))
	}
}

// A hostile supervisor cannot make the client hold an endless line.
func TestClientBoundsLines(t *testing.T) {
	client, server := net.Pipe()
	go func() {
		bufio.NewReader(server).ReadString('\n')
		w := bufio.NewWriter(server)
		for i := 0; i < 3<<20; i += 1 << 10 {
			if _, err := w.WriteString(strings.Repeat("a", 1<<10)); err != nil {
				return
			}
		}
		w.Flush()
		server.Close()
	}()
	_, err := Status(context.Background(), client)
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("got %v", err)
	}
	client.Close()
}

// The logs live in memory only: a follower must read a stop's story
// before the stream ends.
func TestFollowersReadTheShutdownBeforeTheStreamEnds(t *testing.T) {
	root, err := os.MkdirTemp("", "sup")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(root)
	s := New(Options{Root: root})
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { s.Run(ctx); close(ran) }()
	os.MkdirAll(root+"/app", 0o755)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "web", Command: "exec sleep 100"}}})
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- Logs(context.Background(), dial(t, root), Cursor{}, true, func(r Record) error {
			got = append(got, r.Line)
			return nil
		})
	}()
	time.Sleep(20 * time.Millisecond)
	cancel()
	<-ran
	if err := <-done; err != nil {
		t.Fatalf("stream ended with %v", err)
	}
	if last := got[len(got)-1]; last != "supervisor stopped" {
		t.Errorf("last line %q; all: %q", last, got)
	}
}

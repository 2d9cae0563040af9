package channels

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func testLog(t *testing.T) (*opLog, *store.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slipway.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	op, err := st.CreateOperation(context.Background(), store.Operation{Type: "execute", User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	return &opLog{hub: newLogHub(st), id: op.ID}, st, path
}

func TestALineWithoutEndIsCutNotHeld(t *testing.T) {
	l, st, _ := testLog(t)
	chunk := []byte(strings.Repeat("x", 64<<10))
	for i := 0; i < 320; i++ { // 20 MB, no newline
		l.Write(chunk)
		if l.buf.Cap() > 2*maxLogLine {
			t.Fatalf("after %d KiB the log holds a buffer of %d bytes", (i+1)*64, l.buf.Cap())
		}
	}
	l.Write([]byte("tail\nnext line\n"))
	l.Flush()
	lines, _ := st.Logs(context.Background(), l.id, 0, 0)
	if len(lines) != 2 {
		t.Fatalf("%d lines stored, want the cut line and the next", len(lines))
	}
	if got := lines[0].Text; len(got) > maxLogLine+len(cutMark) || !strings.HasSuffix(got, cutMark) {
		t.Fatalf("first line: %d bytes ending %q", len(got), got[len(got)-20:])
	}
	if lines[1].Text != "       next line" {
		t.Fatalf("second line %q", lines[1].Text)
	}
}

func TestALongLogKeepsItsTailAndSaysSo(t *testing.T) {
	l, st, path := testLog(t)
	line := strings.Repeat("y", 1000)
	var b strings.Builder
	const n = 11000 // 11 MB
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&b, "%06d %s\n", i, line)
		if i%100 == 0 {
			l.Write([]byte(b.String()))
			b.Reset()
		}
	}
	l.Logf("the end")
	l.Flush()
	ctx := context.Background()
	lines, err := st.Logs(ctx, l.id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var size int
	for _, x := range lines {
		size += len(x.Text)
	}
	if size > maxLogBytes {
		t.Fatalf("%d bytes stored, more than %d", size, maxLogBytes)
	}
	if first := lines[0]; first.Seq != 0 || !strings.Contains(first.Text, "lines (") || !strings.Contains(first.Text, "were dropped") {
		t.Fatalf("first line %q", first.Text)
	}
	if last := lines[len(lines)-1].Text; last != "the end" || !strings.HasPrefix(lines[len(lines)-2].Text, fmt.Sprintf("       %06d", n)) {
		t.Fatalf("the tail is not kept: %q", last)
	}
	// A follower from the start sees the notice once, then the lines.
	var followed []string
	st.FinishOperation(ctx, l.id, store.StatusSucceeded, "")
	l.hub.Follow(ctx, l.id, 0, func(x store.LogLine) error { followed = append(followed, x.Text); return nil })
	if len(followed) != len(lines) || followed[0] != lines[0].Text {
		t.Fatalf("follower read %d lines, the store holds %d", len(followed), len(lines))
	}
	// The WAL does not stay at the size of what was written.
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > 4<<20 {
		t.Fatalf("WAL is %d bytes after the operation", fi.Size())
	}
}

func TestLogPagesFromTheEnd(t *testing.T) {
	l, st, _ := testLog(t)
	for i := 1; i <= 25; i++ {
		l.Logf("line %d", i)
	}
	ctx := context.Background()
	page, more, err := st.LogTail(ctx, l.id, 0, 10)
	if err != nil || !more || len(page) != 10 || page[0].Text != "line 16" || page[9].Text != "line 25" {
		t.Fatalf("last page: %v %v %+v", more, err, page)
	}
	page, more, _ = st.LogTail(ctx, l.id, page[0].Seq, 10)
	if !more || page[0].Text != "line 6" {
		t.Fatalf("page before: %v %+v", more, page)
	}
	page, more, _ = st.LogTail(ctx, l.id, page[0].Seq, 10)
	if more || len(page) != 5 || page[0].Text != "line 1" {
		t.Fatalf("first page: %v %+v", more, page)
	}
}

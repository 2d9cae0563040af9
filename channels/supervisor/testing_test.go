package supervisor

import (
	"archive/tar"
	"bytes"
	"context"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// newTest runs a supervisor in-process (not as PID 1) on a fresh root
// with fast restarts, and stops it when the test ends. The root is short:
// a unix socket path must fit in 108 bytes.
func newTest(t *testing.T, opts Options) (*Supervisor, string) {
	t.Helper()
	root, err := os.MkdirTemp("", "sup")
	if err != nil {
		t.Fatal(err)
	}
	opts.Root = root
	if opts.BackoffMin == 0 {
		opts.BackoffMin = 20 * time.Millisecond
	}
	if opts.BackoffMax == 0 {
		opts.BackoffMax = 80 * time.Millisecond
	}
	if opts.StableAfter == 0 {
		opts.StableAfter = time.Hour
	}
	if opts.GiveUpAfter == 0 {
		opts.GiveUpAfter = -1 // the tests of restarts let them go on
	}
	if err := os.MkdirAll(root+"/app", 0o755); err != nil {
		t.Fatal(err)
	}
	s := New(opts)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = s.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		os.RemoveAll(root)
	})
	return s, root
}

func dial(t *testing.T, root string) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := DialRoot(ctx, root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func start(t *testing.T, root string, spec Spec) {
	t.Helper()
	if err := Start(context.Background(), dial(t, root), spec); err != nil {
		t.Fatalf("start: %v", err)
	}
}

func status(t *testing.T, root string) map[string]ProcessStatus {
	t.Helper()
	st, err := Status(context.Background(), dial(t, root))
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	m := map[string]ProcessStatus{}
	for _, p := range st.Processes {
		m[p.Name] = p
	}
	return m
}

// follower collects the log stream from the start of the boot.
type follower struct {
	mu   sync.Mutex
	recs []Record
	done chan error
}

func follow(t *testing.T, root string) *follower {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{done: make(chan error, 1)}
	conn := dial(t, root)
	go func() {
		f.done <- Logs(ctx, conn, Cursor{}, true, func(r Record) error {
			f.mu.Lock()
			f.recs = append(f.recs, r)
			f.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(cancel)
	return f
}

// wait returns the first record (from the start) for which match is true.
func (f *follower) wait(t *testing.T, timeout time.Duration, match func(Record) bool) Record {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		for _, r := range f.recs {
			if match(r) {
				f.mu.Unlock()
				return r
			}
		}
		f.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no such log record within %v; have:\n%s", timeout, f.dump())
	return Record{}
}

func (f *follower) waitLine(t *testing.T, timeout time.Duration, line string) Record {
	t.Helper()
	return f.wait(t, timeout, func(r Record) bool { return r.Line == line })
}

func (f *follower) events(prefix string) []Record {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Record
	for _, r := range f.recs {
		if r.Stream == StreamEvent && strings.HasPrefix(r.Line, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func (f *follower) dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, r := range f.recs {
		b.WriteString(r.Process + "/" + r.Stream + ": " + r.Line + "\n")
	}
	return b.String()
}

// entry is one tar entry for tarOf.
type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func tarOf(t *testing.T, entries ...entry) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Linkname: e.link, Size: int64(len(e.body))}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

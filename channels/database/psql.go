package database

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
)

// psqlArgv runs psql as the superuser over the instance's loopback, quiet,
// tuples only, unaligned, stopping at the first error; ~/.psqlrc ignored.
func psqlArgv(db string) []string {
	return []string{"psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-U", "postgres", "-d", db}
}

// psql runs sql in database db of the instance and returns its output
// lines. sql goes in on stdin, never on a command line.
func (m *Manager) psql(ctx context.Context, instance, db, sql string) ([]string, error) {
	var out, errs strings.Builder
	code, err := m.rt.ExecStreams(ctx, instance, psqlArgv(db), nil, strings.NewReader(sql), &out, &errs)
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("%w: %s", ErrServer, why(errs.String(), code))
	}
	return lines(out.String()), nil
}

// session is one psql kept open, for a transaction that must outlive a
// query (Dump's exported snapshot). Queries go in on stdin; each is
// followed by an \echo of a marker, so the reader knows where its output
// ends.
type session struct {
	in     *io.PipeWriter
	out    *bufio.Scanner
	errs   *lockedBuffer
	done   chan error // the exec's end: nil, or why psql failed
	result error
	once   sync.Once
}

const endMarker = "-- slipway: end of output --"

func (m *Manager) openSession(ctx context.Context, instance, db string) *session {
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	s := &session{in: inW, out: bufio.NewScanner(outR), errs: &lockedBuffer{}, done: make(chan error, 1)}
	s.out.Buffer(make([]byte, 64<<10), 1<<20)
	go func() {
		code, err := m.rt.ExecStreams(ctx, instance, psqlArgv(db), nil, inR, outW, s.errs)
		if err == nil && code != 0 {
			err = fmt.Errorf("%w: %s", ErrServer, why(s.errs.String(), code))
		}
		outW.CloseWithError(io.EOF)
		inR.CloseWithError(io.ErrClosedPipe)
		s.done <- err
	}()
	return s
}

// query sends sql and returns its output lines.
func (s *session) query(sql string) ([]string, error) {
	if _, err := io.WriteString(s.in, sql+"\n\\echo '"+endMarker+"'\n"); err != nil {
		return nil, s.failed()
	}
	var got []string
	for s.out.Scan() {
		if s.out.Text() == endMarker {
			return got, nil
		}
		got = append(got, s.out.Text())
	}
	return nil, s.failed()
}

// failed is why the session ended early.
func (s *session) failed() error {
	s.end()
	if s.result == nil {
		return fmt.Errorf("%w: psql ended early", ErrServer)
	}
	return s.result
}

// close ends the session after sql (COMMIT, say) and returns how psql
// ended.
func (s *session) close(sql string) error {
	if _, err := io.WriteString(s.in, sql+"\n\\q\n"); err != nil {
		return s.failed()
	}
	s.end()
	return s.result
}

// end closes psql's stdin (it then exits, rolling back what is open) and
// waits for it; safe to call more than once.
func (s *session) end() {
	s.once.Do(func() {
		s.in.Close()
		s.result = <-s.done
	})
}

// lockedBuffer is stderr of a command whose reader may look while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil // enough to say why
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// why is the line of a tool's stderr that says what went wrong (Postgres's
// "ERROR:"/"FATAL:", pg_restore's "error:"), else its last line, else the
// exit code.
func why(stderr string, code int) string {
	ls := lines(stderr)
	for _, l := range ls {
		for _, k := range []string{"ERROR:", "FATAL:", "error:", "PANIC:"} {
			if strings.Contains(l, k) {
				return cut(l)
			}
		}
	}
	if len(ls) > 0 {
		return cut(ls[len(ls)-1])
	}
	return fmt.Sprintf("exit status %d", code)
}

func cut(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// lines splits output into its non-empty lines.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			out = append(out, l)
		}
	}
	return out
}

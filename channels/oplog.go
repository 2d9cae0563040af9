package channels

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// logHub stores operation log lines and wakes followers. Followers read from
// the store, so a follower that joins late, or after a restart, sees the same
// log as one that was there from the start.
type logHub struct {
	store *store.Store
	mu    sync.Mutex
	wake  map[int64]chan struct{}
}

func newLogHub(s *store.Store) *logHub {
	return &logHub{store: s, wake: map[int64]chan struct{}{}}
}

// waiter returns a channel closed at the next change of operation id.
func (h *logHub) waiter(id int64) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch, ok := h.wake[id]
	if !ok {
		ch = make(chan struct{})
		h.wake[id] = ch
	}
	return ch
}

// notify wakes the followers of operation id.
func (h *logHub) notify(id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ch, ok := h.wake[id]; ok {
		close(ch)
		delete(h.wake, id)
	}
}

func (h *logHub) append(id int64, line string) {
	// The log is the user's record: write it even while the operation's
	// context is being cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := h.store.AppendLog(ctx, id, line); err == nil {
		h.notify(id)
	}
}

// Follow calls fn with every log line of operation id after seq `after`, and
// with each new one as it is written, until the operation ends or ctx is done.
// It returns the operation as it ended.
func (h *logHub) Follow(ctx context.Context, id, after int64, fn func(store.LogLine) error) (store.Operation, error) {
	for {
		wait := h.waiter(id)
		op, err := h.store.Operation(ctx, id)
		if err != nil {
			return store.Operation{}, err
		}
		lines, err := h.store.Logs(ctx, id, after)
		if err != nil {
			return op, err
		}
		for _, l := range lines {
			if err := fn(l); err != nil {
				return op, err
			}
			after = l.Seq
		}
		if op.Done() {
			return op, nil
		}
		select {
		case <-wait:
		case <-time.After(2 * time.Second): // a safety net against a missed wake-up
		case <-ctx.Done():
			return op, ctx.Err()
		}
	}
}

// opLog is the writer an operation's steps log through. Output of commands run
// in an instance is split into lines; partial lines are held until complete.
type opLog struct {
	hub     *logHub
	id      int64
	mu      sync.Mutex
	buf     bytes.Buffer
	secrets []string // values never written to the log, even when a command prints them
}

// hide adds secret values to redact from every later line.
func (l *opLog) hide(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		if len(v) >= 3 {
			l.secrets = append(l.secrets, v)
		}
	}
}

func (l *opLog) put(line string) {
	for _, v := range l.secrets {
		line = strings.ReplaceAll(line, v, "********")
	}
	l.hub.append(l.id, line)
}

// Logf writes one line.
func (l *opLog) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.put(fmt.Sprintf(format, args...))
}

// Write takes command output.
func (l *opLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	for {
		i := bytes.IndexByte(l.buf.Bytes(), '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(l.buf.Next(i+1)), "\r\n")
		l.put("       " + line)
	}
	return len(p), nil
}

// Flush writes a pending partial line.
func (l *opLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 {
		l.put("       " + strings.TrimRight(l.buf.String(), "\r\n"))
		l.buf.Reset()
	}
}

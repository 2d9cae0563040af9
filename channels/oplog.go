package channels

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

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

func (h *logHub) append(id int64, lines ...string) {
	// The log is the user's record: write it even while the operation's
	// context is being cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.store.AppendLogs(ctx, id, lines...); err == nil {
		h.notify(id)
	}
}

func (h *logHub) trim(id, keep int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.store.TrimLog(ctx, id, keep)
}

func (h *logHub) checkpoint() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	h.store.Checkpoint(ctx)
}

// Follow calls fn with every log line of operation id after seq `after`, and
// with each new one as it is written, until the operation ends or ctx is done.
// It returns the operation as it ended.
func (h *logHub) Follow(ctx context.Context, id, after int64, fn func(store.LogLine) error) (store.Operation, error) {
	noticed := after > 0
	for {
		wait := h.waiter(id)
		op, err := h.store.Operation(ctx, id)
		if err != nil {
			return store.Operation{}, err
		}
		lines, err := h.store.Logs(ctx, id, after, followBatch)
		if err != nil {
			return op, err
		}
		for _, l := range lines {
			if l.Seq == 0 { // the dropped-lines notice, shown once
				if noticed {
					continue
				}
				noticed = true
			}
			if err := fn(l); err != nil {
				return op, err
			}
			after = l.Seq
		}
		if len(lines) >= followBatch {
			continue // more are stored already
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

// Bounds of what an operation's log stores: a command that prints without
// end, or a line without a newline, must not fill the disk or the daemon's
// memory.
const (
	maxLogLine      = 16 << 10 // longer lines are cut
	maxLogBytes     = 10 << 20 // beyond this, the oldest lines are dropped...
	keepLog         = 8 << 20  // ...down to this much, so trimming is not done for every line
	checkpointAfter = 8 << 20  // the WAL is emptied after this much more log
	followBatch     = 1000     // lines a follower reads at a time
	cutMark         = " … (cut)"
)

// opLog is the writer an operation's steps log through. Output of commands run
// in an instance is split into lines; a partial line is held until complete,
// up to maxLogLine bytes.
type opLog struct {
	hub      *logHub
	id       int64
	mu       sync.Mutex
	buf      bytes.Buffer   // the start of a line not yet complete
	skipping bool           // the rest of an over-long line is being dropped
	secrets  redactor       // values never written to the log, even when a command prints them
	stored   int64          // bytes of this log stored, roughly
	unsynced int64          // bytes written since the last WAL checkpoint
	then     []func() error // work for after the operation's end (see afterwards)
}

// ID is the operation's.
func (l *opLog) ID() int64 { return l.id }

// afterwards registers work that runs once the operation has ended, still
// writing to its log: what nobody should wait for, such as draining and
// deleting the old instance and keeping the rollback image.
func (l *opLog) afterwards(fn func() error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.then = append(l.then, fn)
}

// hide adds secret values to redact from every later line.
func (l *opLog) hide(values ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range values {
		l.secrets.add(v)
	}
}

// put stores lines: redacted, cut to maxLogLine, and with the oldest lines
// dropped when the log grows past maxLogBytes.
func (l *opLog) put(lines ...string) {
	var size int64
	for i, line := range lines {
		line = l.secrets.redact(line)
		if len(line) > maxLogLine {
			line = cutLine(line)
		}
		lines[i] = line
		size += int64(len(line))
	}
	l.hub.append(l.id, lines...)
	l.stored += size
	l.unsynced += size
	if l.stored > maxLogBytes {
		l.hub.trim(l.id, keepLog)
		l.stored = keepLog
	}
	if l.unsynced > checkpointAfter {
		l.hub.checkpoint()
		l.unsynced = 0
	}
}

// cutLine shortens line to maxLogLine bytes (at a character boundary) and says so.
func cutLine(line string) string {
	end := maxLogLine
	for end > 0 && !utf8.RuneStart(line[end]) {
		end--
	}
	return line[:end] + cutMark
}

// Logf writes one line.
func (l *opLog) Logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.put(fmt.Sprintf(format, args...))
}

// Write takes command output. The complete lines of one write are stored
// together, in one transaction.
func (l *opLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	var lines []string
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if !l.skipping {
			if room := maxLogLine - l.buf.Len(); len(part) > room {
				l.buf.Write(part[:room])
				lines = append(lines, outputLine(l.buf.Bytes())+cutMark)
				l.buf.Reset()
				l.skipping = true
			} else {
				l.buf.Write(part)
			}
		}
		if i < 0 {
			break
		}
		if !l.skipping {
			lines = append(lines, outputLine(l.buf.Bytes()))
		}
		l.buf.Reset()
		l.skipping = false
		p = p[i+1:]
	}
	if len(lines) > 0 {
		l.put(lines...)
	}
	return n, nil
}

// outputLine is a line of command output as the log shows it.
func outputLine(b []byte) string {
	return "       " + strings.ToValidUTF8(strings.TrimRight(string(b), "\r"), "")
}

// Flush writes a pending partial line, and empties the WAL after a long log.
func (l *opLog) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 0 && !l.skipping {
		l.put(outputLine(l.buf.Bytes()))
	}
	l.buf.Reset()
	l.skipping = false
	if l.unsynced > 1<<20 {
		l.hub.checkpoint()
		l.unsynced = 0
	}
}

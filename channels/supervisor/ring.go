package supervisor

import (
	"fmt"
	"sync"
	"time"
)

// recordOverhead is what a record costs the ring beyond its line, so a
// flood of empty lines is bounded by bytes as well as by count.
const recordOverhead = 64

// ring keeps the most recent log records of this boot in memory. Logs are
// never written to the instance's disk: an app may print its secrets, and a
// full disk must not stop the app.
type ring struct {
	boot     string
	maxBytes int
	maxRecs  int
	now      func() time.Time

	mu     sync.Mutex
	recs   []Record // seqs contiguous, oldest first
	bytes  int
	next   uint64        // seq of the next record
	notify chan struct{} // closed and replaced on every append
}

func newRing(boot string, maxBytes, maxRecs int) *ring {
	return &ring{boot: boot, maxBytes: maxBytes, maxRecs: maxRecs, now: time.Now, next: 1, notify: make(chan struct{})}
}

func (r *ring) add(process, stream, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, Record{Seq: r.next, Time: r.now().UTC(), Process: process, Stream: stream, Line: line})
	r.next++
	r.bytes += len(line) + recordOverhead
	for len(r.recs) > 1 && (len(r.recs) > r.maxRecs || r.bytes > r.maxBytes) {
		r.bytes -= len(r.recs[0].Line) + recordOverhead
		r.recs[0] = Record{} // let the line go
		r.recs = r.recs[1:]
	}
	close(r.notify)
	r.notify = make(chan struct{})
}

// event adds a supervisor event.
func (r *ring) event(format string, args ...any) {
	r.add(EventProcess, StreamEvent, fmt.Sprintf(format, args...))
}

// since returns copies of the records with seq > after, the oldest retained
// seq (the next one when the ring is empty), and a channel closed on the
// next append.
func (r *ring) since(after uint64) ([]Record, uint64, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	oldest := r.next
	if len(r.recs) > 0 {
		oldest = r.recs[0].Seq
	}
	from := 0
	if after >= oldest {
		from = int(after - oldest + 1)
	}
	if from > len(r.recs) {
		from = len(r.recs)
	}
	return append([]Record(nil), r.recs[from:]...), oldest, r.notify
}

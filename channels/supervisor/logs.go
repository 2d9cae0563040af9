package supervisor

import (
	"bufio"
	"context"
	"io"
	"net"
)

// serveLogs streams the records after the client's cursor, and with
// follow the new ones until the client closes.
func (s *Supervisor) serveLogs(conn net.Conn, br *bufio.Reader, req request) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The client sends nothing more; a read returns when it closes.
	go func() { _, _ = io.Copy(io.Discard, br); cancel() }()

	after := req.After
	if req.Boot != s.boot {
		after = 0
	}
	recs, oldest, changed := s.ring.since(after)
	w := bufio.NewWriterSize(conn, 64<<10)
	if writeJSON(w, reply{Boot: s.boot, Oldest: &oldest}) != nil {
		return
	}
	final := false
	for {
		if after+1 < oldest {
			// What the client asked for is gone: say how much, and move its
			// cursor to the last record dropped.
			drop := Record{Seq: oldest - 1, Time: s.ring.now().UTC(), Process: EventProcess, Stream: StreamEvent,
				Line: itoa(int(oldest-1-after)) + " log records were dropped from the supervisor's memory before they were read"}
			if writeJSON(w, drop) != nil {
				return
			}
			after = drop.Seq
		}
		for _, r := range recs {
			if writeJSON(w, r) != nil {
				return
			}
			after = r.Seq
		}
		if w.Flush() != nil || !req.Follow || final {
			return
		}
		select {
		case <-changed:
		case <-s.quit:
			final = true // one last round, then end the stream
		case <-ctx.Done():
			return
		}
		recs, oldest, changed = s.ring.since(after)
	}
}

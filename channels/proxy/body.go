package proxy

import (
	"errors"
	"io"
	"math"
	"net/http"
	"os"
	"sync"
	"time"
)

// The slowest a request body may arrive at, Kestrel's MinRequestBodyDataRate: 240
// bytes/s on average once 5 s have passed. Without it, a client sending its body a
// byte at a time holds a client connection, a handler and an upstream connection for
// as long as it likes (slowloris on the body), and net/http has no such limit short of
// a total ReadTimeout, which would cut long uploads at a normal rate. 240 bytes/s is far
// below any real link (a poor mobile one gives some KB/s) and still makes holding a
// connection for T seconds cost a client 240*T bytes of body; the grace covers TCP slow
// start and a client's round trip for 100 Continue. Only the time spent waiting for the
// client counts: while the upstream is slow to read what it has been sent, the client
// is not to blame.
const (
	minBodyRate      = 240 // bytes per second
	minBodyRateGrace = 5 * time.Second
)

// bodyRate is a minimum request body data rate: after grace, bytesPerSecond on average.
type bodyRate struct {
	bytesPerSecond int64
	grace          time.Duration
}

var defaultBodyRate = bodyRate{bytesPerSecond: minBodyRate, grace: minBodyRateGrace}

// allowance is how long a client may have waited in all to have sent n bytes.
func (r bodyRate) allowance(n int64) time.Duration {
	const maxSeconds = math.MaxInt64 / int64(time.Second)
	s, rem := n/r.bytesPerSecond, n%r.bytesPerSecond
	if s >= maxSeconds {
		return math.MaxInt64
	}
	return max(r.grace, time.Duration(s)*time.Second+time.Duration(rem)*time.Second/time.Duration(r.bytesPerSecond))
}

// clientBody is a request body as the upstream's transport reads it. It remembers the
// error reading it failed with, so that forwarder.handleError can tell a client's
// fault (a malformed or cut chunked body, a hang-up, too slow a body) from the
// upstream's, and holds the client to p.bodyRate with a read deadline set before each
// read: no timer or goroutine of its own.
type clientBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	rate bodyRate

	// Only the goroutine reading the body uses these.
	n           int64         // bytes read
	waited      time.Duration // spent in Read, waiting for the client
	noDeadlines bool          // the connection does not take them (a foreign ResponseWriter)

	pre    []byte // read ahead by prefetch, not yet read by the transport
	preErr error

	mu    sync.Mutex // for finish and handleError, on the handler's goroutine
	ended bool       // read to its end, or failed
	err   error      // what reading failed with
}

func newClientBody(w http.ResponseWriter, body io.ReadCloser, rate bodyRate) *clientBody {
	return &clientBody{ReadCloser: body, rc: http.NewResponseController(w), rate: rate}
}

// prefetchSize is what prefetch reads ahead at most: enough for the first chunk of most
// malformed bodies to show.
const prefetchSize = 1 << 10

// prefetch reads the first bytes of the body before the upstream is asked. A body that
// fails there (a malformed first chunk, a client gone or too slow) is refused with
// nothing sent on; one that fails later cuts a request the upstream has started
// reading, which a stream cannot help.
func (b *clientBody) prefetch() error {
	buf := make([]byte, prefetchSize)
	n, err := b.readClient(buf)
	if err != nil && err != io.EOF {
		return err
	}
	b.pre, b.preErr = buf[:n], err
	return nil
}

func (b *clientBody) Read(p []byte) (int, error) {
	if len(b.pre) > 0 {
		n := copy(p, b.pre)
		b.pre = b.pre[n:]
		return n, nil
	}
	if b.preErr != nil {
		return 0, b.preErr
	}
	return b.readClient(p)
}

func (b *clientBody) readClient(p []byte) (int, error) {
	start := time.Now()
	b.setDeadline(start.Add(b.rate.allowance(b.n) - b.waited))
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	b.waited += time.Since(start)
	if err != nil {
		b.end(err)
	}
	return n, err
}

// end records how reading ended. At the end of the body the deadline is lifted at once:
// net/http then starts reading the connection ahead, for the next request, and would
// cancel this one if that read met the deadline while the upstream answers.
func (b *clientBody) end(err error) {
	if err == io.EOF {
		b.setDeadline(time.Time{})
		err = nil
	}
	b.mu.Lock()
	if !b.ended {
		b.ended, b.err = true, err
	}
	b.mu.Unlock()
}

func (b *clientBody) setDeadline(t time.Time) {
	if b.noDeadlines {
		return
	}
	if errors.Is(b.rc.SetReadDeadline(t), http.ErrNotSupported) {
		b.noDeadlines = true
	}
}

// readErr returns the error reading the body failed with, or nil.
func (b *clientBody) readErr() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}

// finish is called when the handler is done with the request. What the upstream did not
// read of the body, net/http reads and discards after the handler, and it must not do so
// forever for a slow client either: that read gets the grace period.
func (b *clientBody) finish() {
	b.mu.Lock()
	ended := b.ended
	b.mu.Unlock()
	if !ended {
		// rc directly: a read of the transport's may still be in flight, and the
		// fields it uses are its own.
		b.rc.SetReadDeadline(time.Now().Add(b.rate.grace))
	}
}

// tooSlow reports whether err is a body read that met its deadline.
func tooSlow(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

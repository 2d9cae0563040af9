package supervisor

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Options configure a Supervisor. The zero value is PID 1's in an
// instance; tests set a temporary Root and short durations.
type Options struct {
	Root   string // where /app and /run/slipway are; default "/"
	Socket string // default Root/run/slipway/supervisor.sock
	Shell  string // default /bin/sh; without it commands are split into words
	// ReapAll reaps every child (Wait4(-1)), as PID 1 must. Off, only the
	// processes the supervisor started are waited for.
	ReapAll bool

	Grace       time.Duration // TERM to KILL when the spec gives none; default 10 s
	BackoffMin  time.Duration // first restart delay; default 1 s
	BackoffMax  time.Duration // default 30 s
	StableAfter time.Duration // a run this long resets the backoff; default 60 s
	// GiveUpAfter is how many restarts in a row without a stable run make
	// the supervisor give up and stop, which stops the instance: the daemon
	// then replaces it with a fresh one (a heal). Default 10 (about four
	// minutes of crashes, given the backoff); below 0, never.
	GiveUpAfter int
	RingBytes   int // default 4 MiB
	RingRecords int // default 20,000

	Logger *slog.Logger // the supervisor's own diagnostics (the console)
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Grace, 10*time.Second)
	def(&o.BackoffMin, time.Second)
	def(&o.BackoffMax, 30*time.Second)
	def(&o.StableAfter, 60*time.Second)
	if o.GiveUpAfter == 0 {
		o.GiveUpAfter = 10
	}
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Socket == "" {
		o.Socket = filepath.Join(o.Root, SocketPath)
	}
	if o.Shell == "" {
		o.Shell = "/bin/sh"
	}
	if o.RingBytes <= 0 {
		o.RingBytes = 4 << 20
	}
	if o.RingRecords <= 0 {
		o.RingRecords = 20000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Supervisor runs an instance's processes and serves the control socket.
type Supervisor struct {
	opts   Options
	shell  string
	log    *slog.Logger
	boot   string
	ring   *ring
	reaper *reaper

	startMu sync.Mutex // one start, or the shutdown, at a time

	mu       sync.Mutex
	procs    map[string]*process
	execs    map[int]struct{}      // process groups of running execs
	open     map[net.Conn]struct{} // connections, closed at shutdown
	stopping bool

	ln    net.Listener
	conns sync.WaitGroup
	quit  chan struct{} // closed once every process has stopped

	gaveUp     chan struct{} // closed when a process is given up on: Run ends
	giveUpOnce sync.Once
}

// giveUp ends Run: a process kept crashing (see Options.GiveUpAfter).
func (s *Supervisor) giveUp() { s.giveUpOnce.Do(func() { close(s.gaveUp) }) }

// GaveUp is closed once the supervisor gave up on a process.
func (s *Supervisor) GaveUp() <-chan struct{} { return s.gaveUp }

// New makes a supervisor with a fresh boot id; Listen and Run start it.
func New(opts Options) *Supervisor {
	opts.defaults()
	var b [8]byte
	_, _ = rand.Read(b[:])
	boot := hex.EncodeToString(b[:])
	return &Supervisor{
		opts: opts, shell: opts.Shell, log: opts.Logger, boot: boot,
		ring:   newRing(boot, opts.RingBytes, opts.RingRecords),
		reaper: newReaper(opts.ReapAll),
		procs:  map[string]*process{}, execs: map[int]struct{}{}, open: map[net.Conn]struct{}{},
		quit: make(chan struct{}), gaveUp: make(chan struct{}),
	}
}

// Boot is this run's random id, the first field of every logs reply.
func (s *Supervisor) Boot() string { return s.boot }

// path maps a path inside the instance to where it is for this supervisor.
func (s *Supervisor) path(p string) string { return filepath.Join(s.opts.Root, filepath.Clean("/"+p)) }

// Listen binds the control socket (0600, in a 0700 directory when it makes
// one), replacing a stale one.
func (s *Supervisor) Listen() error {
	if err := os.MkdirAll(filepath.Dir(s.opts.Socket), 0o700); err != nil {
		return err
	}
	_ = os.Remove(s.opts.Socket)
	ln, err := net.Listen("unix", s.opts.Socket)
	if err != nil {
		return err
	}
	if err := os.Chmod(s.opts.Socket, 0o600); err != nil {
		ln.Close()
		return err
	}
	s.ln = ln
	return nil
}

// Run serves the socket (calling Listen if needed) until ctx ends, then
// stops every process and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	reapStop := make(chan struct{})
	reaped := make(chan struct{})
	go func() { s.reaper.run(reapStop); close(reaped) }()
	s.ring.event("supervisor started (boot %s)", s.boot)
	accepted := make(chan struct{})
	go func() { s.accept(); close(accepted) }()

	select {
	case <-ctx.Done():
	case <-s.gaveUp:
	}
	s.shutdown()
	s.ln.Close()
	<-accepted
	// Followers get the records of the shutdown before their stream ends:
	// the logs die with the instance, so the stop's story is read now or never.
	close(s.quit)
	served := make(chan struct{})
	go func() { s.conns.Wait(); close(served) }()
	select {
	case <-served:
	case <-time.After(time.Second):
	}
	s.closeConns()
	s.conns.Wait()
	close(reapStop)
	<-reaped
	return nil
}

func (s *Supervisor) accept() {
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("Accept on the control socket", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.open[conn] = struct{}{}
		s.mu.Unlock()
		s.conns.Add(1)
		go func() {
			defer s.conns.Done()
			s.handle(conn)
			s.mu.Lock()
			delete(s.open, conn)
			s.mu.Unlock()
		}()
	}
}

func (s *Supervisor) closeConns() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.open {
		c.Close()
	}
}

// handle serves one request.
func (s *Supervisor) handle(conn net.Conn) {
	defer conn.Close()
	br := bufio.NewReaderSize(conn, 64<<10)
	// A client that never finishes its request must not hold a goroutine forever.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := readLine(br, MaxLine)
	if err != nil {
		writeJSON(conn, reply{Error: "read request: " + oneLine(err.Error())})
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeJSON(conn, reply{Error: "bad request: " + oneLine(err.Error())})
		return
	}
	switch req.Op {
	case "deliver":
		err = s.serveDeliver(conn, br)
	case "start":
		err = s.serveStart(req.Spec)
	case "logs":
		s.serveLogs(conn, br, req)
		return
	case "exec":
		s.serveExec(conn, br, req)
		return
	case "status":
		writeJSON(conn, s.status())
		return
	default:
		err = fmt.Errorf("unknown op %q", oneLine(req.Op))
	}
	if err != nil {
		writeJSON(conn, reply{Error: oneLine(err.Error())})
		return
	}
	writeJSON(conn, reply{OK: true})
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func (s *Supervisor) status() StatusReport {
	s.mu.Lock()
	procs := make([]*process, 0, len(s.procs))
	for _, p := range s.procs {
		procs = append(procs, p)
	}
	s.mu.Unlock()
	st := StatusReport{Boot: s.boot, Processes: []ProcessStatus{}}
	for _, p := range procs {
		st.Processes = append(st.Processes, p.status())
	}
	sortStatus(st.Processes)
	return st
}

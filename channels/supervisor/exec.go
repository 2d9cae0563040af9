package supervisor

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// serveExec runs a one-off command, streaming its merged output, then its
// exit code. The client closing the connection kills the command's group.
func (s *Supervisor) serveExec(conn net.Conn, br *bufio.Reader, req request) {
	pid, exit, out, err := s.startExec(req)
	if err != nil {
		writeJSON(conn, reply{Error: oneLine(err.Error())})
		return
	}
	defer s.forgetExec(pid)
	gone := make(chan struct{})
	go func() {
		// Nothing more is sent; EOF or an error means the client went away.
		_, _ = io.Copy(io.Discard, br)
		close(gone)
	}()
	chunks := make(chan []byte)
	go readChunks(out, chunks)

	var code int
	exited := false
	for !exited || chunks != nil {
		select {
		case b, ok := <-chunks:
			if !ok {
				chunks = nil
				continue
			}
			if writeJSON(conn, reply{Data: b}) != nil {
				killGroup(pid, syscall.SIGKILL)
			}
		case ws := <-exit:
			exited, exit, code = true, nil, exitCode(ws)
			// Whatever the command left behind goes with it, and a child that
			// escaped its group must not hold the output open forever.
			killGroup(pid, syscall.SIGKILL)
			_ = out.SetReadDeadline(time.Now().Add(time.Second))
		case <-gone:
			killGroup(pid, syscall.SIGKILL)
			gone = nil
		}
	}
	if gone != nil {
		writeJSON(conn, reply{Exit: &code})
	}
}

func (s *Supervisor) startExec(req request) (int, <-chan unix.WaitStatus, *os.File, error) {
	if len(req.Argv) == 0 {
		return 0, nil, nil, errors.New("exec without argv")
	}
	if err := checkEnv(req.Env); err != nil {
		return 0, nil, nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return 0, nil, nil, err
	}
	defer w.Close()
	// Under s.mu, so a shutdown either sees this exec or refuses it.
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		r.Close()
		return 0, nil, nil, errStopping
	}
	c := command{argv: req.Argv, env: envList(req.Env), dir: s.path(cmp(req.Dir, "/app")), stdout: w, stderr: w}
	pid, exit, err := s.start(c)
	if err != nil {
		r.Close()
		return 0, nil, nil, err
	}
	s.execs[pid] = struct{}{}
	return pid, exit, r, nil
}

func (s *Supervisor) forgetExec(pid int) {
	s.mu.Lock()
	delete(s.execs, pid)
	s.mu.Unlock()
}

// readChunks sends what r gives, in order, and closes ch and r at EOF (or
// at the read deadline).
func readChunks(r *os.File, ch chan<- []byte) {
	defer close(ch)
	defer r.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			ch <- append([]byte(nil), buf[:n]...)
		}
		if err != nil {
			return
		}
	}
}

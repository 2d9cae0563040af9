package supervisor

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// reaper owns waiting for children. A supervised process's exit status
// must reach its supervisor, yet PID 1 must also reap every orphan that is
// reparented to it; both go through one Wait4 loop, under a lock that
// spawn also holds from fork until the pid is registered, so no exit can
// be reaped before someone is waiting for it.
//
// With all unset (not PID 1, e.g. in tests) it waits only for the pids it
// registered, so it never steals the status of a child someone else (an
// os/exec in the same test binary) waits for.
type reaper struct {
	all bool

	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
}

func newReaper(all bool) *reaper {
	return &reaper{all: all, waiting: map[int]chan unix.WaitStatus{}}
}

// run reaps on every SIGCHLD until stop is closed. The ticker is a safety
// net only: SIGCHLDs coalesce, but one Wait4 loop drains them all.
func (r *reaper) run(stop <-chan struct{}) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-sig:
		case <-tick.C:
		}
		r.reap()
	}
}

func (r *reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.all {
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
			if err == unix.EINTR {
				continue
			}
			if pid <= 0 || err != nil {
				return
			}
			r.deliver(pid, ws)
		}
	}
	for pid := range r.waiting {
		var ws unix.WaitStatus
		if got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil); err == nil && got == pid {
			r.deliver(pid, ws)
		}
	}
}

func (r *reaper) deliver(pid int, ws unix.WaitStatus) {
	if ch, ok := r.waiting[pid]; ok {
		delete(r.waiting, pid)
		ch <- ws // buffered, one send per pid
	}
}

// spawn runs start (a fork/exec) and registers the pid it returns; the
// channel gets its exit status.
func (r *reaper) spawn(start func() (int, error)) (int, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := start()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[pid] = ch
	return pid, ch, nil
}

// exitString says how a process ended, as status and events show it.
func exitString(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by signal " + itoa(int(ws.Signal()))
	}
	return "status " + itoa(ws.ExitStatus())
}

// exitCode is a shell's view of ws: the status, or 128+signal.
func exitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

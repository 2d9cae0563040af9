package container

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"

	"golang.org/x/sys/unix"
)

// How slipway reaches an app inside an instance.
//
// Incus's own answer is a proxy device per instance (listen on a host port,
// connect to 127.0.0.1:PORT inside), but incusd waits for each proxy helper
// with a fixed one-second sleep, so every device costs at least a second to
// come up: that alone would break the one-second push-to-live target. The
// daemon runs as root on the incusd host, so it does what Incus's forkproxy
// does itself: enter the network namespace of the instance's init process on
// one locked OS thread, create and connect the socket there, and switch the
// thread back. A socket belongs to the namespace it was created in for its
// whole life, so the connection keeps working from any goroutine. A GET
// through it costs a few milliseconds.
//
// Dial is the only way the rest of slipway reaches an instance, so another
// mode (a proxy device, or a bridge and the instance's address) can be added
// behind it.

// netns is what Dial caches per instance: its init's pid and the inode of
// that pid's network namespace, which tells a live pid from a reused one.
type netns struct {
	pid int64
	ino uint64
}

// errStale: the cached pid no longer names the instance's namespace.
var errStale = errors.New("stale network namespace")

// Dial connects to 127.0.0.1:port inside the instance's network namespace.
func (c *Incus) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	if port <= 0 || port > 65535 {
		return nil, fmt.Errorf("dial %s: bad port %d", name, port)
	}
	if r, err := c.relayFor(name); err != nil || r != nil {
		if err != nil {
			return nil, err
		}
		return r.Dial(ctx, name, port)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	for attempt := 0; ; attempt++ {
		ns, err := c.netns(name, attempt > 0)
		if err != nil {
			return nil, fmt.Errorf("dial %s in %s: %w", addr, name, err)
		}
		conn, err := dialIn(ctx, ns, addr)
		if errors.Is(err, errStale) && attempt == 0 {
			continue // the instance restarted: ask Incus again, once
		}
		if err != nil {
			return nil, fmt.Errorf("dial %s in %s: %w", addr, name, err)
		}
		return conn, nil
	}
}

// netns returns the cached namespace of name's init, asking Incus for the pid
// when there is none or refresh is set.
func (c *Incus) netns(name string, refresh bool) (netns, error) {
	c.mu.Lock()
	ns, ok := c.nets[name]
	c.mu.Unlock()
	if ok && !refresh {
		return ns, nil
	}
	pid, err := c.InitPID(name)
	if err != nil {
		return netns{}, err
	}
	var st unix.Stat_t
	if err := unix.Stat(nsPath(pid), &st); err != nil {
		return netns{}, fmt.Errorf("%w: %v", ErrNotRunning, err)
	}
	ns = netns{pid: pid, ino: st.Ino}
	c.mu.Lock()
	c.nets[name] = ns
	c.mu.Unlock()
	return ns, nil
}

func (c *Incus) forget(name string) {
	c.mu.Lock()
	delete(c.nets, name)
	c.mu.Unlock()
}

func nsPath(pid int64) string { return "/proc/" + strconv.FormatInt(pid, 10) + "/ns/net" }

// dialIn dials addr (TCP) from inside the network namespace ns.
func dialIn(ctx context.Context, ns netns, addr string) (net.Conn, error) {
	target, err := os.Open(nsPath(ns.pid))
	if err != nil {
		return nil, errStale
	}
	defer target.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil || st.Ino != ns.ino {
		return nil, errStale
	}

	type result struct {
		conn net.Conn
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		// setns changes the calling thread only. Locked, this goroutine
		// is the only one that runs on the thread while it is in the
		// instance's namespace.
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("open own network namespace: %w", err)}
			return
		}
		defer home.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("enter network namespace of pid %d: %w", ns.pid, err)}
			return
		}
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp4", addr)
		if serr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); serr != nil {
			// The thread is stuck in the instance's namespace. Stay
			// locked: when a goroutine exits while locked, the runtime
			// ends its thread instead of reusing it for other code.
			ch <- result{conn: conn, err: err}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{conn: conn, err: err}
	}()
	r := <-ch
	return r.conn, r.err
}

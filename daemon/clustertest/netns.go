package clustertest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// holder is the first process of a set of namespaces the harness made: the
// namespaces live as long as it does. It runs a shell script that prints
// "ready" once the namespaces are set up and may then wait for a line on its
// stdin before going on.
type holder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	exited chan struct{}
}

// startHolder runs script under /bin/sh in fresh namespaces (flags are
// CLONE_NEW* bits) and waits for it to print "ready".
func startHolder(script string, flags uintptr, env []string, stderr io.Writer) (*holder, error) {
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: flags,
		// If the test binary dies without running its cleanups (a -timeout
		// panic, a kill), the holders die with it, and as each is the init
		// of its PID namespace everything inside goes too.
		Pdeathsig: syscall.SIGKILL,
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &holder{cmd: cmd, stdin: in, stdout: bufio.NewReader(out), exited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(h.exited) }()
	if err := h.expect("ready", 20*time.Second); err != nil {
		h.kill()
		return nil, err
	}
	return h, nil
}

// expect reads the holder's next stdout line and checks it is want.
func (h *holder) expect(want string, patience time.Duration) error {
	got := make(chan string, 1)
	go func() {
		line, _ := h.stdout.ReadString('\n')
		got <- strings.TrimSpace(line)
	}()
	select {
	case line := <-got:
		if line != want {
			return fmt.Errorf("namespace holder said %q, not %q (it may have failed: see its log)", line, want)
		}
		return nil
	case <-time.After(patience):
		return fmt.Errorf("namespace holder did not say %q within %s", want, patience)
	}
}

func (h *holder) pid() int { return h.cmd.Process.Pid }

// netns is the path of the holder's network namespace. /proc/PID/ns/net
// needs no bind mount, so nothing of it can outlive the holder.
func (h *holder) netns() string { return fmt.Sprintf("/proc/%d/ns/net", h.pid()) }

// kill ends the holder and waits for it. For a PID namespace's init the
// kernel then kills every other process in that namespace.
func (h *holder) kill() {
	_ = h.cmd.Process.Kill()
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
	}
}

// childOf returns the PID of a child of parent whose command name is comm,
// as the host's PID namespace numbers it.
func childOf(parent int, comm string, patience time.Duration) (int, error) {
	deadline := time.Now().Add(patience)
	for {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
			if err != nil {
				continue
			}
			// The comm field is in parentheses and may hold spaces: split
			// after its closing one.
			s := string(stat)
			open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
			if open < 0 || close < open {
				continue
			}
			f := strings.Fields(s[close+1:])
			if len(f) > 1 && s[open+1:close] == comm && f[1] == strconv.Itoa(parent) {
				return pid, nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no %s child of PID %d", comm, parent)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// NetNSCommand returns a command that runs name inside the network namespace
// at path (nsenter joins it before exec, the way `ip netns exec` does, but
// without a name under /run/netns and without remounting /sys).
func NetNSCommand(ctx context.Context, netns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "nsenter", append([]string{"--net=" + netns, "--", name}, args...)...)
}

// runIn runs a command inside netns and returns an error that carries its
// output when it fails.
func runIn(netns string, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := NetNSCommand(ctx, netns, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s (in %s): %w: %s", name, strings.Join(args, " "), netns, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// InNetNS runs fn on an OS thread that has joined the network namespace at
// path. Sockets fn opens belong to that namespace and stay there after fn
// returns, so a listener or connection made inside can be used from
// anywhere in the test.
func InNetNS(path string, fn func() error) error {
	target, err := os.Open(path)
	if err != nil {
		return err
	}
	defer target.Close()
	errc := make(chan error, 1)
	// A fresh goroutine, locked to its thread for its whole life: if the
	// switch back fails the thread is thrown away rather than reused in the
	// wrong namespace.
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the goroutine exits and the runtime ends the thread.
			errc <- errors.Join(ferr, fmt.Errorf("setns back: %w", err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// DialIn opens a connection from inside the network namespace at path.
func DialIn(ctx context.Context, path, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNetNS(path, func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// ListenIn opens a listener inside the network namespace at path.
func ListenIn(path, network, addr string) (net.Listener, error) {
	var l net.Listener
	err := InNetNS(path, func() error {
		var err error
		l, err = net.Listen(network, addr)
		return err
	})
	return l, err
}

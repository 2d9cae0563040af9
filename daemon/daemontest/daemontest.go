// Package daemontest runs the real slipway binary the way the integration
// tests and slipway-bench need it: its own data directory, Incus project and
// loopback ports, its log kept, stopped by its PID, and its project removed
// afterwards. It returns errors rather than failing a test, so the bench,
// which is no test, uses it too.
package daemontest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// Options say how to run one daemon.
type Options struct {
	Binary   string    // the slipway binary
	Data     string    // its data directory
	Project  string    // its Incus project
	AdminKey string    // the first admin's public key file
	Env      []string  // its whole environment
	Flags    []string  // more `serve` flags, after those that put it on loopback
	Log      io.Writer // receives its log, line by line
}

// Daemon is one running slipway.
type Daemon struct {
	Addrs  map[string]string // bound addresses by name: ssh, proxy, https, web, metrics
	cmd    *exec.Cmd
	exited chan struct{}
}

// ReadyTimeout bounds how long Start waits for the daemon to listen.
const ReadyTimeout = 60 * time.Second

var running = regexp.MustCompile(`msg="slipway is running" ssh=(\S+) proxy=(\S+) web=(\S+) metrics=(\S+)(?: https=(\S*))?`)

// Start runs the daemon and returns once it listens.
func Start(ctx context.Context, o Options) (*Daemon, error) {
	args := append([]string{"serve", "--data", o.Data, "--incus-project", o.Project, "--admin-key", o.AdminKey,
		"--ssh-addr", "127.0.0.1:0", "--web-addr", "127.0.0.1:0", "--proxy-addr", "127.0.0.1:0", "--https-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, o.Flags...)
	d := &Daemon{cmd: exec.Command(o.Binary, args...), exited: make(chan struct{})}
	d.cmd.Env = o.Env
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Binary, err)
	}
	ready := make(chan map[string]string, 1)
	go func() {
		defer close(d.exited)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if o.Log != nil {
				fmt.Fprintln(o.Log, line)
			}
			if m := running.FindStringSubmatch(line); m != nil {
				ready <- map[string]string{"ssh": m[1], "proxy": m[2], "web": m[3], "metrics": m[4], "https": m[5]}
			}
		}
		d.cmd.Wait()
	}()
	select {
	case d.Addrs = <-ready:
		return d, nil
	case <-d.exited:
		return nil, fmt.Errorf("the daemon exited before it was ready")
	case <-time.After(ReadyTimeout):
		d.Stop(syscall.SIGKILL, time.Minute)
		return nil, fmt.Errorf("the daemon was not ready after %s", ReadyTimeout)
	case <-ctx.Done():
		d.Stop(syscall.SIGKILL, time.Minute)
		return nil, ctx.Err()
	}
}

// PID is the daemon's process ID.
func (d *Daemon) PID() int { return d.cmd.Process.Pid }

// Alive reports whether the daemon still runs.
func (d *Daemon) Alive() bool {
	select {
	case <-d.exited:
		return false
	default:
		return true
	}
}

// Stop sends sig to the daemon (by its PID, ours until it is waited for) and
// waits; after patience it is killed.
func (d *Daemon) Stop(sig syscall.Signal, patience time.Duration) {
	if !d.Alive() {
		return
	}
	d.cmd.Process.Signal(sig)
	select {
	case <-d.exited:
	case <-time.After(patience):
		d.cmd.Process.Kill()
		<-d.exited
	}
}

// Exited is closed once the daemon has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.exited }

// DeleteProject removes an Incus project and all the daemon made in it.
func DeleteProject(project string) error {
	rt, err := container.Connect(project, "", slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer rt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return rt.DeleteProject(ctx)
}

// SSHOptions make ssh use one key only and no known_hosts (every daemon has
// a new host key), and never ask anything.
func SSHOptions(key string) []string {
	return []string{"-i", key, "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
}

// SSHArgs are the ssh arguments that reach the daemon's SSH server as key.
func (d *Daemon) SSHArgs(key string) []string {
	host, port, _ := strings.Cut(d.Addrs["ssh"], ":")
	return append(append([]string{"-p", port}, SSHOptions(key)...), "git@"+host)
}

// LogBuffer is a log writer that can be read while the daemon writes it.
type LogBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Build builds slipway and, beside it (where the daemon looks for it), the
// static supervisor every instance runs as init, into dir.
func Build(dir string) error {
	for _, b := range []struct {
		pkg string
		env []string
	}{
		{"github.com/slipway-dev/slipway/daemon/cmd/slipway", nil},
		{"github.com/slipway-dev/slipway/daemon/cmd/slipway-supervisor", []string{"CGO_ENABLED=0"}},
	} {
		cmd := exec.Command("go", "build", "-o", dir+"/", b.pkg)
		cmd.Env = append(os.Environ(), b.env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// StopProxy stops the proxy process the daemon with data directory data
// started (it outlives the daemon by design), found by its pid file and
// checked to be that proxy before it is signalled.
func StopProxy(data string, patience time.Duration) error {
	pidFile := frontproxy.PathsIn(frontproxy.DirIn(data)).PID
	pid, err := frontproxy.ReadPID(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !isProxyOf(pid, data) {
		return nil // gone, and its pid taken by another process
	}
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(patience)
	for isProxyOf(pid, data) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(patience)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// isProxyOf says whether pid is a live `slipway proxy --data data`.
func isProxyOf(pid int, data string) bool {
	if !frontproxy.Running(pid) {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 1 && args[1] == "proxy" && strings.Contains(string(cmdline), "\x00"+data+"\x00")
}

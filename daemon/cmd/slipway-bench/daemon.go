package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/daemon/daemontest"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// daemon is the slipway daemon under test: the real binary, started with its
// own data dir, Incus project and loopback ports (see daemontest, which the
// integration tests use too).
type daemon struct {
	proc    *daemontest.Daemon
	pid     int
	project string
	data    string
	key     string // the admin's private key
	ssh     string // host:port of its SSH server
	proxy   string // host:port of its front proxy
	client  *http.Client
	opts    daemontest.Options // how it was started, for restarts
}

// runtime connects to the daemon's Incus project with the supervisor the
// daemon installed, for the probes that work on its instances directly.
func (d *daemon) runtime() (*container.Incus, error) {
	return container.Connect(d.project, filepath.Join(d.data, "supervisor"), slog.New(slog.DiscardHandler))
}

func startDaemon(ctx context.Context, b *bench) (*daemon, error) {
	d := &daemon{
		project: "slipway-bench-" + randomHex(4),
		data:    filepath.Join(b.tmp, "data"),
		key:     filepath.Join(b.tmp, "admin_key"),
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
		},
	}
	if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d.key).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %v: %s", err, out)
	}
	// The project is removed even when the daemon never starts: it creates
	// the project as soon as it connects to Incus.
	b.onCleanup(func() { d.deleteProject() })

	logPath := filepath.Join(b.cfg.OutDir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	b.onCleanup(func() { logf.Close() })
	d.opts = daemontest.Options{
		Binary: b.cfg.Slipway, Data: d.data, Project: d.project, AdminKey: d.key + ".pub", Env: cleanEnv(),
		// No per-address cap: the load generators are one address with up
		// to 1000 requests in flight, and nginx, compared with, has none.
		Flags: []string{"--max-parallel", strconv.Itoa(b.cfg.MaxParallel), "--log-level", "info", "--proxy-max-conns-per-ip", "0"},
		Log:   logf,
	}
	d.proc, err = daemontest.Start(ctx, d.opts)
	if err != nil {
		return nil, fmt.Errorf("%w; see %s", err, logPath)
	}
	b.onCleanup(func() { d.stopProxy() })
	b.onCleanup(func() { d.stop(b) })
	d.pid, d.ssh, d.proxy = d.proc.PID(), d.proc.Addrs["ssh"], d.proc.Addrs["proxy"]
	b.log.Printf("daemon pid %d, project %s, ssh %s, proxy %s, data %s", d.pid, d.project, d.ssh, d.proxy, d.data)
	if _, err := d.sshCmd(ctx, "env", "create", "production"); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *daemon) alive() bool { return d.proc.Alive() }

// restart stops the daemon with sig (SIGKILL: a crash) and starts it again
// on the same data, project and SSH port; the proxy must not have moved.
func (d *daemon) restart(ctx context.Context, sig syscall.Signal) error {
	d.proc.Stop(sig, 60*time.Second)
	opts := d.opts
	opts.Flags = append(append([]string{}, opts.Flags...), "--ssh-addr", d.ssh)
	proc, err := daemontest.Start(ctx, opts)
	if err != nil {
		return fmt.Errorf("restart the daemon: %w", err)
	}
	d.proc, d.pid = proc, proc.PID()
	if proc.Addrs["proxy"] != d.proxy {
		return fmt.Errorf("the restarted daemon's proxy is on %s, not %s", proc.Addrs["proxy"], d.proxy)
	}
	return nil
}

// stop sends SIGTERM to the daemon and waits; SIGKILL after 60 s.
func (d *daemon) stop(b *bench) {
	if !d.alive() {
		return
	}
	status("stopping the daemon (pid %d)", d.pid)
	d.proc.Stop(syscall.SIGTERM, 60*time.Second)
}

// proxyPID is the pid of the proxy process serving now (an upgrade or a
// restart changes it).
func (d *daemon) proxyPID() (int, error) {
	return frontproxy.ReadPID(frontproxy.PathsIn(frontproxy.DirIn(d.data)).PID)
}

// stopProxy stops the proxy process the daemon started: it outlives the
// daemon by design.
func (d *daemon) stopProxy() {
	status("stopping the daemon's proxy")
	if err := daemontest.StopProxy(d.data, 30*time.Second); err != nil {
		status("cleanup: %v", err)
	}
}

func (d *daemon) deleteProject() {
	status("deleting Incus project %s", d.project)
	if err := daemontest.DeleteProject(d.project); err != nil {
		status("cleanup: %v (delete the project by hand: incus project delete %s)", err, d.project)
	}
}

// sshOptions make ssh use the admin key only, and no known_hosts.
func (d *daemon) sshOptions() []string { return daemontest.SSHOptions(d.key) }

func (d *daemon) sshCmd(ctx context.Context, args ...string) (string, error) {
	host, port, _ := strings.Cut(d.ssh, ":")
	cmd := exec.CommandContext(ctx, "ssh", append(append(append([]string{"-p", port}, d.sshOptions()...), "git@"+host), args...)...)
	cmd.Env = cleanEnv()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return out.String(), fmt.Errorf("ssh %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()+out.String()))
	}
	return out.String(), nil
}

// sshTo runs one SSH command as the admin with its output (stdout and
// stderr) going to out.
func (d *daemon) sshTo(ctx context.Context, out io.Writer, args ...string) error {
	host, port, _ := strings.Cut(d.ssh, ":")
	cmd := exec.CommandContext(ctx, "ssh", append(append(append([]string{"-p", port}, d.sshOptions()...), "git@"+host), args...)...)
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("ssh %s: %v", strings.Join(args, " "), err)
	}
	return nil
}

// newApp creates app, installs it in production following main, and returns
// its host.
func (d *daemon) newApp(ctx context.Context, app string) (string, error) {
	if _, err := d.sshCmd(ctx, "app", "create", app); err != nil {
		return "", err
	}
	if _, err := d.sshCmd(ctx, "install", app+"/production", "--branch", "main"); err != nil {
		return "", err
	}
	return app + ".production.localhost", nil
}

type appStatus struct {
	Commit, Instance, State, Channel string
}

func (d *daemon) status(ctx context.Context, app string) (appStatus, error) {
	var list []appStatus // status --json is an array, also of one installation
	out, err := d.sshCmd(ctx, "status", app+"/production", "--json")
	if err != nil {
		return appStatus{}, err
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		return appStatus{}, fmt.Errorf("status %s --json: %v: %q", app, err, out)
	}
	return list[0], nil
}

// get fetches / of host through the front proxy.
func (d *daemon) get(ctx context.Context, host string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+d.proxy+"/", nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitServed polls the front proxy every pollEvery until host answers 200
// with body want, and returns when it first did: figures are within
// pollEvery plus one request.
func (d *daemon) waitServed(ctx context.Context, host, want string, swapped <-chan struct{}) (time.Time, error) {
	return d.waitServedEvery(ctx, host, want, 60*time.Second, pollEvery, swapped)
}

// waitServedEvery asks every poll, and at once when swapped is closed (the
// log said the swap happened), until host serves want; the time returned is
// when that answer came.
func (d *daemon) waitServedEvery(ctx context.Context, host, want string, timeout, poll time.Duration, swapped <-chan struct{}) (time.Time, error) {
	return d.waitServedMatch(ctx, host, want, func(body string) bool { return body == want }, timeout, poll, swapped)
}

// waitServedMatch is waitServedEvery for a body that match accepts (want
// describes it in errors).
func (d *daemon) waitServedMatch(ctx context.Context, host, want string, match func(string) bool, timeout, poll time.Duration, swapped <-chan struct{}) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		code, body, err := d.get(ctx, host)
		now := time.Now()
		if err == nil && code == 200 && match(body) {
			return now, nil
		}
		if ctx.Err() != nil {
			return now, ctx.Err()
		}
		last = fmt.Sprintf("%d %q %v", code, truncate(body, 80), err)
		if now.After(deadline) {
			return now, fmt.Errorf("%s did not serve %q within %s (last: %s)", host, truncate(want, 40), timeout, last)
		}
		select {
		case <-swapped:
			swapped = nil // once; then poll as usual
			poll = min(poll, 5*time.Millisecond)
		case <-time.After(poll):
		}
	}
}

// waitAllServed polls the hosts in turn, one request every pollEvery in all
// (so the load does not grow with the number of hosts), until each has
// served its want once, and returns when each first did.
func (d *daemon) waitAllServed(ctx context.Context, hosts, want []string, timeout time.Duration) ([]time.Time, []error) {
	served := make([]time.Time, len(hosts))
	errs := make([]error, len(hosts))
	last := make([]string, len(hosts))
	pending := len(hosts)
	deadline := time.Now().Add(timeout)
	for i := 0; pending > 0; i = (i + 1) % len(hosts) {
		if !served[i].IsZero() {
			continue
		}
		code, body, err := d.get(ctx, hosts[i])
		now := time.Now()
		if err == nil && code == 200 && body == want[i] {
			served[i] = now
			pending--
			continue
		}
		last[i] = fmt.Sprintf("%d %q %v", code, truncate(body, 80), err)
		if ctx.Err() != nil || now.After(deadline) {
			for j := range hosts {
				if served[j].IsZero() {
					errs[j] = fmt.Errorf("%s did not serve %q within %s (last: %s)", hosts[j], truncate(want[j], 40), timeout, last[j])
				}
			}
			return served, errs
		}
		time.Sleep(pollEvery)
	}
	return served, errs
}

// workTree is a git work tree an app's developer pushes from.
type workTree struct {
	dir string
	env []string
}

// staticManifest is examples/apps/static's: busybox httpd serves public/.
const staticManifest = `# A static site: busybox httpd serves public/ on the port slipway gives it.
image: slipway/busybox
web: httpd -f -p $PORT -h /app/public
health:
  path: /
  timeout: 10s
`

// newWorkTree makes a work tree in dir with the static example app and
// remote "deploy" pointing at app on d. The work tree's git is isolated
// from the user's configuration.
func (b *bench) newWorkTree(ctx context.Context, app, manifest, index string) (*workTree, error) {
	dir := filepath.Join(b.tmp, "src", app)
	home := filepath.Join(b.tmp, "home")
	if err := os.MkdirAll(filepath.Join(dir, "public"), 0o755); err != nil {
		return nil, err
	}
	os.MkdirAll(home, 0o700)
	w := &workTree{dir: dir, env: gitEnv(home, "ssh "+strings.Join(b.d.sshOptions(), " "))}
	if err := os.WriteFile(filepath.Join(dir, "slipway.yml"), []byte(manifest), 0o644); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "public", "index.html"), []byte(index), 0o644); err != nil {
		return nil, err
	}
	return w, w.initRepo(ctx, b.d.ssh, app)
}

// initRepo makes the work tree's directory a repository with one commit of
// what it holds, and remote "deploy" pointing at app on the daemon at ssh.
func (w *workTree) initRepo(ctx context.Context, ssh, app string) error {
	for _, args := range [][]string{
		{"init", "-q", "-b", "main"},
		{"add", "-A"},
		{"commit", "-q", "-m", "first"},
		{"remote", "add", "deploy", "ssh://git@" + ssh + "/" + app},
	} {
		if _, err := w.git(ctx, args...); err != nil {
			return err
		}
	}
	return nil
}

// gitEnv is the environment of every git the bench runs: a HOME of its own,
// no system config, fixed identities and dates.
func gitEnv(home, sshCommand string) []string {
	return append(cleanEnv(),
		"HOME="+home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Bench", "GIT_AUTHOR_EMAIL=bench@example.invalid",
		"GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@example.invalid",
		"GIT_SSH_COMMAND="+sshCommand)
}

func (w *workTree) git(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = w.dir
	cmd.Env = w.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// commitIndex writes public/index.html and commits it.
func (w *workTree) commitIndex(ctx context.Context, content string) error {
	if err := os.WriteFile(filepath.Join(w.dir, "public", "index.html"), []byte(content), 0o644); err != nil {
		return err
	}
	if _, err := w.git(ctx, "commit", "-q", "-a", "-m", strings.TrimSpace(content)); err != nil {
		return err
	}
	return nil
}

// push is one `git push` in progress.
type push struct {
	cmd  *exec.Cmd
	out  timedWriter
	done chan error
}

// timedWriter keeps output with, on each line, the time since the push
// started: the deploy log arrives as "remote:" lines while it is written, so
// this is a timeline of the push as the developer sees it.
type timedWriter struct {
	mu      sync.Mutex
	start   time.Time
	partial []byte
	buf     bytes.Buffer
	swapped chan struct{} // closed when the log says the new commit serves
}

// swapLine is what the deploy log says right after the swap.
const swapLine = " now serves commit "

// swappedChan is closed once a line containing swapLine has been written.
func (t *timedWriter) swappedChan() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.swapped == nil {
		t.swapped = make(chan struct{})
	}
	return t.swapped
}

func (t *timedWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.partial = append(t.partial, p...)
	for {
		i := bytes.IndexByte(t.partial, '\n')
		if i < 0 {
			break
		}
		line := bytes.TrimRight(t.partial[:i], "\r")
		fmt.Fprintf(&t.buf, "%6.3f %s\n", time.Since(t.start).Seconds(), line)
		t.partial = t.partial[i+1:]
		if bytes.Contains(line, []byte(swapLine)) {
			if t.swapped == nil {
				t.swapped = make(chan struct{})
			}
			select {
			case <-t.swapped:
			default:
				close(t.swapped)
			}
		}
	}
	return len(p), nil
}

func (t *timedWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String() + string(t.partial)
}

// startPush starts `git push deploy main` without waiting for it.
func (w *workTree) startPush(ctx context.Context) (*push, error) {
	p := &push{done: make(chan error, 1)}
	p.out.start = time.Now()
	p.cmd = exec.CommandContext(ctx, "git", "push", "deploy", "main")
	p.cmd.Dir = w.dir
	p.cmd.Env = w.env
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := p.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.done <- p.cmd.Wait() }()
	return p, nil
}

// wait waits for the push; a non-zero exit is an error with git's output.
func (p *push) wait() error {
	if err := <-p.done; err != nil {
		return fmt.Errorf("git push: %v:\n%s", err, p.out.String())
	}
	return nil
}

// cleanEnv is the bench's environment for the processes it starts.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SLIPWAY_") || strings.HasPrefix(kv, "GIT_") || strings.HasPrefix(kv, "SSH_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func lookPath(name string) (string, error) {
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err != nil {
			return "", err
		}
		return name, nil
	}
	return exec.LookPath(name)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// logFile is .bench/latest.log: what each run measured, for later reading.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(path string) (*logFile, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &logFile{f: f}, nil
}

func (l *logFile) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return
	}
	fmt.Fprintf(l.f, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

func (l *logFile) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

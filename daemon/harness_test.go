package daemon_test

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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/daemon/daemontest"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// The integration tests run the real slipway binary against the real incusd,
// and drive it with the real git and ssh clients, each test in its own data
// dir and Incus project so they can run in parallel.

var slipwayBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "slipway-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	slipwayBin = filepath.Join(dir, "slipway")
	if err := daemontest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// requireIntegration fails (under CI) or skips (elsewhere) when the machine
// cannot run the integration tests.
func requireIntegration(t *testing.T) {
	t.Helper()
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, "root")
	}
	if _, err := os.Stat("/var/lib/incus/unix.socket"); err != nil {
		missing = append(missing, "incusd (run: just setup)")
	}
	for _, tool := range []string{"git", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("integration test needs %s", strings.Join(missing, ", "))
	}
	t.Skipf("integration test needs %s", strings.Join(missing, ", "))
}

// slipwayd is one daemon under test (see daemontest, which the bench uses too).
type slipwayd struct {
	t       *testing.T
	dir     string
	data    string
	project string
	key     string // admin's private key
	proc    *daemontest.Daemon
	addrs   map[string]string
	log     daemontest.LogBuffer // every start's log, in order
	env     []string             // extra environment for the daemon
	flags   []string             // extra serve flags
	bin     string               // the slipway binary it runs, if not the shared one
}

func startDaemon(t *testing.T, env ...string) *slipwayd {
	t.Helper()
	return startDaemonOpts(t, nil, env)
}

// startDaemonOpts starts a daemon with more serve flags and environment.
func startDaemonOpts(t *testing.T, flags, env []string) *slipwayd {
	t.Helper()
	return startDaemonIn(t, t.TempDir(), "", flags, env)
}

// startDaemonIn starts a daemon in dir with bin instead of the shared
// binary when it is not "" (a wrapper that runs it elsewhere).
func startDaemonIn(t *testing.T, dir, bin string, flags, env []string) *slipwayd {
	t.Helper()
	requireIntegration(t)
	d := &slipwayd{t: t, dir: dir, data: filepath.Join(dir, "data"), project: "slipway-test-" + randomHex(4), env: env, flags: flags, bin: bin}
	d.key = filepath.Join(dir, "admin_key")
	run(t, dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", d.key)
	t.Cleanup(d.cleanupProject)
	t.Cleanup(d.stopProxy) // after the daemon's last stop: the proxy outlives it
	d.start()
	return d
}

// start runs the daemon and waits for its listeners.
func (d *slipwayd) start() {
	t := d.t
	t.Helper()
	bin := slipwayBin
	if d.bin != "" {
		bin = d.bin
	}
	proc, err := daemontest.Start(context.Background(), daemontest.Options{
		Binary: bin, Data: d.data, Project: d.project, AdminKey: d.key + ".pub",
		Env:   append(append(os.Environ(), "SLIPWAY_MAX_PARALLEL=4"), d.env...),
		Flags: append([]string{"--log-level", "debug"}, d.flags...),
		Log:   &d.log,
	})
	if err != nil {
		t.Fatalf("%v:\n%s", err, d.logText())
	}
	d.proc, d.addrs = proc, proc.Addrs
	t.Cleanup(func() {
		d.stop(syscall.SIGTERM)
		if t.Failed() {
			t.Logf("daemon log:\n%s", d.logText())
		}
	})
}

// stop signals the daemon we started (by its PID) and waits for it.
func (d *slipwayd) stop(sig syscall.Signal) {
	if d.proc != nil {
		d.proc.Stop(sig, 60*time.Second)
	}
}

// stopProxy stops the proxy process the daemon started, and says what it
// logged when the test failed.
func (d *slipwayd) stopProxy() {
	if err := daemontest.StopProxy(d.data, 30*time.Second); err != nil {
		d.t.Logf("stop the proxy: %v", err)
	}
	if d.t.Failed() {
		log, _ := os.ReadFile(frontproxy.PathsIn(frontproxy.DirIn(d.data)).Log)
		d.t.Logf("proxy log:\n%s", log)
	}
}

func (d *slipwayd) logText() string { return d.log.String() }

func (d *slipwayd) cleanupProject() {
	if err := daemontest.DeleteProject(d.project); err != nil {
		d.t.Logf("cleanup project %s: %v", d.project, err)
	}
}

// instances lists the instances in the test's project, running or not.
func (d *slipwayd) instances() []string {
	d.t.Helper()
	rt, err := container.Connect(d.project, "", slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		d.t.Fatal(err)
	}
	list, err := rt.List(context.Background())
	if err != nil {
		d.t.Fatal(err)
	}
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
	}
	return names
}

// settledInstances lists the instances once no installation drains an old
// one any more: git push and pin return when the new commit serves, before
// the old instance is drained and deleted.
func (d *slipwayd) settledInstances() []string {
	d.t.Helper()
	eventually(d.t, 45*time.Second, "old instances drained and deleted", func() (bool, string) {
		var insts []struct{ Draining []string }
		d.sshJSON(&insts, "status", "--json")
		for _, i := range insts {
			if len(i.Draining) > 0 {
				return false, fmt.Sprint(i.Draining)
			}
		}
		return true, ""
	})
	return d.instances()
}

// sshOptions are the client options every test connection uses.
func sshOptions(key string) []string { return daemontest.SSHOptions(key) }

func (d *slipwayd) sshArgs(key string) []string { return d.proc.SSHArgs(key) }

// ssh runs an SSH command as the admin and returns stdout, stderr and the exit code.
func (d *slipwayd) ssh(args ...string) (string, string, int) {
	return d.sshAs(d.key, "", args...)
}

func (d *slipwayd) sshAs(key, stdin string, args ...string) (string, string, int) {
	d.t.Helper()
	cmd := exec.Command("ssh", append(d.sshArgs(key), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("ssh %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// mustSSH runs an SSH command that has to succeed.
func (d *slipwayd) mustSSH(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.ssh(args...)
	if code != 0 {
		d.t.Fatalf("ssh %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (d *slipwayd) sshJSON(v any, args ...string) {
	d.t.Helper()
	out := d.mustSSH(args...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		d.t.Fatalf("ssh %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// statusJSON reads `status APP/ENV --json`, an array of one installation, into v.
func (d *slipwayd) statusJSON(v any, resource string) {
	d.t.Helper()
	var list []json.RawMessage
	d.sshJSON(&list, "status", resource, "--json")
	if len(list) != 1 {
		d.t.Fatalf("status %s --json: %d installations, want 1", resource, len(list))
	}
	if err := json.Unmarshal(list[0], v); err != nil {
		d.t.Fatalf("status %s --json: %v\n%s", resource, err, list[0])
	}
}

// get fetches path of host through the front proxy.
func (d *slipwayd) get(host, path string) (int, string, error) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.addrs["proxy"]+path, nil)
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// metrics returns what /metrics says now.
func (d *slipwayd) metrics() string {
	d.t.Helper()
	resp, err := httpClient.Get("http://" + d.addrs["metrics"] + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// workTree is a local clone an app's developer pushes from.
type workTree struct {
	t   *testing.T
	dir string
	env []string
}

// newApp makes a git work tree from an example app and adds slipway as its
// "deploy" remote.
func (d *slipwayd) newApp(app, example string) *workTree {
	d.t.Helper()
	dir := filepath.Join(d.dir, "src-"+app)
	copyDir(d.t, filepath.Join("..", "examples", "apps", example), dir)
	home := filepath.Join(d.dir, "home")
	os.MkdirAll(home, 0o700)
	w := &workTree{t: d.t, dir: dir, env: []string{
		"HOME=" + home, "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.invalid",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.invalid",
		"GIT_SSH_COMMAND=ssh " + strings.Join(sshOptions(d.key), " "),
	}}
	w.git("init", "-q", "-b", "main")
	w.git("add", "-A")
	w.git("commit", "-q", "-m", "first")
	w.git("remote", "add", "deploy", "ssh://git@"+d.addrs["ssh"]+"/"+app)
	return w
}

func (w *workTree) git(args ...string) string {
	w.t.Helper()
	out, errOut, code := w.tryGit(args...)
	if code != 0 {
		w.t.Fatalf("git %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func (w *workTree) tryGit(args ...string) (string, string, int) {
	w.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), w.env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("git %v: %v", args, err)
	}
	return out.String(), errb.String(), 0
}

// write changes a file and commits it, returning the new commit.
func (w *workTree) commitFile(path, content, message string) string {
	w.t.Helper()
	full := filepath.Join(w.dir, path)
	os.MkdirAll(filepath.Dir(full), 0o755)
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
	w.git("add", "-A")
	w.git("commit", "-q", "-m", message)
	return strings.TrimSpace(w.git("rev-parse", "HEAD"))
}

// push runs git push and returns its combined output and exit code.
func (w *workTree) push(args ...string) (string, int) {
	w.t.Helper()
	out, errOut, code := w.tryGit(append([]string{"push"}, args...)...)
	return out + errOut, code
}

func (w *workTree) head() string {
	return strings.TrimSpace(w.git("rev-parse", "HEAD"))
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// eventually polls cond until it holds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not true after %s (last: %s)", what, timeout, last)
}

package examples_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/detect"
)

// TestAppPlans checks what slipway makes of each example that relies on the
// Procfile or language detection: the language, the image, the build steps,
// the release steps and the supervised processes.
func TestAppPlans(t *testing.T) {
	for _, tc := range []struct {
		app, detected, image, build, release, processes string
	}{
		{"python", "Python app detected (requirements.txt)", channels.ToolchainImage,
			"python3 -m venv --without-pip .venv", "python3 app.py migrate", "web=python3 app.py"},
		{"node", "Node.js app detected (package.json)", channels.ToolchainImage,
			"", "", "web=node server.js; worker=node worker.js"},
		{"go", "Go app detected (go.mod)", channels.ToolchainImage,
			"go build", "", "web=/app/.slipway/bin/app"},
		{"static", "Static app detected (public/)", channels.DefaultImage,
			"", "", "web=httpd -f -p $PORT -h /app/public"},
		{"cgi", "", channels.DefaultImage,
			"chmod +x public/cgi-bin/*", `echo "nothing to migrate"`, "web=httpd -f -p $PORT -h /app/public"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			a, err := channels.LoadApp(detect.Dir(filepath.Join("apps", tc.app)))
			if err != nil {
				t.Fatal(err)
			}
			detected := ""
			if len(a.Log) > 0 && strings.HasSuffix(a.Log[len(a.Log)-1], ")") {
				detected = strings.TrimPrefix(firstDetected(a.Log), "-----> ")
			}
			if detected != tc.detected {
				t.Errorf("detected %q, want %q (log %q)", detected, tc.detected, a.Log)
			}
			if a.Image != tc.image {
				t.Errorf("image %s, want %s", a.Image, tc.image)
			}
			var build []string
			for _, s := range a.Build {
				build = append(build, s.Command)
			}
			if got := strings.Join(build, "\n"); !strings.Contains(got, tc.build) || (tc.build == "") != (got == "") {
				t.Errorf("build %q, want %q", got, tc.build)
			}
			if got := strings.Join(a.Release, "\n"); got != tc.release {
				t.Errorf("release %q, want %q", got, tc.release)
			}
			if got := processList(a.Processes); got != tc.processes {
				t.Errorf("processes %q, want %q", got, tc.processes)
			}
		})
	}
}

func firstDetected(log []string) string {
	for _, l := range log {
		if strings.Contains(l, " app detected (") {
			return l
		}
	}
	return ""
}

func processList(procs []detect.Process) string {
	var out []string
	for _, p := range procs {
		out = append(out, p.Name+"="+p.Command)
	}
	return strings.Join(out, "; ")
}

// TestAppsBuildOffline runs each detected example's build, release and
// processes on this host, in a copy of its tree standing in for /app: the
// build in a network namespace of its own (no network at all, as in an
// instance here) with an empty build cache. Toolchains this host lacks are
// skipped, not faked.
func TestAppsBuildOffline(t *testing.T) {
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot cut the build off the network (unshare -n: %v)", err)
	}
	for _, tc := range []struct {
		app, tool string
		env       map[string]string // beside $PORT; paths under the copy
		want      []string          // in successive GET / answers
	}{
		{"python", "python3", map[string]string{"COUNTER_DB": "data/visits.db"},
			[]string{"visit number 1", "visit number 2"}},
		{"node", "node", map[string]string{"HEARTBEAT_FILE": "heartbeat"},
			[]string{"worker heartbeat: tick 1"}},
		{"go", "go", nil, []string{"Hello from slipway (go1."}},
	} {
		t.Run(tc.app, func(t *testing.T) {
			if _, err := exec.LookPath(tc.tool); err != nil {
				t.Skipf("no %s on this host", tc.tool)
			}
			app := copyTree(t, filepath.Join("apps", tc.app))
			a, err := channels.LoadApp(detect.Dir(app))
			if err != nil {
				t.Fatal(err)
			}
			extra := map[string]string{"HOME": t.TempDir(), "SLIPWAY_CACHE": t.TempDir(), "PORT": freePort(t)}
			for k, v := range tc.env {
				extra[k] = filepath.Join(app, v)
			}
			env := hostEnv(app, a.Env, extra)
			for _, s := range a.Build {
				shell(t, app, hostEnv(app, a.BuildEnv, env), "unshare", "-n", "sh", "-c", s.Command)
			}
			for _, cmd := range a.Release {
				shell(t, app, env, "sh", "-c", cmd)
			}
			for i := len(a.Processes) - 1; i >= 0; i-- { // web last: the worker's beat comes first
				startProcess(t, app, env, a.Processes[i].Command)
			}
			for _, want := range tc.want {
				if body := getUntil(t, env["PORT"], want); !strings.Contains(body, want) {
					t.Fatalf("GET /: %q, want %q", body, want)
				}
			}
		})
	}
}

// hostEnv stands app in for /app in the values of envs, merged: the
// commands were written for an instance. PATH keeps this host's own after
// the app's, since the toolchain here is not where the image has it.
func hostEnv(app string, envs ...map[string]string) map[string]string {
	out := merge(envs...)
	for k, v := range out {
		out[k] = hostPath(app, v)
	}
	if !strings.HasSuffix(out["PATH"], os.Getenv("PATH")) {
		out["PATH"] = strings.TrimPrefix(out["PATH"]+":"+os.Getenv("PATH"), ":")
	}
	return out
}

// hostPath puts app where s says /app/.
func hostPath(app, s string) string { return strings.ReplaceAll(s, "/app/", app+"/") }

func environ(env map[string]string) []string {
	var out []string
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

func shell(t *testing.T, dir string, env map[string]string, args ...string) {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir, cmd.Env = dir, environ(env)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%q: %v\n%s", args, err, out)
	}
	t.Logf("%s (%s)", args[len(args)-1], time.Since(start).Round(time.Millisecond))
}

// startProcess runs a process command as the supervisor would, with /app
// standing for the copy, and stops its process group when the test ends.
func startProcess(t *testing.T, dir string, env map[string]string, command string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", hostPath(dir, command))
	cmd.Dir, cmd.Env = dir, environ(env)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	log, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		if t.Failed() {
			out, _ := os.ReadFile(log.Name())
			t.Logf("output of %q:\n%s", command, out)
		}
	})
}

// getUntil asks for / until the answer holds want or 10 seconds pass, and
// returns the last answer.
func getUntil(t *testing.T, port, want string) string {
	t.Helper()
	var body string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		resp, err := http.Get("http://127.0.0.1:" + port + "/")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if body = string(b); strings.Contains(body, want) {
			break
		}
	}
	return body
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}

// copyTree copies an example into a temporary directory, as a commit's tree.
func copyTree(t *testing.T, src string) string {
	dst := t.TempDir()
	var buf strings.Builder
	tr := appTar(t, src)
	cmd := exec.CommandContext(context.Background(), "tar", "-x", "-C", dst)
	cmd.Stdin, cmd.Stderr = tr, &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("copy %s: %v %s", src, err, buf.String())
	}
	return dst
}

// TestPythonWheelsOffline installs a requirement from vendor/wheels with the
// system's pip into a virtualenv made without one (pip --python, the fast
// path), with no network: Debian 12's pip 23.0.1 is what slipway/debian has.
func TestPythonWheelsOffline(t *testing.T) {
	wheels, _ := filepath.Glob("/usr/share/python-wheels/setuptools-*.whl")
	if len(wheels) == 0 || exec.Command("/usr/bin/python3", "-m", "pip", "--version").Run() != nil {
		t.Skip("needs Debian's python3-pip and python3-pip-whl")
	}
	if err := exec.Command("unshare", "-n", "true").Run(); err != nil {
		t.Skipf("cannot cut the build off the network (unshare -n: %v)", err)
	}
	app := t.TempDir()
	os.MkdirAll(filepath.Join(app, "vendor", "wheels"), 0o755)
	data, err := os.ReadFile(wheels[0])
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(app, "vendor", "wheels", filepath.Base(wheels[0])), data, 0o644)
	os.WriteFile(filepath.Join(app, "requirements.txt"), []byte("setuptools\n"), 0o644)
	p, ok := detect.Detect(detect.Dir(app))
	if !ok || len(p.Build) != 2 {
		t.Fatalf("plan %+v", p)
	}
	// /usr/bin first: Debian's python3 and pip, not another on this host.
	env := hostEnv(app, p.Env, p.BuildEnv, map[string]string{"PATH": "/usr/bin:/bin", "HOME": t.TempDir(), "SLIPWAY_CACHE": t.TempDir()})
	for _, s := range p.Build {
		shell(t, app, env, "unshare", "-n", "sh", "-c", s.Command)
	}
	shell(t, app, env, filepath.Join(app, ".venv", "bin", "python"), "-c", "import setuptools")
}

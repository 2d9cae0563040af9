package daemon_test

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// requireDebianImage skips (fails under CI, whose .ci/run builds it) when
// slipway/debian is not on this host.
func requireDebianImage(t *testing.T) {
	t.Helper()
	if err := exec.Command("incus", "image", "info", "slipway/debian").Run(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("slipway/debian is not imported: .ci/run builds it with `just image-debian`")
		}
		t.Skip("slipway/debian is not imported here (just image-debian)")
	}
}

// The Python example, with no build steps of its own, is detected, built and
// served on slipway/debian; its volume keeps the count. Its output and the
// supervisor's events reach `logs --app`, which a viewer of another
// environment cannot read; they outlive a redeploy and a daemon restart.
// A web that crashes shows its restart lines and never serves.
func TestPythonAppDetectedServedAndLogged(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	requireDebianImage(t)
	d := startDaemon(t)
	host := d.setupApp("py")
	w := d.newApp("py", "python")
	out, code := w.push("deploy", "main")
	if code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	for _, want := range []string{"Python app detected (requirements.txt)", "from image slipway/debian", "schema ready"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	d.serves(host, "visit number 1")
	d.serves(host, "visit number 2")

	eventually(t, 10*time.Second, "web's own output in logs --app", func() (bool, string) {
		out := d.mustSSH("logs", "py/production", "--app")
		return strings.Contains(out, "web started") && strings.Contains(out, "web["), out
	})

	d.mustSSH("env", "create", "staging")
	vera := d.addUser("vera")
	d.mustSSH("grant", "vera", "staging", "viewer")
	if _, errOut, code := d.sshAs(vera, "", "logs", "py/production", "--app"); code == 0 || !strings.Contains(errOut, "unknown installation py/production") {
		t.Errorf("a viewer of staging read production's app logs: exit %d %q", code, errOut)
	}
	if ops := d.mustSSH("ops", "--type", "logs"); !strings.Contains(ops, "logs") || !strings.Contains(ops, "py/production") {
		t.Errorf("the readings are not in ops:\n%s", ops)
	}

	// A crashing web: restarts show, the health check fails, the old
	// commit keeps serving.
	w.commitFile("Procfile", "web: echo crashing now; exit 1\n", "crash")
	out, code = w.push("deploy", "main")
	if code == 0 {
		t.Fatalf("push of a crashing web succeeded:\n%s", out)
	}
	for _, want := range []string{"crashing now", "web exited with status 1", "still serves commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("failed push output lacks %q:\n%s", want, out)
		}
	}
	d.serves(host, "visit number")
	w.git("revert", "--no-edit", "HEAD")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push of the revert: %d\n%s", code, out)
	}

	d.stop(syscall.SIGTERM)
	d.start()
	out = d.mustSSH("logs", "py/production", "--app", "-n", "0")
	for _, want := range []string{"crashing now", "web started"} {
		if !strings.Contains(out, want) {
			t.Errorf("after a redeploy and a restart, logs --app lacks %q:\n%s", want, out)
		}
	}

	out = d.mustSSH("rebuild", "py/production")
	if !strings.Contains(out, "succeeded") || strings.Contains(out, "build and release skipped") || !strings.Contains(out, "Python app detected") {
		t.Errorf("rebuild:\n%s", out)
	}
	d.serves(host, "visit number")
}

// A worker process of the Node example runs beside web, and what it prints
// is in `logs --app --process worker`.
func TestNodeWorkerLogs(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	requireDebianImage(t)
	d := startDaemon(t)
	host := d.setupApp("nd")
	w := d.newApp("nd", "node")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, "Hello from slipway (Node")
	eventually(t, 15*time.Second, "the worker's ticks in logs --app", func() (bool, string) {
		out := d.mustSSH("logs", "nd/production", "--app", "--process", "worker")
		return strings.Contains(out, "worker[") && strings.Contains(out, "tick 1") && !strings.Contains(out, "web["), out
	})
}

// The Go example's build cache is kept across deploys and instances, and a
// rebuild empties it before building.
func TestBuildCacheKeptAndEmptiedByRebuild(t *testing.T) {
	t.Parallel()
	requireIntegration(t)
	requireDebianImage(t)
	d := startDaemon(t)
	host := d.setupApp("gc")
	w := d.newApp("gc", "go")
	if out, code := w.push("deploy", "main"); code != 0 || !strings.Contains(out, "Build cache mounted at /var/cache/slipway") {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, "Hello from slipway (go")
	marker := "/var/cache/slipway/left-by-the-test"
	d.mustSSH("run", "gc/production", "--", "touch", marker)

	w.commitFile("main.go", strings.Replace(readFile(t, w.dir+"/main.go"), "Hello from slipway", "Hello again from slipway", 1), "change")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("second push exited %d:\n%s", code, out)
	}
	d.serves(host, "Hello again from slipway")
	if _, errOut, code := d.ssh("run", "gc/production", "--", "test", "-e", marker); code != 0 {
		t.Errorf("the cache did not outlive the instance: exit %d %s", code, errOut)
	}

	out := d.mustSSH("rebuild", "gc/production")
	if !strings.Contains(out, "Build cache emptied") || !strings.Contains(out, "succeeded") {
		t.Errorf("rebuild:\n%s", out)
	}
	if _, _, code := d.ssh("run", "gc/production", "--", "test", "-e", marker); code == 0 {
		t.Error("the rebuild left the cache as it was")
	}
	d.serves(host, "Hello again from slipway")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

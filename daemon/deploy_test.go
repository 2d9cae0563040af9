package daemon_test

import (
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setupApp creates app, environment production and an installation following main.
func (d *slipwayd) setupApp(app string) string {
	d.t.Helper()
	d.mustSSH("app", "create", app)
	if _, _, code := d.ssh("env", "create", "production"); code != 0 {
		// created by an earlier call in the same test
	}
	d.mustSSH("install", app+"/production", "--branch", "main")
	return app + ".production.localhost"
}

// staticManifest serves /app/public with busybox httpd.
const staticManifest = `image: slipway/busybox
build:
  - echo building $SLIPWAY_COMMIT
web: httpd -f -p $PORT -h /app/public
health:
  path: /
  timeout: 10s
`

// serves waits until host answers 200 with body containing want.
func (d *slipwayd) serves(host, want string) {
	d.t.Helper()
	eventually(d.t, 20*time.Second, host+" serves "+want, func() (bool, string) {
		code, body, err := d.get(host, "/")
		return err == nil && code == 200 && strings.Contains(body, want), fmt.Sprintf("%d %q %v", code, body, err)
	})
}

func TestPushDeploysAndReplaces(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host := d.setupApp("hello")
	w := d.newApp("hello", "static")
	w.commitFile("slipway.yml", staticManifest, "manifest")
	first := w.commitFile("public/index.html", "version one\n", "v1")

	out, code := w.push("deploy", "main")
	if code != 0 {
		t.Fatalf("first push exited %d:\n%s", code, out)
	}
	for _, want := range []string{"remote: -----> deploy of hello/production", "while the push arrived", "remote:        building " + first, "now serves commit " + first[:12]} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if code, body, err := d.get(host, "/"); err != nil || code != 200 || body != "version one\n" {
		t.Fatalf("after first push: %d %q %v", code, body, err)
	}

	var st struct {
		Commit, Instance, State, Channel string
	}
	d.statusJSON(&st, "hello/production")
	if st.Commit != first || st.State != "running" || st.Channel != "branch main" {
		t.Fatalf("status after first push: %+v", st)
	}
	firstInstance := st.Instance

	second := w.commitFile("public/index.html", "version two\n", "v2")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("second push exited %d:\n%s", code, out)
	}
	if code, body, _ := d.get(host, "/"); code != 200 || body != "version two\n" {
		t.Fatalf("after second push: %d %q", code, body)
	}
	d.statusJSON(&st, "hello/production")
	if st.Commit != second || st.Instance == firstInstance {
		t.Fatalf("status after second push: %+v (first instance %s)", st, firstInstance)
	}
	if got := d.settledInstances(); len(got) != 1 || got[0] != st.Instance {
		t.Fatalf("instances after second push: %v, want only %s", got, st.Instance)
	}

	var ops []struct {
		ID                                   int64
		Type, Resource, User, Status, Commit string
	}
	d.sshJSON(&ops, "ops", "--json")
	if len(ops) != 2 || ops[0].Commit != second || ops[0].Status != "succeeded" || ops[0].Type != "deploy" ||
		ops[0].User != "admin" || ops[0].Resource != "hello/production" || ops[1].Commit != first {
		t.Fatalf("ops: %+v", ops)
	}
	logs := d.mustSSH("logs", fmt.Sprint(ops[0].ID))
	if !strings.Contains(logs, "building "+second) || !strings.Contains(logs, "succeeded") {
		t.Fatalf("stored log of op %d:\n%s", ops[0].ID, logs)
	}

	// Clone back what was pushed.
	clone := t.TempDir()
	run(t, clone, w.env, "git", "clone", "-q", "ssh://git@"+d.addrs["ssh"]+"/hello", "c")
	if got := strings.TrimSpace(run(t, clone+"/c", w.env, "git", "rev-parse", "HEAD")); got != second {
		t.Fatalf("clone HEAD %s, want %s", got, second)
	}
}

func TestFailedBuildKeepsOldCommitServing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("shop", "good\n")

	w.commitFile("slipway.yml", strings.Replace(staticManifest, "echo building $SLIPWAY_COMMIT", "echo compiling; exit 3", 1), "broken build")
	bad := w.commitFile("public/index.html", "bad\n", "bad")
	out, code := w.push("deploy", "main")
	if code == 0 {
		t.Fatalf("push of a failing build exited 0:\n%s", out)
	}
	for _, want := range []string{`build step "echo compiling; exit 3" exited with status 3`, "Rollback succeeded", "still serves commit"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if code, body, _ := d.get(host, "/"); code != 200 || body != "good\n" {
		t.Fatalf("after failed build: %d %q, want the old commit", code, body)
	}
	if got := d.settledInstances(); len(got) != 1 {
		t.Fatalf("instances after failed build: %v, want the old one only", got)
	}
	if st := d.mustSSH("status", "shop/production"); !strings.Contains(st, `running, last deploy failed: build step "echo compiling; exit 3" exited with status 3`) {
		t.Errorf("status does not say the last deploy failed:\n%s", st)
	}
	// The commit is stored even though its deploy failed.
	clone := t.TempDir()
	run(t, clone, w.env, "git", "clone", "-q", "ssh://git@"+d.addrs["ssh"]+"/shop", "c")
	if got := strings.TrimSpace(run(t, clone+"/c", w.env, "git", "rev-parse", "HEAD")); got != bad {
		t.Fatalf("stored head %s, want %s", got, bad)
	}
}

func TestUnhealthyAppIsRolledBack(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("cafe", "healthy\n")
	// The new commit's web never listens on $PORT.
	w.commitFile("slipway.yml", strings.NewReplacer("httpd -f -p $PORT", "httpd -f -p 9999", "timeout: 10s", "timeout: 2s").Replace(staticManifest), "wrong port")
	out, code := w.push("deploy", "main")
	if code == 0 {
		t.Fatalf("push of an unhealthy app exited 0:\n%s", out)
	}
	if !strings.Contains(out, "app never became healthy") || !strings.Contains(out, "Rollback succeeded") {
		t.Fatalf("push output:\n%s", out)
	}
	d.serves(host, "healthy")
	if got := d.settledInstances(); len(got) != 1 {
		t.Fatalf("instances after rollback: %v", got)
	}
}

func TestNoFailedRequestsDuringDeploys(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("busy", "v0\n")

	var ok, failed atomic.Int64
	var firstFailure atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, body, err := d.get(host, "/")
				if err != nil || code != 200 || !strings.HasPrefix(body, "v") {
					failed.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Sprintf("%d %q %v", code, body, err))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	const deploys = 4
	for i := 1; i <= deploys; i++ {
		w.commitFile("public/index.html", fmt.Sprintf("v%d\n", i), fmt.Sprint("v", i))
		if out, code := w.push("deploy", "main"); code != 0 {
			close(stop)
			wg.Wait()
			t.Fatalf("push %d exited %d:\n%s", i, code, out)
		}
	}
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed during %d deploys; first: %v", failed.Load(), failed.Load()+ok.Load(), deploys, firstFailure.Load())
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests made: the load was not constant", ok.Load())
	}
	t.Logf("%d requests, 0 failed, across %d deploys", ok.Load(), deploys)
	d.serves(host, fmt.Sprintf("v%d", deploys))
}

func TestBadInputGetsOneClearLine(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host := d.setupApp("blog")

	// An unregistered key is refused at authentication.
	stranger := d.dir + "/stranger"
	run(t, d.dir, nil, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", stranger)
	if _, errOut, code := d.sshAs(stranger, "", "help"); code == 0 || !strings.Contains(errOut, "Permission denied (publickey)") {
		t.Fatalf("unregistered key: exit %d, stderr %q", code, errOut)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"app", "create", "a/b"}, "may not contain '/'"},
		{[]string{"app", "create", "../etc"}, "may not contain '/'"},
		{[]string{"app", "create", strings.Repeat("x", 200)}, "200 characters long; the limit is 30"},
		{[]string{"app", "create", "blog"}, "already exists"},
		{[]string{"install", "nope/production", "--branch", "main"}, "unknown app: nope"},
		{[]string{"install", "blog/staging", "--branch", "main"}, "unknown environment: staging"},
		{[]string{"install", "blog/production"}, "usage: install"},
		{[]string{"status", "blog/nowhere"}, "unknown installation blog/nowhere"},
		{[]string{"logs", "999"}, "unknown operation 999"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"status", "'blog/production"}, "a ' quote that is not closed"},
		{[]string{"ops", "--limit", "-1"}, "--limit -1: give a number of operations, 1 or more"},
		{[]string{"ops", "--jsn"}, "slipway: unknown flag --jsn\nusage: ops "},
		{[]string{"ops", "--limit", "x"}, `--limit "x": not a number`},
		{[]string{"ops", "--status", "weird"}, `--status "weird": give one of queued, running, succeeded, failed, cancelled`},
		{[]string{"ops", "--type", "nope"}, `--type "nope": give one of deploy, switch`},
		{[]string{"maintenance", "blog/production", "on", "--message", strings.Repeat("x", 600)}, "keep it to 500"},
		{[]string{"report", "make", "production", "9999-W01"}, "outside the life of environment production"},
		{[]string{"report", "make", "production", "0000-W01"}, "outside the life of environment production"},
	} {
		_, errOut, code := d.ssh(tc.args...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("ssh %v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
		if first, _, _ := strings.Cut(strings.TrimSpace(errOut), "\n"); strings.Contains(first, "goroutine") || strings.Contains(first, "sqlite") {
			t.Errorf("ssh %v leaks internals: %q", tc.args, errOut)
		}
	}

	// Asking for help is not an error.
	for _, args := range [][]string{{"help", "status"}, {"status", "--help"}} {
		if out, errOut, code := d.ssh(args...); code != 0 || !strings.HasPrefix(out, "usage: status [APP/ENV] [--json]") {
			t.Errorf("ssh %v: exit %d %q %q", args, code, out, errOut)
		}
	}
	if out, _, code := d.ssh("version"); code != 0 || !strings.HasPrefix(out, "slipway ") || !strings.Contains(out, "(commit ") {
		t.Errorf("version: exit %d %q", code, out)
	} else if local := run(t, d.dir, nil, slipwayBin, "version"); local != out {
		t.Errorf("slipway version prints %q, ssh ... version %q", local, out)
	}
	pub := run(t, d.dir, nil, "cat", d.key+".pub")
	if _, errOut, code := d.sshAs(d.key, pub+pub, "key", "add", "admin"); code == 0 || !strings.Contains(errOut, "stdin holds 2 keys") {
		t.Errorf("key add with two keys: exit %d, stderr %q", code, errOut)
	}

	w := d.newApp("blog", "static")
	w.git("remote", "add", "nowhere", "ssh://git@"+d.addrs["ssh"]+"/nowhere")
	if out, code := w.push("nowhere", "main"); code == 0 || !strings.Contains(out, `unknown app "nowhere"`) {
		t.Errorf("push to unknown app: exit %d\n%s", code, out)
	}
	w.git("remote", "add", "bad", "ssh://git@"+d.addrs["ssh"]+"/a..b")
	if out, code := w.push("bad", "main"); code == 0 || !strings.Contains(out, "bad repository path") {
		t.Errorf("push to bad path: exit %d\n%s", code, out)
	}

	// Nothing to run (no manifest, no Procfile, nothing detectable): the
	// push is stored, the deploy fails with the reason.
	w.git("rm", "-q", "-r", "slipway.yml", "public")
	w.commitFile("notes.txt", "no app here\n", "nothing to run")
	out, code := w.push("deploy", "main")
	if code == 0 || !strings.Contains(out, "nothing to run: ") {
		t.Errorf("push without manifest: exit %d\n%s", code, out)
	}
	// A manifest that does not parse names the line and field.
	w.commitFile("slipway.yml", "image: slipway/busybox\nweb: httpd\nhealth:\n  timeout: soon\n", "bad manifest")
	out, code = w.push("deploy", "main")
	if code == 0 || !strings.Contains(out, `slipway.yml line 4: health.timeout: "soon" is not a duration`) {
		t.Errorf("push with bad manifest: exit %d\n%s", code, out)
	}
	// Nothing was ever deployed: the installation answers 503, not an error.
	if code, body, _ := d.get(host, "/"); code != 503 {
		t.Errorf("installation without a deploy: %d %q, want 503", code, body)
	}
	if code, _, _ := d.get("nothing.example.localhost", "/"); code != 404 {
		t.Errorf("unknown host: %d, want 404", code)
	}
}

func TestPushLargerThanTheLimitIsRefused(t *testing.T) {
	t.Parallel()
	d := startDaemon(t, "SLIPWAY_MAX_PUSH_MB=1")
	host, w := d.deployed("big", "small\n")
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	w.commitFile("public/blob.bin", string(blob), "big blob")
	out, code := w.push("deploy", "main")
	if code == 0 || !strings.Contains(out, "pack exceeds maximum allowed size") {
		t.Fatalf("push over the limit: exit %d\n%s", code, out)
	}
	d.serves(host, "small")
	var st struct{ Commit string }
	d.statusJSON(&st, "big/production")
	if st.Commit == w.head() {
		t.Fatal("the refused commit was deployed")
	}
}

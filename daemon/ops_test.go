package daemon_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// deployed sets up app with the static example serving body and returns its host and work tree.
func (d *slipwayd) deployed(app, body string) (string, *workTree) {
	d.t.Helper()
	host := d.setupApp(app)
	w := d.newApp(app, "static")
	w.commitFile("slipway.yml", staticManifest, "manifest")
	w.commitFile("public/index.html", body, "first")
	if out, code := w.push("deploy", "main"); code != 0 {
		d.t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, strings.TrimSpace(body))
	return host, w
}

type opView struct {
	ID                                   int64
	Type, Resource, User, Status, Reason string
	Commit, Channel                      string
}

func (d *slipwayd) ops(args ...string) []opView {
	d.t.Helper()
	var ops []opView
	d.sshJSON(&ops, append([]string{"ops", "--json"}, args...)...)
	return ops
}

// slowBuild is a manifest whose build takes long enough to be interrupted.
const slowBuild = `image: slipway/busybox
build:
  - echo build started; sleep 30
web: httpd -f -p $PORT -h /app/public
`

func TestCancelDuringSlowBuild(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("slow", "before\n")
	w.commitFile("slipway.yml", slowBuild, "slow")
	push := exec.Command("git", "push", "deploy", "main")
	push.Dir, push.Env = w.dir, append(w.env, "PATH=/usr/bin:/bin:/usr/local/bin")
	out := &strings.Builder{}
	push.Stdout, push.Stderr = out, out
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	var running opView
	eventually(t, 20*time.Second, "deploy running its build", func() (bool, string) {
		ops := d.ops("--status", "running")
		if len(ops) == 1 {
			logs, _, _ := d.ssh("logs", fmt.Sprint(ops[0].ID))
			running = ops[0]
			return strings.Contains(logs, "build started"), logs
		}
		return false, fmt.Sprint(ops)
	})
	cancelOut := d.mustSSH("cancel", fmt.Sprint(running.ID))
	if !strings.Contains(cancelOut, "cancelled") {
		t.Fatalf("cancel output %q", cancelOut)
	}
	err := push.Wait()
	if err == nil {
		t.Fatalf("push of a cancelled deploy exited 0:\n%s", out)
	}
	ops := d.ops("--type", "deploy", "--limit", "1")
	if ops[0].Status != "cancelled" || ops[0].Reason != "cancelled by admin" {
		t.Fatalf("cancelled op: %+v", ops[0])
	}
	logs := d.mustSSH("logs", fmt.Sprint(running.ID))
	if !strings.Contains(logs, "cancelled by admin") || !strings.Contains(logs, "Rollback succeeded") {
		t.Fatalf("log of cancelled op:\n%s", logs)
	}
	d.serves(host, "before")
	if got := d.settledInstances(); len(got) != 1 {
		t.Fatalf("instances after cancel: %v", got)
	}
}

func TestKilledDaemonRecovers(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("crash", "survivor\n")
	l := d.startLoad(host, 4) // the proxy keeps serving while the daemon is down
	w.commitFile("slipway.yml", slowBuild, "slow")
	push := exec.Command("git", "push", "deploy", "main")
	push.Dir, push.Env = w.dir, w.env
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	var op opView
	eventually(t, 20*time.Second, "deploy building", func() (bool, string) {
		ops := d.ops("--status", "running")
		if len(ops) == 1 {
			op = ops[0]
			logs, _, _ := d.ssh("logs", fmt.Sprint(op.ID))
			return strings.Contains(logs, "build started"), logs
		}
		return false, ""
	})
	if n := len(d.instances()); n != 2 {
		t.Fatalf("want the old and the building instance, have %d", n)
	}
	d.stop(syscall.SIGKILL)
	push.Wait()
	d.start()

	got := d.ops("--limit", "1")[0]
	if got.ID != op.ID || got.Status != "failed" || !strings.Contains(got.Reason, "interrupted") {
		t.Fatalf("op after restart: %+v", got)
	}
	d.serves(host, "survivor")
	d.reconciled(host)
	l.noneFailed(t, "while the daemon was killed in the middle of a deploy")
}

func TestSwitchesQueueInOrder(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("queue", "one\n")
	one := w.head()
	two := w.commitFile("public/index.html", "two\n", "two")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push: %d\n%s", code, out)
	}
	// Two switches at once on one installation: both run, one after the other,
	// in the order they were asked for; the last one wins.
	done := make(chan string, 2)
	go func() { out, _, _ := d.ssh("pin", "queue/production", one); done <- out }()
	time.Sleep(100 * time.Millisecond)
	go func() { out, _, _ := d.ssh("pin", "queue/production", two); done <- out }()
	<-done
	<-done
	ops := d.ops("--type", "switch")
	if len(ops) != 2 || ops[1].Commit != one || ops[0].Commit != two || ops[0].Status != "succeeded" || ops[1].Status != "succeeded" {
		t.Fatalf("switch ops: %+v", ops)
	}
	raw := d.mustSSH("ops", "--json", "--type", "switch")
	var views []struct {
		StartedAt  time.Time `json:"started"`
		FinishedAt time.Time `json:"finished"`
	}
	if err := json.Unmarshal([]byte(raw), &views); err != nil || len(views) != 2 {
		t.Fatalf("ops --json: %v\n%s", err, raw)
	}
	first, second := views[1], views[0]
	if second.StartedAt.Before(first.FinishedAt) {
		t.Fatalf("switches overlapped: first %v..%v, second started %v", first.StartedAt, first.FinishedAt, second.StartedAt)
	}
	d.serves(host, "two")
}

func TestConfigSecretsMaintenanceRunRestartDeprovision(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("conf", "hi\n")
	// A CGI-free way to see the environment: the build writes it into the site.
	w.commitFile("slipway.yml", strings.Replace(staticManifest, "echo building $SLIPWAY_COMMIT",
		`echo "greeting=$GREETING token=$API_TOKEN" > public/env.txt; echo token is $API_TOKEN`, 1), "env page")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push: %d\n%s", code, out)
	}
	const secret = "s3cr3t-value-42"
	d.mustSSH("config", "set", "conf/production", "GREETING=hello")
	out := d.mustSSH("config", "set", "conf/production", "--secret", "API_TOKEN="+secret)
	if strings.Contains(out, secret) {
		t.Fatalf("config set output shows the secret:\n%s", out)
	}
	eventually(t, 10*time.Second, "new env served", func() (bool, string) {
		_, body, _ := d.get(host, "/env.txt")
		return strings.TrimSpace(body) == "greeting=hello token="+secret, body
	})
	listing := d.mustSSH("config", "conf/production")
	if !strings.Contains(listing, "GREETING=hello") || !strings.Contains(listing, "API_TOKEN=********") {
		t.Fatalf("config listing:\n%s", listing)
	}
	jsonListing := d.mustSSH("config", "conf/production", "--json")
	runOut, _, code := d.ssh("run", "conf/production", "--", "sh", "-c", "'echo run sees $API_TOKEN; exit 7'")
	if code != 7 || !strings.Contains(runOut, "run sees "+secret) {
		t.Fatalf("run: exit %d, out %q", code, runOut)
	}
	// A command that prints without end leaves a bounded log and WAL behind.
	if _, _, code := d.ssh("run", "conf/production", "--", "seq", "1", "100000"); code != 0 {
		t.Fatalf("run seq: exit %d", code)
	}
	if fi, err := os.Stat(filepath.Join(d.data, "slipway.db-wal")); err == nil && fi.Size() > 16<<20 {
		t.Errorf("the WAL is %d MB after run -- seq 1 100000", fi.Size()>>20)
	}
	var everything strings.Builder
	everything.WriteString(listing + jsonListing + d.mustSSH("ops", "--json") + d.mustSSH("status", "--json"))
	for _, op := range d.ops("--limit", "100") {
		everything.WriteString(d.mustSSH("logs", fmt.Sprint(op.ID)))
	}
	if strings.Contains(everything.String(), secret) {
		t.Fatalf("the secret leaked into config, ops, status or logs:\n%s", everything.String())
	}
	if !strings.Contains(everything.String(), "token is ********") {
		t.Fatalf("build output with the secret should be masked in the log:\n%s", everything.String())
	}
	d.secretNotAtRest(secret)

	d.mustSSH("maintenance", "conf/production", "on", "--message", "'Back at noon'")
	req, _ := http.NewRequest("GET", "http://"+d.addrs["proxy"]+"/", nil)
	req.Host = host
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "Back at noon") {
		t.Fatalf("maintenance: %d %q %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	d.mustSSH("maintenance", "conf/production", "off")
	d.serves(host, "hi")

	var before struct{ Instance string }
	d.statusJSON(&before, "conf/production")
	d.mustSSH("restart", "conf/production")
	var after struct{ Instance, Commit string }
	d.statusJSON(&after, "conf/production")
	if after.Instance == before.Instance {
		t.Fatalf("restart kept instance %s", after.Instance)
	}
	d.serves(host, "hi")

	d.mustSSH("deprovision", "conf/production")
	if code, _, _ := d.get(host, "/"); code != 404 {
		t.Fatalf("after deprovision: %d, want 404", code)
	}
	if got := d.instances(); len(got) != 0 {
		t.Fatalf("instances after deprovision: %v", got)
	}
	ops := d.ops("--app", "conf")
	if len(ops) < 6 || ops[0].Type != "deprovision" || ops[0].Resource != "conf/production" {
		t.Fatalf("ops after deprovision: %+v", ops)
	}
	// Now nothing is installed, the app and the environment can go; the record stays.
	d.mustSSH("app", "delete", "conf")
	d.mustSSH("env", "delete", "production")
	if _, errOut, code := d.ssh("status", "conf/production"); code == 0 || !strings.Contains(errOut, "unknown installation") {
		t.Fatalf("status after delete: exit %d %q", code, errOut)
	}
	if again := d.ops("--app", "conf"); len(again) != len(ops) {
		t.Fatalf("%d operations of conf on record after delete, %d before", len(again), len(ops))
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("meter", "m\n")
	w.commitFile("slipway.yml", strings.Replace(staticManifest, "echo building $SLIPWAY_COMMIT", "exit 1", 1), "broken")
	if _, code := w.push("deploy", "main"); code == 0 {
		t.Fatal("broken push exited 0")
	}
	for i := 0; i < 3; i++ {
		d.get(host, "/")
	}
	resp, err := httpClient.Get("http://" + d.addrs["metrics"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`slipway_operations{type="deploy",status="succeeded"} 1`,
		`slipway_operations{type="deploy",status="failed"} 1`,
		`slipway_operation_duration_seconds_count{type="deploy"} 2`,
		`slipway_instances_running 1`,
		"# TYPE slipway_proxy_requests_total counter",
		"slipway_proxy_client_errors_total 0",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, text)
		}
	}
	// The web page does not serve them: it faces people, who sign in.
	if resp, err := httpClient.Get("http://" + d.addrs["web"] + "/metrics"); err != nil || resp.StatusCode == 200 {
		t.Errorf("/metrics on the web address: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
}

// secretNotAtRest checks that no file in the data directory holds secret and
// that no other local user may read what is there.
func (d *slipwayd) secretNotAtRest(secret string) {
	d.t.Helper()
	if fi, err := os.Stat(d.data); err != nil || fi.Mode().Perm() != 0o700 {
		d.t.Errorf("data dir: %v, want mode 0700", fi.Mode())
	}
	filepath.WalkDir(d.data, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.Type()&fs.ModeSocket != 0 {
			return err
		}
		fi, _ := e.Info()
		// The supervisor's directory is 0755 on purpose: an unprivileged
		// instance's root must read the binary it runs as init. It holds
		// nothing but that public binary, inside the 0700 data directory.
		public := path == filepath.Join(d.data, "supervisor") || filepath.Dir(path) == filepath.Join(d.data, "supervisor")
		if fi.Mode().Perm()&0o077 != 0 && !public {
			d.t.Errorf("%s has mode %o: others may read it", path, fi.Mode().Perm())
		}
		if data, _ := os.ReadFile(path); !e.IsDir() && bytes.Contains(data, []byte(secret)) {
			d.t.Errorf("%s holds the secret in clear", path)
		}
		return nil
	})
}

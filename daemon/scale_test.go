package daemon_test

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// whoManifest serves public/ and, at /who, the name of the instance that
// answered (its hostname), so a test sees which instances take traffic.
const whoManifest = `image: slipway/busybox
web: hostname > /app/public/who && exec httpd -f -p $PORT -h /app/public
health:
  path: /
  timeout: 10s
`

type psView struct {
	Name, Process, Commit, State, Member string
	Restarts                             int
}

func (d *slipwayd) ps(resource string) []psView {
	d.t.Helper()
	var out []psView
	d.sshJSON(&out, "ps", resource, "--json")
	return out
}

// serving lists the names of the web instances ps calls serving, of commit
// (any when "").
func serving(ps []psView, commit string) []string {
	var names []string
	for _, p := range ps {
		if p.Process == "web" && p.State == "serving" && (commit == "" || p.Commit == commit) {
			names = append(names, p.Name)
		}
	}
	sort.Strings(names)
	return names
}

// answerers asks host's /who n times over fresh connections and returns who
// answered.
func (d *slipwayd) answerers(host string, n int) map[string]int {
	d.t.Helper()
	seen := map[string]int{}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for range n {
		req, _ := http.NewRequest(http.MethodGet, "http://"+d.addrs["proxy"]+"/who", nil)
		req.Host = host
		resp, err := client.Do(req)
		if err != nil {
			d.t.Fatalf("GET /who: %v", err)
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		resp.Body.Close()
		seen[strings.TrimSpace(string(body))]++
	}
	return seen
}

// settledTo waits until resource runs exactly want serving web instances of
// commit and nothing else, and returns their names.
func (d *slipwayd) settledTo(resource, commit string, want int) []string {
	d.t.Helper()
	var names []string
	eventually(d.t, 60*time.Second, fmt.Sprintf("%s settled on %d instances of %s", resource, want, commit), func() (bool, string) {
		ps := d.ps(resource)
		names = serving(ps, commit)
		all := d.instances()
		return len(names) == want && len(ps) == want && len(all) == want, fmt.Sprintf("ps %+v, instances %v", ps, all)
	})
	return names
}

func (d *slipwayd) incus(args ...string) string {
	d.t.Helper()
	out, err := exec.Command("incus", append([]string{"--project", d.project}, args...)...).CombinedOutput()
	if err != nil {
		d.t.Fatalf("incus %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func TestThreeInstancesServeThroughDeploysScalingAndDeaths(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host := d.setupApp("trio")
	w := d.newApp("trio", "static")
	w.commitFile("slipway.yml", whoManifest, "manifest")
	first := w.commitFile("public/index.html", "one\n", "one")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, "one")

	out := d.mustSSH("scale", "trio/production", "web=3")
	if !strings.Contains(out, "2 more instance(s) ready") {
		t.Fatalf("scale to three did not start two more:\n%s", out)
	}
	names := d.settledTo("trio/production", first, 3)
	seen := d.answerers(host, 60)
	for _, n := range names {
		if seen[n] == 0 {
			t.Fatalf("instance %s got none of 60 requests: %v", n, seen)
		}
	}
	if got := d.mustSSH("scale", "trio/production"); !strings.Contains(got, "web=3") {
		t.Fatalf("scale without counts: %q", got)
	}
	page := d.pageText("/installations/trio/production")
	for _, n := range names {
		if !strings.Contains(page, n) {
			t.Fatalf("the installation's page does not list instance %s:\n%s", n, page)
		}
	}

	l := d.startLoad(host, 4)
	second := w.commitFile("public/index.html", "two\n", "two")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, "two")
	d.settledTo("trio/production", second, 3)

	d.mustSSH("pin", "trio/production", first)
	d.serves(host, "one")
	d.settledTo("trio/production", first, 3)

	d.mustSSH("scale", "trio/production", "web=1")
	d.settledTo("trio/production", first, 1)
	d.mustSSH("scale", "trio/production", "web=3")
	names = d.settledTo("trio/production", first, 3)

	// One instance's app dies (its supervisor starts it again), another
	// instance is deleted behind slipway's back: traffic goes to the rest
	// and the deleted one is replaced by a heal.
	d.incus("exec", names[0], "--", "sh", "-c", "kill -9 $(pidof httpd)")
	d.incus("delete", "--force", names[1])
	eventually(t, 60*time.Second, "the deleted instance replaced and the killed app back", func() (bool, string) {
		ps := d.ps("trio/production")
		now := serving(ps, first)
		restarted := false
		for _, p := range ps {
			if p.Name == names[0] && p.Restarts >= 1 && p.State == "serving" {
				restarted = true
			}
		}
		return len(now) == 3 && !slices.Contains(now, names[1]) && restarted, fmt.Sprintf("%+v", ps)
	})
	l.noneFailed(t, "through a deploy, a rollback, scaling down and up, a killed app and a deleted instance")

	var heals int
	for _, op := range d.ops("--limit", "20") {
		if op.Type == "heal" && op.Status == "succeeded" && op.User == "slipway" {
			heals++
		}
	}
	if heals != 1 {
		t.Fatalf("want one heal operation by slipway, got %d: %+v", heals, d.ops("--limit", "5"))
	}
	m := d.metrics()
	if !strings.Contains(m, `slipway_installation_instances{installation="trio/production",state="serving"} 3`) {
		t.Fatalf("metrics do not count three serving instances:\n%s", m)
	}
	for _, n := range names[:1] { // the killed one kept its name and served before and after
		if !strings.Contains(m, fmt.Sprintf(`slipway_proxy_upstream_requests_total{upstream=%q}`, n)) {
			t.Fatalf("metrics have no request count of %s:\n%s", n, m)
		}
	}
}

// pageText signs the admin in with a headless browser and returns the text
// of the web page at path.
func (d *slipwayd) pageText(path string) string {
	t := d.t
	t.Helper()
	requireChromium(t)
	out := d.mustSSH("login")
	firstLine, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	link, err := url.Parse(strings.TrimSpace(firstLine))
	if err != nil || !strings.HasPrefix(link.Path, "/login/") {
		t.Fatalf("login printed no sign-in link:\n%s", out)
	}
	link.Host = d.addrs["web"] // the link may name port 0; see TestBrowserRollsBackToAnOlderCommit
	ctx := newBrowser(t)
	within(t, ctx, 30*time.Second, "sign in and open "+path,
		chromedp.Navigate(link.String()),
		chromedp.WaitVisible(chromedp.CSS(`a[href^="/installations/"]`)),
		chromedp.Navigate("http://"+d.addrs["web"]+path),
		chromedp.WaitVisible(chromedp.CSS("#instances")),
	)
	return evaluate[string](t, ctx, "document.body.innerText")
}

// firstOnly serves from the first instance to start on the shared volume
// and fails in every other: a rolling deploy of it fails at its second batch.
const firstOnly = `image: slipway/busybox
volumes:
  data: /data
web: if mkdir /data/first-$SLIPWAY_COMMIT 2>/dev/null; then exec httpd -f -p $PORT -h /app/public; else echo "not the first"; exit 1; fi
health:
  path: /
  timeout: 3s
`

func TestARollingDeployThatFailsLeavesTheOldSet(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host := d.setupApp("roll")
	w := d.newApp("roll", "static")
	w.commitFile("slipway.yml", strings.Replace(whoManifest, "image: slipway/busybox\n", "image: slipway/busybox\nvolumes:\n  data: /data\n", 1), "manifest")
	first := w.commitFile("public/index.html", "one\n", "one")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push exited %d:\n%s", code, out)
	}
	d.serves(host, "one")
	d.mustSSH("scale", "roll/production", "web=3", "--surge", "1")
	old := d.settledTo("roll/production", first, 3)

	l := d.startLoad(host, 4)
	w.commitFile("slipway.yml", firstOnly, "only the first instance starts")
	out, code := w.push("deploy", "main")
	if code == 0 || !strings.Contains(out, "Traffic on 1 new and 2 old instance(s)") || !strings.Contains(out, "Traffic back on 3 old instance(s)") {
		t.Fatalf("the rolling deploy should fail at its second batch and put traffic back (exit %d):\n%s", code, out)
	}
	if now := d.settledTo("roll/production", first, 3); !slices.Equal(now, old) {
		t.Fatalf("the old set %v should serve again, got %v", old, now)
	}
	l.noneFailed(t, "through a rolling deploy that failed at its second batch")
}

// With healing off, an instance deleted behind slipway's back leaves the
// installation degraded, and status says so.
func TestStatusSaysWhenInstancesAreMissing(t *testing.T) {
	t.Parallel()
	d := startDaemonOpts(t, []string{"--heal-every", "0"}, nil)
	host, _ := d.deployed("gap", "here\n")
	var st struct{ Instance string }
	d.statusJSON(&st, "gap/production")
	d.incus("delete", "--force", st.Instance)
	var views []struct {
		Running   *int
		Instances []string
	}
	d.sshJSON(&views, "status", "gap/production", "--json")
	if len(views) != 1 || views[0].Running == nil || *views[0].Running != 0 || len(views[0].Instances) != 1 {
		t.Fatalf("status --json after the instance vanished: %+v", views)
	}
	if out := d.mustSSH("status", "gap/production"); !strings.Contains(out, "degraded (0 of 1 instances run)") {
		t.Fatalf("status does not say the installation is degraded:\n%s", out)
	}
	if code, _, _ := d.get(host, "/"); code == 200 {
		t.Fatal("the deleted instance still answered")
	}
}

// An instance that stops (its init ended: the supervisor gave up on a
// crashing process, an OOM kill, `incus stop`) is replaced by a heal, as one
// deleted behind slipway's back is.
func TestAStoppedInstanceIsHealed(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, _ := d.deployed("halt", "still here\n")
	var st struct{ Instance string }
	d.statusJSON(&st, "halt/production")
	time.Sleep(6 * time.Second) // heal leaves an instance alone for 5 s after it took traffic
	d.incus("stop", "--force", st.Instance)
	eventually(t, 60*time.Second, "a fresh instance serving in place of the stopped one", func() (bool, string) {
		ps := d.ps("halt/production")
		now := serving(ps, "")
		return len(now) == 1 && now[0] != st.Instance, fmt.Sprintf("%+v", ps)
	})
	d.serves(host, "still here")
	var heal *opView
	for _, op := range d.ops("--limit", "5") {
		if op.Type == "heal" {
			heal = &op
			break
		}
	}
	if heal == nil || heal.Status != "succeeded" {
		t.Fatalf("no successful heal: %+v", d.ops("--limit", "5"))
	}
	if log := d.mustSSH("logs", fmt.Sprint(heal.ID)); !strings.Contains(log, "Instance "+st.Instance+" (web) stopped: replacing it") {
		t.Fatalf("the heal's log does not say why:\n%s", log)
	}
}

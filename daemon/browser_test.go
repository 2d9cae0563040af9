package daemon_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
)

const chromiumPath = "/usr/bin/chromium"

// requireChromium fails (under CI) or skips (elsewhere) without Chromium.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err == nil {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("browser test needs Chromium at %s (run: just test-deps)", chromiumPath)
	}
	t.Skipf("browser test needs Chromium at %s (run: just test-deps)", chromiumPath)
}

// newBrowser starts a headless Chromium of the test's own, with a fresh
// profile and nothing that reaches out of the machine.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromiumPath),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(filepath.Join(t.TempDir(), "chromium")),
	)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first Run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// within runs browser steps with a deadline.
func within(t *testing.T, ctx context.Context, d time.Duration, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	if err := chromedp.Do(tctx, steps...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func evaluate[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(tctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func TestBrowserRollsBackToAnOlderCommit(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	d := startDaemon(t)
	host := d.setupApp("hello")
	w := d.newApp("hello", "static")
	// The commit the browser pins waits 3 s before it serves, so the pin's
	// operation is still running when its page opens (a rollback to a kept
	// image is otherwise over in a third of a second).
	slowStart := strings.Replace(staticManifest, "web: httpd", "web: sleep 3; exec httpd", 1)
	w.commitFile("slipway.yml", slowStart, "manifest that starts slowly")
	first := w.commitFile("public/index.html", "version one\n", "v1")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("first push exited %d:\n%s", code, out)
	}
	w.commitFile("slipway.yml", staticManifest, "manifest")
	w.commitFile("public/index.html", "version two\n", "v2")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("second push exited %d:\n%s", code, out)
	}
	d.serves(host, "version two")

	// The sign-in link `login` prints. With --web-addr 127.0.0.1:0 the daemon
	// only learns its port when it binds, so the link may name port 0; the
	// path is what matters, opened at the address the daemon bound.
	out := d.mustSSH("login")
	firstLine, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	link, err := url.Parse(strings.TrimSpace(firstLine))
	if err != nil || !strings.HasPrefix(link.Path, "/login/") {
		t.Fatalf("login printed no sign-in link:\n%s", out)
	}
	if link.Host != d.addrs["web"] {
		t.Logf("login printed %s; the web page listens on %s", link, d.addrs["web"])
		link.Host = d.addrs["web"]
	}
	base := "http://" + d.addrs["web"]

	ctx := newBrowser(t)
	inst := `a[href="/installations/hello/production"]`
	within(t, ctx, 30*time.Second, "sign in and see the installation listed",
		chromedp.Navigate(link.String()),
		chromedp.WaitVisible(chromedp.CSS(inst)),
	)
	if loc := evaluate[string](t, ctx, "location.pathname"); loc != "/" {
		t.Fatalf("after sign-in the browser is at %s, want /", loc)
	}
	within(t, ctx, 30*time.Second, "open the installation page",
		chromedp.Click(chromedp.CSS(inst)),
		chromedp.WaitVisible(chromedp.CSS(`form#pin input[value="`+first+`"]`)),
	)
	screenshot(t, ctx, "installation.png")

	within(t, ctx, 30*time.Second, "pin the older commit",
		chromedp.Click(chromedp.CSS(`form#pin input[value="`+first+`"]`)),
		chromedp.Click(chromedp.CSS(`form#pin button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("status")),
	)
	if loc := evaluate[string](t, ctx, "location.pathname"); !strings.HasPrefix(loc, "/operations/") {
		t.Fatalf("after Change the browser is at %s, want an operation page", loc)
	}
	// A reload would lose this mark: the status must change in place.
	initial := evaluate[string](t, ctx, `window.slipwayMark = "same page"; document.getElementById("status").dataset.status`)
	if initial != "queued" && initial != "running" {
		t.Fatalf("operation page opened with status %q; want it still queued or running", initial)
	}
	within(t, ctx, 2*time.Minute, "see the operation succeed, live",
		chromedp.WaitVisible(chromedp.CSS(`#status[data-status="succeeded"]`)),
	)
	if mark := evaluate[string](t, ctx, `window.slipwayMark || ""`); mark != "same page" {
		t.Fatalf("the operation page reloaded instead of updating through its event stream")
	}
	if text := evaluate[string](t, ctx, `document.getElementById("status").textContent`); text != "succeeded" {
		t.Fatalf("#status shows %q", text)
	}
	within(t, ctx, 10*time.Second, "see the Cancel button go once the operation ended",
		chromedp.WaitNotVisible(chromedp.ID("cancel")),
	)
	if log := evaluate[string](t, ctx, `document.getElementById("log").textContent`); !strings.Contains(log, "now serves commit "+first[:12]) {
		t.Fatalf("the live log lacks the swap:\n%s", log)
	}
	if n := evaluate[int](t, ctx, `document.querySelectorAll('a[href="/installations/hello/production"]').length`); n == 0 {
		t.Fatalf("the operation page has no link back to the installation")
	}
	screenshot(t, ctx, "operation.png")

	d.serves(host, "version one")
	var st struct{ Commit, Channel string }
	d.statusJSON(&st, "hello/production")
	if st.Commit != first || st.Channel != "commit "+first {
		t.Fatalf("status after the rollback: %+v, want commit %s pinned", st, first)
	}

	// A form post with the browser's session but without the form token
	// changes nothing.
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cookies, err := chromedp.Run(tctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
		return res.Cookies, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	var session string
	for _, c := range cookies {
		if c.Name == "slipway_session" {
			session = c.Value
			if !c.HTTPOnly {
				t.Errorf("the session cookie is readable by scripts")
			}
		}
	}
	if session == "" {
		t.Fatalf("no session cookie in the browser: %+v", cookies)
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/installations/hello/production/track",
		strings.NewReader(url.Values{"branch": {"main"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: "slipway_session", Value: session})
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("form post without its token: %d, want 403", resp.StatusCode)
	}
	d.statusJSON(&st, "hello/production")
	if st.Channel != "commit "+first {
		t.Fatalf("a refused form changed the channel to %q", st.Channel)
	}
	var ops []json.RawMessage
	d.sshJSON(&ops, "ops", "--json")
	if len(ops) != 3 {
		t.Fatalf("%d operations after two pushes and one pin, want 3", len(ops))
	}
}

// screenshot saves the page to the test's temp dir, and to
// $SLIPWAY_SCREENSHOTS when set, for a person to look at.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(tctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{t.TempDir()}
	if dir := os.Getenv("SLIPWAY_SCREENSHOTS"); dir != "" {
		dirs = append(dirs, dir)
	}
	for _, dir := range dirs {
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Errorf("save screenshot: %v", err)
		}
	}
}

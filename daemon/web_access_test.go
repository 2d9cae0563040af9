package daemon_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/slipway-dev/slipway/channels"
)

// TestWebViewerSeesOnlyTheirEnvironment signs a viewer of staging in through
// `ssh ... login` and walks the web page in Chromium: staging's installation,
// activity and reports are there, and production is nowhere, not even when
// asked for by name.
func TestWebViewerSeesOnlyTheirEnvironment(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	d := startDaemon(t)
	d.mustSSH("env", "create", "staging")
	d.deployed("shop", "prod v1\n")
	d.mustSSH("install", "shop/staging", "--branch", "main")
	d.serves("shop.staging.localhost", "prod v1")
	week := channels.ISOWeek(time.Now())
	d.mustSSH("report", "make", "staging", week)
	d.mustSSH("report", "make", "production", week)

	vera := d.addUser("vera")
	d.mustSSH("grant", "vera", "staging", "viewer")
	out, errOut, code := d.sshAs(vera, "", "login")
	firstLine, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	link, err := url.Parse(strings.TrimSpace(firstLine))
	if code != 0 || err != nil || !strings.HasPrefix(link.Path, "/login/") {
		t.Fatalf("login as vera: exit %d\n%s\n%s", code, out, errOut)
	}
	link.Host = d.addrs["web"] // the link may name port 0; see TestBrowserRollsBackToAnOlderCommit
	base := "http://" + d.addrs["web"]

	ctx := newBrowser(t)
	within(t, ctx, 30*time.Second, "sign in as vera and see staging's installation",
		chromedp.Navigate(link.String()),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/installations/shop/staging"]`)),
	)
	page := func() string { return evaluate[string](t, ctx, "document.body.innerText") }
	links := func() string {
		return evaluate[string](t, ctx, `Array.from(document.querySelectorAll("a[href], option")).map(a => a.getAttribute("href") || a.value).join(" ")`)
	}
	text := page()
	if !strings.Contains(text, "signed in as vera") || !strings.Contains(text, "shop/staging") || strings.Contains(text, "production") || strings.Contains(links(), "production") {
		t.Fatalf("front page of a viewer of staging:\n%s\nlinks: %s", text, links())
	}

	within(t, ctx, 30*time.Second, "open the activity page from the header",
		chromedp.Click(chromedp.CSS(`nav.pages a[href="/activity"]`)),
		chromedp.WaitVisible(chromedp.CSS(`table.activity`)),
	)
	text = page()
	if !strings.Contains(text, "shop/staging") || !strings.Contains(text, "report") || strings.Contains(text, "production") || strings.Contains(links(), "production") {
		t.Fatalf("activity of a viewer of staging:\n%s\nlinks: %s", text, links())
	}
	if n := evaluate[int](t, ctx, `document.querySelectorAll("table.activity tbody tr").length`); n < 2 {
		t.Fatalf("activity lists %d operations; want staging's deploy and report", n)
	}
	screenshot(t, ctx, "activity.png")

	within(t, ctx, 30*time.Second, "filter the activity by staging and follow the link to its reports",
		chromedp.SetValue(chromedp.CSS(`select[name="env"]`), "staging"),
		chromedp.Click(chromedp.CSS(`form.filters button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/environments/staging/reports"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/environments/staging/reports"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/environments/staging/reports/`+week+`.csv"]`)),
	)

	// Asked for by name, production is like an environment that does not exist.
	within(t, ctx, 30*time.Second, "filter the activity by production",
		chromedp.Navigate(base+"/activity?env=production"),
		chromedp.WaitVisible(chromedp.CSS(`form.filters`)),
	)
	if n := evaluate[int](t, ctx, `document.querySelectorAll("table.activity tbody tr").length`); n != 0 || !strings.Contains(page(), "No operations match this filter") {
		t.Fatalf("activity?env=production lists %d operations:\n%s", n, page())
	}
	for path, title := range map[string]string{
		"/installations/shop/production":   "Unknown installation",
		"/environments/production/reports": "Unknown environment",
	} {
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := chromedp.Run(tctx, chromedp.NavigateResponse(base+path))
		cancel()
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		within(t, ctx, 30*time.Second, "see "+path, chromedp.WaitVisible(chromedp.CSS(`section.card h1`)))
		if h1 := evaluate[string](t, ctx, `document.querySelector("h1").textContent`); resp.Status != http.StatusNotFound || h1 != title {
			t.Errorf("%s: %d %q, want 404 %q:\n%s", path, resp.Status, h1, title, page())
		}
	}

	// Plain HTTP with the browser's session gets the same answers, and
	// staging's report as a file.
	session := browserSession(t, ctx, base)
	get := func(path string) (int, http.Header, string) {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		req.AddCookie(&http.Cookie{Name: "slipway_session", Value: session})
		resp, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(body)
	}
	for _, path := range []string{
		"/installations/shop/production", "/environments/production/reports",
		"/environments/production/reports/" + week + ".csv", "/installations/shop/production/backups",
	} {
		if code, _, body := get(path); code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404\n%s", path, code, body)
		}
	}
	code, h, body := get("/environments/staging/reports/" + week + ".csv")
	if code != 200 || h.Get("Content-Type") != "text/csv; charset=utf-8" ||
		h.Get("Content-Disposition") != `attachment; filename="slipway-staging-`+week+`.csv"` ||
		!strings.HasPrefix(body, "operation_id,type,status,resource,environment") || strings.Contains(body, "production") {
		t.Errorf("staging's report: %d %v\n%s", code, h, body)
	}

	// Removing the key vera signed in with ends her session at once.
	fp := strings.Fields(run(t, d.dir, nil, "ssh-keygen", "-l", "-E", "sha256", "-f", vera+".pub"))[1]
	d.mustSSH("key", "remove", fp)
	if _, _, body := get("/"); strings.Contains(body, "signed in as vera") {
		t.Errorf("vera's session outlived her key:\n%s", body)
	}
}

// browserSession returns the browser's session cookie for base.
func browserSession(t *testing.T, ctx context.Context, base string) string {
	t.Helper()
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cookies, err := chromedp.Run(tctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, tg *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{base + "/"}})
		return res.Cookies, err
	}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies {
		if c.Name == "slipway_session" {
			return c.Value
		}
	}
	t.Fatalf("no session cookie in the browser: %+v", cookies)
	return ""
}

package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func day(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestActivityFilters(t *testing.T) {
	s := newSite(t, Config{})
	ctx := context.Background()
	s.env("production")
	s.env("staging")
	s.store.CreateApp(ctx, "shop")
	if _, err := s.store.CreateInstallation(ctx, "shop", "production", "shop.production.localhost", store.ChannelBranch, "main"); err != nil {
		t.Fatal(err)
	}
	// shop/staging is not installed (any more): its operations keep its name.
	deploy := s.opAt(day("2026-11-02T10:00:00Z"), store.Operation{Type: "deploy", App: "shop", Environment: "production", User: "alice", Commit: "1111111111111111"}, store.StatusSucceeded, "")
	failed := s.opAt(day("2026-11-03T09:00:00Z"), store.Operation{Type: "deploy", App: "shop", Environment: "staging", User: "bob"}, store.StatusFailed, "build step exited with status 1")
	restart := s.opAt(day("2026-11-04T12:00:00Z"), store.Operation{Type: "restart", App: "shop", Environment: "production", User: "bob"}, store.StatusSucceeded, "")
	report := s.opAt(day("2026-11-04T23:59:00Z"), store.Operation{Type: "report", Environment: "staging", User: "slipway", Channel: "2026-W44"}, store.StatusSucceeded, "")
	b := s.signIn(s.user("admin", true))

	resp, body := s.do("GET", "/activity", b, nil)
	if resp.StatusCode != 200 || !slices.Equal(listedOps(body), []int64{report.ID, restart.ID, failed.ID, deploy.ID}) {
		t.Fatalf("activity: %d, lists %v\n%s", resp.StatusCode, listedOps(body), body)
	}
	for _, want := range []string{
		`<a href="/activity" aria-current="page">Activity</a>`,
		`<a href="/installations/shop/production">shop/production</a>`,
		`shop/staging <span class="badge gone"`,
		`title="build step exited with status 1"`,
		`<code>111111111111</code>`, "2026-11-02 10:00:00 UTC", "2s",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("activity page lacks %q", want)
		}
	}
	if strings.Contains(body, `href="/installations/shop/staging"`) {
		t.Errorf("activity links to the deleted installation shop/staging")
	}
	if _, body := s.do("GET", fmt.Sprintf("/operations/%d", failed.ID), b, nil); !strings.Contains(body, `shop/staging <span class="badge gone"`) || strings.Contains(body, `href="/installations/shop/staging"`) {
		t.Errorf("page of an operation on a deleted installation:\n%s", body)
	}
	if _, body := s.do("GET", fmt.Sprintf("/operations/%d", deploy.ID), b, nil); !strings.Contains(body, `href="/installations/shop/production"`) {
		t.Errorf("page of an operation on shop/production has no link to it:\n%s", body)
	}

	for _, tc := range []struct {
		query string
		want  []int64
	}{
		{"type=restart", []int64{restart.ID}},
		{"user=bob", []int64{restart.ID, failed.ID}},
		{"env=staging", []int64{report.ID, failed.ID}},
		{"app=shop", []int64{restart.ID, failed.ID, deploy.ID}},
		{"app=shop/production", []int64{restart.ID, deploy.ID}},
		{"resource=shop/staging", []int64{failed.ID}},
		{"app=shop/staging&env=production", nil},
		{"status=failed", []int64{failed.ID}},
		{"since=2026-11-03", []int64{report.ID, restart.ID, failed.ID}},
		{"until=2026-11-03", []int64{failed.ID, deploy.ID}},
		{"since=2026-11-03&until=2026-11-03", []int64{failed.ID}},
		{"since=2026-11-03T09:00:00Z&until=2026-11-04T12:00:00Z", []int64{failed.ID}},
		{"since=2026-11-04T13:00:00%2B01:00", []int64{report.ID, restart.ID}},
		{"env=staging&type=deploy&user=bob&status=failed&since=2026-11-01&until=2026-11-30", []int64{failed.ID}},
		{"env=nowhere", nil},
	} {
		resp, body := s.do("GET", "/activity?"+tc.query, b, nil)
		if got := listedOps(body); resp.StatusCode != 200 || !slices.Equal(got, tc.want) {
			t.Errorf("activity?%s: %d, lists %v, want %v", tc.query, resp.StatusCode, got, tc.want)
		}
	}

	// The form shows the filter in force.
	_, body = s.do("GET", "/activity?env=staging&type=deploy&user=bob&status=failed&since=2026-11-01", b, nil)
	for _, want := range []string{
		`<option value="staging" selected>`, `<option value="deploy" selected>`, `<option value="failed" selected>`,
		`name="user" value="bob"`, `name="since" value="2026-11-01"`,
		`<a href="/environments/staging/reports">Weekly reports of staging</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("filtered page lacks %q", want)
		}
	}

	for _, query := range []string{"since=yesterday", "until=2026-13-01", "before=x"} {
		resp, body := s.do("GET", "/activity?"+query, b, nil)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `<p class="error" role="alert">`) || len(listedOps(body)) != 0 {
			t.Errorf("activity?%s: %d, want 400 with one line\n%s", query, resp.StatusCode, body)
		}
	}
	if _, body := s.do("GET", "/activity?since=yesterday", b, nil); !strings.Contains(body, "From: &#34;yesterday&#34; is not a date: write it as 2026-11-01") {
		t.Errorf("bad date:\n%s", body)
	}
}

func TestActivityPages(t *testing.T) {
	s := newSite(t, Config{})
	s.env("production")
	s.env("staging")
	start := day("2026-11-02T00:00:00Z")
	var staging []int64 // newest first
	for i := range 2*activityPage + 7 {
		env := "staging"
		if i%3 == 0 {
			env = "production"
		}
		op := s.opAt(start.Add(time.Duration(i)*time.Minute), store.Operation{Type: "deploy", App: "shop", Environment: env, User: "dave"}, store.StatusSucceeded, "")
		if env == "staging" {
			staging = append([]int64{op.ID}, staging...)
		}
	}
	b := s.signIn(s.user("admin", true))

	// Paging keeps the filter, and each page picks up where the last ended.
	var seen []int64
	page := "/activity?env=staging&user=dave"
	for n := 0; page != ""; n++ {
		if n > 5 {
			t.Fatalf("more pages than there are operations")
		}
		resp, body := s.do("GET", page, b, nil)
		got := listedOps(body)
		if resp.StatusCode != 200 || len(got) == 0 || len(got) > activityPage {
			t.Fatalf("%s: %d, %d operations\n%s", page, resp.StatusCode, len(got), body)
		}
		seen = append(seen, got...)
		next := link(body, "Older")
		if next != "" {
			u, err := url.Parse(next)
			if err != nil || u.Path != "/activity" || u.Query().Get("env") != "staging" || u.Query().Get("user") != "dave" ||
				u.Query().Get("before") != fmt.Sprint(got[len(got)-1]) {
				t.Fatalf("older link %q after %v", next, got)
			}
			if len(got) != activityPage {
				t.Fatalf("page %s lists %d and offers an older page", page, len(got))
			}
		}
		if n > 0 && link(body, "← Newest") != "/activity?env=staging&user=dave" {
			t.Errorf("page %s: newest link %q", page, link(body, "← Newest"))
		}
		page = next
	}
	if !slices.Equal(seen, staging) {
		t.Fatalf("pages listed %v,\nwant %v", seen, staging)
	}
}

func TestActivityShowsOnlyVisibleEnvironments(t *testing.T) {
	s := newSite(t, Config{})
	s.env("production")
	s.env("staging")
	at := day("2026-11-02T10:00:00Z")
	prod := s.opAt(at, store.Operation{Type: "deploy", App: "shop", Environment: "production", User: "admin"}, store.StatusSucceeded, "")
	stag := s.opAt(at.Add(time.Minute), store.Operation{Type: "deploy", App: "shop", Environment: "staging", User: "admin"}, store.StatusSucceeded, "")
	s.opAt(at.Add(2*time.Minute), store.Operation{Type: "backup", User: "admin", Channel: "store"}, store.StatusSucceeded, "")
	vera := s.user("vera", false)
	s.grant("vera", "staging", store.RoleViewer)
	b := s.signIn(vera)

	resp, body := s.do("GET", "/activity", b, nil)
	if resp.StatusCode != 200 || !slices.Equal(listedOps(body), []int64{stag.ID}) || strings.Contains(body, "production") {
		t.Fatalf("viewer of staging: %d, lists %v\n%s", resp.StatusCode, listedOps(body), body)
	}
	// Asking for production by name shows nothing, exactly as for an
	// environment that does not exist.
	for _, query := range []string{"env=%s", "app=shop/%s", "resource=shop/%s&type=deploy"} {
		resp, hidden := s.do("GET", "/activity?"+fmt.Sprintf(query, "production"), b, nil)
		_, missing := s.do("GET", "/activity?"+fmt.Sprintf(query, "nowhere"), b, nil)
		if resp.StatusCode != 200 || len(listedOps(hidden)) != 0 || strings.ReplaceAll(hidden, "production", "nowhere") != missing {
			t.Errorf("activity?%s as a viewer of staging: %d, lists %v\n%s\nunlike a missing environment:\n%s",
				fmt.Sprintf(query, "production"), resp.StatusCode, listedOps(hidden), hidden, missing)
		}
	}
	if _, body := s.do("GET", fmt.Sprintf("/activity?before=%d", prod.ID+10), b, nil); slices.Contains(listedOps(body), prod.ID) {
		t.Errorf("paging shows production's operation")
	}

	_, body = s.do("GET", "/", b, nil)
	if !strings.Contains(body, `href="/environments/staging/reports"`) || !strings.Contains(body, `href="/activity?env=staging"`) || strings.Contains(body, "production") {
		t.Errorf("front page of a viewer of staging:\n%s", body)
	}

	// A user with no role sees no activity at all.
	_, body = s.do("GET", "/activity", s.signIn(s.user("guest", false)), nil)
	if len(listedOps(body)) != 0 || !strings.Contains(body, "No operations yet that you may see.") {
		t.Errorf("activity of a user without roles:\n%s", body)
	}
}

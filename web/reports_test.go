package web

import (
	"context"
	"encoding/csv"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

func TestReportsListAndDownload(t *testing.T) {
	s := newSite(t, Config{})
	ctx := context.Background()
	s.store.SetClock(func() time.Time { return day("2026-11-01T00:00:00Z") })
	s.env("production")
	s.env("staging")
	s.store.SetClock(time.Now)
	// Week 45 of 2026 runs from Monday 2 to Sunday 8 November.
	s.opAt(day("2026-11-03T09:00:00Z"), store.Operation{Type: "deploy", App: "shop", Environment: "staging", User: "dave", Commit: "abc123"}, store.StatusSucceeded, "")
	s.opAt(day("2026-11-04T09:00:00Z"), store.Operation{Type: "deploy", App: "shop", Environment: "staging", User: "dave"}, store.StatusFailed, "health check failed, \"GET /\" answered 500")
	s.opAt(day("2026-11-10T09:00:00Z"), store.Operation{Type: "restart", App: "shop", Environment: "staging", User: "dave"}, store.StatusSucceeded, "")
	s.opAt(day("2026-11-03T09:00:00Z"), store.Operation{Type: "deploy", App: "shop", Environment: "production", User: "admin"}, store.StatusSucceeded, "")
	for _, r := range []struct{ env, week string }{{"staging", "2026-W45"}, {"production", "2026-W45"}, {"staging", "2026-W46"}} {
		op, err := s.engine.MakeReport(ctx, r.env, r.week, "slipway")
		if err != nil {
			t.Fatal(err)
		}
		s.wait(op.ID, store.StatusSucceeded)
	}
	want, err := s.store.ReportByWeek(ctx, "staging", "2026-W45")
	if err != nil {
		t.Fatal(err)
	}
	vera := s.user("vera", false)
	s.grant("vera", "staging", store.RoleViewer)
	b := s.signIn(vera)

	resp, body := s.do("GET", "/environments/staging/reports", b, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("reports of staging: %d\n%s", resp.StatusCode, body)
	}
	w46, w45 := strings.Index(body, ">2026-W46<"), strings.Index(body, ">2026-W45<")
	if w46 < 0 || w45 < w46 {
		t.Errorf("reports are not listed newest week first:\n%s", body)
	}
	for _, want := range []string{
		`href="/environments/staging/reports/2026-W45.csv"`, `href="/environments/staging/reports/2026-W46.csv"`,
		"Mon 2026-11-02 to Sun 2026-11-08", "<td>2</td>", "<td>1</td>", when(want.CreatedAt),
		`href="/activity?env=staging"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("reports page lacks %q\n%s", want, body)
		}
	}

	resp, data := s.do("GET", "/environments/staging/reports/2026-W45.csv", b, nil)
	if resp.StatusCode != 200 || data != string(want.CSV) {
		t.Fatalf("download: %d\n%q\nwant\n%q", resp.StatusCode, data, want.CSV)
	}
	for header, value := range map[string]string{
		"Content-Type":        "text/csv; charset=utf-8",
		"Content-Disposition": `attachment; filename="slipway-staging-2026-W45.csv"`,
		"Cache-Control":       "no-store",
	} {
		if got := resp.Header.Get(header); got != value {
			t.Errorf("%s: %q, want %q", header, got, value)
		}
	}
	rows, err := csv.NewReader(strings.NewReader(data)).ReadAll()
	if err != nil || len(rows) != 3 || rows[0][0] != "operation_id" {
		t.Fatalf("CSV (%v):\n%s", err, data)
	}
	if r := rows[2]; r[1] != "deploy" || r[2] != "failed" || r[4] != "staging" || r[9] != `health check failed, "GET /" answered 500` || r[10] != "2026-11-04T09:00:00Z" {
		t.Errorf("second row: %q", r)
	}

	// Production's reports answer like those of an environment that does not exist.
	for _, tc := range []struct{ hidden, missing string }{
		{"/environments/production/reports", "/environments/nowhere/reports"},
		{"/environments/production/reports/2026-W45.csv", "/environments/nowhere/reports/2026-W45.csv"},
	} {
		resp, hidden := s.do("GET", tc.hidden, b, nil)
		_, missing := s.do("GET", tc.missing, b, nil)
		if resp.StatusCode != http.StatusNotFound || strings.Contains(resp.Header.Get("Content-Type"), "csv") ||
			strings.ReplaceAll(hidden, "production", "nowhere") != missing {
			t.Errorf("GET %s: %d\n%s\nunlike a missing environment:\n%s", tc.hidden, resp.StatusCode, hidden, missing)
		}
	}
	for _, path := range []string{"/environments/staging/reports/2026-W40.csv", "/environments/staging/reports/2026-W45", "/environments/staging/reports/x.csv"} {
		if resp, body := s.do("GET", path, b, nil); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "staging has no report for week") {
			t.Errorf("GET %s: %d\n%s", path, resp.StatusCode, body)
		}
	}

	// An admin sees every environment's, and a link to them from the activity page.
	admin := s.signIn(s.user("admin", true))
	if resp, body := s.do("GET", "/environments/production/reports", admin, nil); resp.StatusCode != 200 || !strings.Contains(body, "2026-W45.csv") {
		t.Errorf("admin, reports of production: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := s.do("GET", "/environments/nowhere/reports", admin, nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("admin, reports of a missing environment: %d", resp.StatusCode)
	}
	if _, body := s.do("GET", "/activity?env=production", admin, nil); !strings.Contains(body, `href="/environments/production/reports"`) {
		t.Errorf("activity of production has no link to its reports")
	}
	if _, body := s.do("GET", "/activity?env=production", b, nil); strings.Contains(body, "/reports") {
		t.Errorf("a viewer of staging is offered production's reports")
	}
}

func TestReportsEmpty(t *testing.T) {
	s := newSite(t, Config{})
	s.env("staging")
	b := s.signIn(s.user("admin", true))
	resp, body := s.do("GET", "/environments/staging/reports", b, nil)
	command := "ssh -p 2222 git@127.0.0.1 report make staging " + channels.PreviousWeek(time.Now())
	if resp.StatusCode != 200 || !strings.Contains(body, "No reports of staging yet") || !strings.Contains(body, command) {
		t.Errorf("no reports: %d, want %q\n%s", resp.StatusCode, command, body)
	}
}

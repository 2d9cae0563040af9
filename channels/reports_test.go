package channels

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestWeekBounds(t *testing.T) {
	for _, tc := range []struct{ week, start string }{
		{"2026-W47", "2026-11-16"},
		{"2026-W01", "2025-12-29"},
		{"2020-W53", "2020-12-28"},
	} {
		start, end, err := WeekBounds(tc.week)
		if err != nil || start.Format("2006-01-02") != tc.start || end.Sub(start) != 7*24*time.Hour || ISOWeek(start) != tc.week {
			t.Errorf("WeekBounds(%s) = %v %v %v, want start %s", tc.week, start, end, err, tc.start)
		}
	}
	for _, bad := range []string{"2026-47", "2026-W54", "2021-W53", "W47", "2026-W4"} {
		if _, _, err := WeekBounds(bad); err == nil {
			t.Errorf("WeekBounds(%q) accepted", bad)
		}
	}
	now := time.Date(2026, 11, 23, 0, 5, 0, 0, time.UTC) // a Monday
	if got := PreviousWeek(now); got != "2026-W47" {
		t.Errorf("PreviousWeek(%v) = %s", now, got)
	}
}

func TestReportCSVRoundTrips(t *testing.T) {
	at := time.Date(2026, 11, 17, 9, 0, 0, 0, time.UTC)
	ops := []store.Operation{
		{ID: 2, Type: "deploy", Status: "failed", App: "shop", Environment: "production", User: "bob",
			Reason: "build step \"make, test\" exited\nwith status 2", QueuedAt: at, StartedAt: at, FinishedAt: at.Add(1500 * time.Millisecond)},
		{ID: 1, Type: "switch", Status: "succeeded", App: "shop", Environment: "production", User: "alice", Commit: "abc", Channel: "commit abc", QueuedAt: at},
	}
	data, err := reportCSV(ops)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte("\r\n")) {
		t.Fatal("rows must end with CRLF (RFC 4180)")
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[1][0] != "1" || rows[2][0] != "2" {
		t.Fatalf("rows oldest first with a header: %q", rows)
	}
	if rows[2][9] != ops[0].Reason || rows[2][13] != "1.500" || rows[2][3] != "shop/production" || rows[2][10] != "2026-11-17T09:00:00Z" {
		t.Fatalf("row did not round-trip: %q", rows[2])
	}
}

func TestReportWeeksOutsideTheEnvironmentsLifeAreRefused(t *testing.T) {
	te := newTestEngine(t)
	ctx := context.Background()
	for _, week := range []string{"9999-W01", "0000-W01", "2020-W10", ISOWeek(time.Now().AddDate(0, 0, 14))} {
		if _, err := te.MakeReport(ctx, "prod", week, "alice"); err == nil || !strings.Contains(err.Error(), "outside the life of environment prod") {
			t.Errorf("report make %s: %v", week, err)
		}
	}
	op, err := te.MakeReport(ctx, "prod", ISOWeek(time.Now()), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if op = te.wait(op); op.Status != store.StatusSucceeded {
		t.Fatalf("this week's report: %+v", op)
	}
}

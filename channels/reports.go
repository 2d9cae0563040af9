package channels

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// ISOWeek names the ISO week holding t, e.g. 2026-W47.
func ISOWeek(t time.Time) string {
	y, w := t.UTC().ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

// WeekBounds returns the Monday 00:00 UTC that starts an ISO week and the one after.
func WeekBounds(week string) (time.Time, time.Time, error) {
	var year, wk int
	if _, err := fmt.Sscanf(week, "%4d-W%2d", &year, &wk); err != nil || wk < 1 || wk > 53 || len(week) != 8 {
		return time.Time{}, time.Time{}, failf(ErrInvalidName, "week %q: write it as YYYY-Www, e.g. 2026-W47", week)
	}
	// January 4th is always in week 1.
	jan4 := time.Date(year, 1, 4, 0, 0, 0, 0, time.UTC)
	monday := jan4.AddDate(0, 0, -((int(jan4.Weekday()) + 6) % 7))
	start := monday.AddDate(0, 0, 7*(wk-1))
	if y, w := start.ISOWeek(); y != year || w != wk {
		return time.Time{}, time.Time{}, failf(ErrInvalidName, "%d has no week %d", year, wk)
	}
	return start, start.AddDate(0, 0, 7), nil
}

// PreviousWeek is the ISO week before the one holding now.
func PreviousWeek(now time.Time) string { return ISOWeek(now.UTC().AddDate(0, 0, -7)) }

// reportHeader is the CSV header of activity reports.
var reportHeader = []string{"operation_id", "type", "status", "resource", "environment", "app", "user", "commit", "channel",
	"reason", "queued_at", "started_at", "finished_at", "duration_seconds"}

// MakeReport writes the activity report of environment env for an ISO week
// as a `report` operation. It includes operations on resources deleted since:
// operations keep the names of what they touched.
func (e *Engine) MakeReport(ctx context.Context, env, week, user string) (store.Operation, error) {
	start, end, err := WeekBounds(week)
	if err != nil {
		return store.Operation{}, err
	}
	environment, err := e.store.EnvironmentByName(ctx, env)
	if err != nil {
		return store.Operation{}, failf(ErrUnknownEnvironment, "unknown environment: %s", env)
	}
	// Only weeks the environment lived through have anything to report.
	if end.Before(environment.CreatedAt) || start.After(e.store.Now()) {
		return store.Operation{}, failf(ErrInvalidName, "week %s is outside the life of environment %s (%s to this week)", week, env, ISOWeek(environment.CreatedAt))
	}
	op := store.Operation{Type: store.OpReport, Environment: env, User: user, Channel: week}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		ops, err := e.store.Operations(ctx, store.OperationFilter{Environment: env, Since: start, Until: end})
		if err != nil {
			return err
		}
		data, err := reportCSV(ops)
		if err != nil {
			return err
		}
		if err := e.store.SaveReport(ctx, store.Report{Environment: env, Week: week, Rows: len(ops), CSV: data, OperationID: l.id}); err != nil {
			return fmt.Errorf("save report: %w", err)
		}
		l.Logf("-----> Activity report %s for %s: %d operations from %s to %s", week, env, len(ops),
			start.Format(time.RFC3339), end.Format(time.RFC3339))
		return nil
	})
}

// MakeWeeklyReports writes last week's report for every environment; the cron
// job calls it.
func (e *Engine) MakeWeeklyReports(ctx context.Context, now time.Time) []store.Operation {
	envs, err := e.store.Environments(ctx)
	if err != nil {
		e.log.Error("weekly reports", "err", err)
		return nil
	}
	var ops []store.Operation
	week := PreviousWeek(now)
	_, end, _ := WeekBounds(week)
	for _, env := range envs {
		if !env.CreatedAt.Before(end) {
			continue // made since: it has no last week to report
		}
		op, err := e.MakeReport(ctx, env.Name, week, "slipway")
		if err != nil {
			e.log.Error("weekly report", "environment", env.Name, "week", week, "err", err)
			continue
		}
		ops = append(ops, op)
	}
	return ops
}

// reportCSV renders operations oldest first as RFC 4180 CSV (CRLF line ends,
// fields with commas, quotes or newlines quoted).
func reportCSV(ops []store.Operation) ([]byte, error) {
	var buf bytes.Buffer
	w := csv.NewWriter(&buf)
	w.UseCRLF = true
	w.Write(reportHeader)
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for i := len(ops) - 1; i >= 0; i-- {
		o := ops[i]
		duration := ""
		if !o.StartedAt.IsZero() && !o.FinishedAt.IsZero() {
			duration = strconv.FormatFloat(o.FinishedAt.Sub(o.StartedAt).Seconds(), 'f', 3, 64)
		}
		w.Write([]string{strconv.FormatInt(o.ID, 10), string(o.Type), o.Status, o.Resource(), o.Environment, o.App, o.User,
			o.Commit, o.Channel, o.Reason, stamp(o.QueuedAt), stamp(o.StartedAt), stamp(o.FinishedAt), duration})
	}
	w.Flush()
	return buf.Bytes(), w.Error()
}

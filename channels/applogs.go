package channels

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/applog"
	"github.com/slipway-dev/slipway/store"
)

// AppLogRequest is what a reader of an installation's app logs asked for.
type AppLogRequest struct {
	Filter applog.Filter
	Follow bool // go on with new lines until ctx ends
}

// AppLogs hands fn what the installation's processes printed, with the
// supervisors' events, oldest first; with Follow it goes on with new lines
// until ctx ends. Each reading is recorded as an operation of type logs, so
// the activity shows who read an app's output. Secret values are masked.
func (e *Engine) AppLogs(ctx context.Context, app, env, user string, req AppLogRequest, fn func(applog.Record) error) error {
	if e.appLogs == nil {
		return fmt.Errorf("this daemon keeps no app logs")
	}
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return err
	}
	if err := e.recordLogsReading(ctx, inst, user, req); err != nil {
		return err
	}
	hide, err := e.secretsOf(ctx, inst.ID)
	if err != nil {
		return err
	}
	// Follow first, so nothing printed between the read and the follow is lost.
	var live <-chan applog.Record
	if req.Follow {
		ch, stop, err := e.appLogs.Follow(inst.ID, applog.Filter{Process: req.Filter.Process})
		if err != nil {
			return err
		}
		defer stop()
		live = ch
	}
	recs, err := e.appLogs.Read(inst.ID, req.Filter)
	if err != nil {
		return err
	}
	var last time.Time
	for _, r := range recs {
		last = r.Time
		if err := fn(masked(r, hide)); err != nil {
			return err
		}
	}
	return followAppLogs(ctx, live, last, hide, fn)
}

// followAppLogs hands fn the records of live until ctx ends, skipping those
// the read before it already gave (appended before last).
func followAppLogs(ctx context.Context, live <-chan applog.Record, last time.Time, hide *redactor, fn func(applog.Record) error) error {
	if live == nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case r, ok := <-live:
			if !ok {
				return nil
			}
			if r.Time.Before(last) {
				continue
			}
			if err := fn(masked(r, hide)); err != nil {
				return err
			}
		}
	}
}

func masked(r applog.Record, hide *redactor) applog.Record {
	r.Line = hide.redact(r.Line)
	return r
}

// recordLogsReading stores the reading as a finished operation of type logs.
func (e *Engine) recordLogsReading(ctx context.Context, inst store.Installation, user string, req AppLogRequest) error {
	op, err := e.store.CreateOperation(ctx, store.Operation{Type: store.OpLogs, App: inst.App, Environment: inst.Environment,
		InstallationID: inst.ID, User: user, Commit: inst.Commit, Channel: inst.Channel()})
	if err != nil {
		return fmt.Errorf("record operation: %w", err)
	}
	e.store.StartOperation(ctx, op.ID)
	l := &opLog{hub: e.logs, id: op.ID}
	l.Logf("-----> %s read the app logs of %s (%s)", user, inst.Resource(), describeReading(req))
	l.Flush()
	e.finish(op, store.StatusSucceeded, "")
	return nil
}

func describeReading(req AppLogRequest) string {
	var parts []string
	if f := req.Filter; f.Last > 0 {
		parts = append(parts, fmt.Sprintf("last %d lines", f.Last))
	} else {
		parts = append(parts, "every line kept")
	}
	if p := req.Filter.Process; p != "" {
		parts = append(parts, "process "+p)
	}
	if s := req.Filter.Since; !s.IsZero() {
		parts = append(parts, "since "+s.UTC().Format(time.RFC3339))
	}
	if req.Follow {
		parts = append(parts, "following")
	}
	return strings.Join(parts, ", ")
}

// secretsOf is a redactor of the installation's secret values as stored now.
// Without them nothing may be shown or stored: the error says so.
func (e *Engine) secretsOf(ctx context.Context, installationID int64) (*redactor, error) {
	vars, err := e.store.Config(ctx, installationID)
	if err != nil {
		return nil, fmt.Errorf("read the secrets to mask in app logs: %w", err)
	}
	r := &redactor{}
	for _, v := range vars {
		if v.Secret {
			r.add(v.Value)
		}
	}
	return r, nil
}

// appOutputLines is how much of a failed new instance's output its deploy
// log shows.
const appOutputLines = 20

// showAppOutput writes the last lines the new instance's processes printed
// into the deploy's log: why an app never became healthy is usually there.
func (d *deployment) showAppOutput() {
	e := d.e
	if e.appLogs == nil {
		return
	}
	time.Sleep(200 * time.Millisecond) // the collector's last lines
	recs, err := e.appLogs.Read(d.inst.ID, applog.Filter{})
	if err != nil {
		return
	}
	var mine []applog.Record
	for _, r := range recs {
		if r.Instance == d.name {
			mine = append(mine, r)
		}
	}
	if len(mine) == 0 {
		d.l.Logf("       %s printed nothing", d.name)
		return
	}
	if len(mine) > appOutputLines {
		mine = mine[len(mine)-appOutputLines:]
	}
	d.l.Logf("-----> The last lines %s printed (all of them: logs %s --app):", d.name, d.inst.Resource())
	for _, r := range mine {
		d.l.Logf("       %s %s: %s", r.Time.UTC().Format("15:04:05.000"), r.Process, r.Line)
	}
}

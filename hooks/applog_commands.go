package hooks

import (
	"encoding/json"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/applog"
)

// defaultAppLogLines is how many lines `logs APP/ENV --app` prints without -n,
// as `heroku logs` does.
const defaultAppLogLines = 100

// appLogFlags are the flags of `logs APP/ENV --app`.
type appLogFlags struct {
	last    int
	since   string
	process string
}

func (f *appLogFlags) register(fs *flag.FlagSet) {
	fs.IntVar(&f.last, "n", defaultAppLogLines, "")
	fs.StringVar(&f.since, "since", "", "")
	fs.StringVar(&f.process, "process", "", "")
}

// filter turns the flags into what the engine reads, or says what is wrong.
func (f appLogFlags) filter(now time.Time) (applog.Filter, error) {
	if f.last < 0 {
		return applog.Filter{}, usageError("-n is a number of lines, 0 for every line kept")
	}
	out := applog.Filter{Last: f.last, Process: f.process}
	if f.since != "" {
		d, err := time.ParseDuration(f.since)
		switch {
		case err == nil && d > 0:
			out.Since = now.Add(-d)
		case err == nil:
			return applog.Filter{}, usageError("--since is a positive duration such as 30m or 2h, or a time such as 2026-12-01T10:00:00Z")
		default:
			t, terr := time.Parse(time.RFC3339, f.since)
			if terr != nil {
				return applog.Filter{}, usageError("--since is a duration such as 30m or 2h, or a time such as 2026-12-01T10:00:00Z")
			}
			out.Since = t
		}
	}
	if f.process != "" && !channels.ValidProcessName(f.process) {
		return applog.Filter{}, usageError(fmt.Sprintf("%q is not a process type (letters, digits, - and _)", f.process))
	}
	return out, nil
}

// appLogs prints the app's own output for `logs APP/ENV --app`.
func (s *Server) appLogs(c *call, resource string, f appLogFlags, follow, asJSON bool) error {
	app, env, err := channels.ParseResource(resource)
	if err != nil {
		return err
	}
	filter, err := f.filter(time.Now())
	if err != nil {
		return err
	}
	// --json: an array of records, or with -f one record a line as they come.
	enc := json.NewEncoder(c.out)
	records := []appLineView{}
	err = s.engine.AppLogs(c.ctx, app, env, c.user.Name, channels.AppLogRequest{Filter: filter, Follow: follow}, func(r applog.Record) error {
		if asJSON && follow {
			return enc.Encode(viewAppLine(r))
		}
		if asJSON {
			records = append(records, viewAppLine(r))
			return nil
		}
		_, err := fmt.Fprintln(c.out, formatAppLine(r))
		return err
	})
	if err != nil && c.ctx.Err() != nil {
		return nil // the reader went away
	}
	if err == nil && asJSON && !follow {
		return writeJSON(c.out, records)
	}
	return err
}

// appLineView is the --json shape of a line an app's process printed.
type appLineView struct {
	Time     time.Time `json:"time"`
	Instance string    `json:"instance"`
	Process  string    `json:"process"`
	Stream   string    `json:"stream"` // stdout, stderr or event (the supervisor's own)
	Line     string    `json:"line"`
}

func viewAppLine(r applog.Record) appLineView {
	return appLineView{Time: r.Time, Instance: r.Instance, Process: r.Process, Stream: r.Stream, Line: strings.TrimRight(r.Line, "\r")}
}

// formatAppLine is one line as people read it: time, process and instance,
// then what the process printed; the supervisor's own events say so.
func formatAppLine(r applog.Record) string {
	src := r.Process + "[" + r.Instance + "]"
	if r.Stream == "event" && r.Process != "slipway" {
		src += " slipway"
	}
	return r.Time.UTC().Format("2006-01-02T15:04:05.000Z") + " " + src + ": " + strings.TrimRight(r.Line, "\r")
}

package web

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/applog"
)

// appLogsFor bounds one stream of an app's logs. Each stream is a reading of
// the app's logs, recorded as an operation, so it lasts much longer than an
// operation log's stream.
const appLogsFor = 10 * time.Minute

// appLogLines is how many kept lines a new stream starts with.
const appLogLines = 200

// appLogEvents streams an installation's app logs as Server-Sent Events: the
// newest kept lines, then new ones as the processes print them. Each event's
// ID is the line's time, so a browser that reconnects resumes after it.
func (s *server) appLogEvents(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	app, env := r.PathValue("app"), r.PathValue("env")
	if !s.engine.Can(ctx, sess.User, env, channels.ActionView) {
		http.NotFound(w, r)
		return
	}
	req := channels.AppLogRequest{Filter: applog.Filter{Last: appLogLines}, Follow: true}
	var after time.Time
	if last, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil {
		after = time.Unix(0, last)
		req.Filter = applog.Filter{Since: after}
	}
	send, err := startEvents(w)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, appLogsFor)
	defer cancel()
	err = s.engine.AppLogs(ctx, app, env, sess.User.Name, req, func(rec applog.Record) error {
		if !rec.Time.After(after) {
			return nil // sent before the reconnect
		}
		return send(strconv.FormatInt(rec.Time.UnixNano(), 10), "", appLogLine(rec))
	})
	if err != nil && ctx.Err() == nil {
		msg := "the app logs could not be read; the daemon log says why"
		if _, m, ok := channels.ForPeople(err); ok {
			msg = m
		} else {
			s.log.Error("web: app logs", "installation", app+"/"+env, "err", err)
		}
		send("", "problem", msg)
	}
}

// appLogLine is one line as the page shows it.
func appLogLine(r applog.Record) string {
	src := r.Process + "[" + r.Instance + "]"
	if r.Stream == "event" && r.Process != "slipway" {
		src += " slipway"
	}
	return r.Time.UTC().Format("15:04:05.000") + " " + src + ": " + r.Line
}

package web

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// pages are the parsed templates, one per page, each with the layout.
type pages map[string]*template.Template

var pageNames = []string{"signin", "message", "index", "installation", "operation", "activity", "reports", "backups"}

// partials are templates more than one page uses; every page gets them.
var partials = []string{"templates/layout.html", "templates/backup_list.html"}

func parsePages() pages {
	funcs := template.FuncMap{
		"short":    shortID,
		"when":     when,
		"unix":     func(s int64) time.Time { return time.Unix(s, 0) },
		"finished": finished,
		"channel":  channel,
		"took":     took,
		"size":     size,
		"week":     weekDays,
	}
	p := pages{}
	for _, name := range pageNames {
		p[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFiles, append(partials, "templates/"+name+".html")...))
	}
	return p
}

// base is what the layout needs from every page.
type base struct {
	Title string
	User  *store.User // nil when signed out
	Nav   string      // which header link is this page's
	CSRF  string
	Error string // one line about what just went wrong
}

func (s *server) base(sess *session, title string) base {
	if sess == nil {
		return base{Title: title}
	}
	return base{Title: title, User: &sess.User, CSRF: sess.CSRFToken}
}

type signInData struct {
	base
	UsedUp  bool   // the link was used already or is too old
	Command string // the SSH command that prints a sign-in link
}

type messageData struct {
	base
	Message string
}

// render writes a page; a template that fails leaves a plain 500, never half a page.
func (s *server) render(w http.ResponseWriter, status int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].Execute(&buf, data); err != nil {
		s.log.Error("render page", "page", page, "err", err)
		http.Error(w, "slipway could not draw this page; the daemon log says why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// message renders a page that says one thing.
func (s *server) message(w http.ResponseWriter, sess *session, status int, title, msg string) {
	s.render(w, status, "message", messageData{base: s.base(sess, title), Message: msg})
}

// internal logs a failure on slipway's side and tells the person only that.
func (s *server) internal(w http.ResponseWriter, r *http.Request, sess *session, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		return // the browser went away
	}
	s.log.Error("web: "+what, "path", r.URL.Path, "err", err)
	s.message(w, sess, http.StatusInternalServerError, "Something went wrong",
		"Something went wrong on slipway's side; the daemon log says what.")
}

// userError turns an error from the engine into the status and the one line a
// person reads. ok is false for failures on slipway's side (the store, the
// disk), which are logged and not shown.
func userError(err error) (status int, msg string, ok bool) {
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return 0, "", false
	case errors.Is(err, channels.ErrShuttingDown):
		return http.StatusServiceUnavailable, "slipway is shutting down; try again once it is back", true
	case errors.Is(err, channels.ErrNotRunning):
		return http.StatusConflict, "The operation is not queued or running any more.", true
	}
	kind, msg, ok := channels.ForPeople(err)
	if !ok {
		return 0, "", false
	}
	return kind.HTTPStatus(), msg, true
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// when formats a time for people: UTC, to the second.
func when(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// channel renders "commit 1a2b…" with a short commit ID; branches stay whole.
func channel(c string) string {
	if ref, ok := strings.CutPrefix(c, store.ChannelCommit+" "); ok {
		return "pinned commit " + shortID(ref)
	}
	return c
}

// finished says when an operation ended and how long it ran.
func finished(op store.Operation) string {
	if op.FinishedAt.IsZero() {
		return when(op.FinishedAt)
	}
	if op.StartedAt.IsZero() {
		return when(op.FinishedAt) + ", before it started"
	}
	return when(op.FinishedAt) + ", after " + op.FinishedAt.Sub(op.StartedAt).Round(100*time.Millisecond).String()
}

// took says how long a finished operation ran, or nothing.
func took(op store.Operation) string {
	if op.StartedAt.IsZero() || op.FinishedAt.IsZero() {
		return ""
	}
	return op.FinishedAt.Sub(op.StartedAt).Round(100 * time.Millisecond).String()
}

// size formats a byte count the way people read file sizes.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}

// weekDays names the days an ISO week covers: "Mon 2026-11-16 to Sun 2026-11-22".
func weekDays(week string) string {
	start, end, err := channels.WeekBounds(week)
	if err != nil {
		return ""
	}
	return start.Format("Mon 2006-01-02") + " to " + end.AddDate(0, 0, -1).Format("Mon 2006-01-02")
}

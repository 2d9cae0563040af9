package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// activityPage is how many operations one page of activity lists.
const activityPage = 50

// operationTypes and operationStatuses fill the filter form's choices.
var (
	operationTypes    = typeNames()
	operationStatuses = []string{store.StatusQueued, store.StatusRunning, store.StatusSucceeded,
		store.StatusFailed, store.StatusCancelled}
)

func typeNames() []string {
	var out []string
	for _, t := range store.OpTypes {
		out = append(out, string(t))
	}
	return out
}

// activityQuery is the activity page's filter as the browser gave it, kept as
// text so the form and the paging links carry it on unchanged.
type activityQuery struct {
	Env, App, Type, User, Status, Since, Until string
}

func readActivityQuery(q url.Values) activityQuery {
	get := func(k string) string { return strings.TrimSpace(q.Get(k)) }
	a := activityQuery{Env: get("env"), App: get("app"), Type: get("type"), User: get("user"),
		Status: get("status"), Since: get("since"), Until: get("until")}
	if a.App == "" {
		a.App = get("resource") // the name `ops` prints, APP/ENV
	}
	return a
}

// values encodes the filter for a link, leaving out what is empty.
func (a activityQuery) values() url.Values {
	v := url.Values{}
	for k, val := range map[string]string{"env": a.Env, "app": a.App, "type": a.Type, "user": a.User,
		"status": a.Status, "since": a.Since, "until": a.Until} {
		if val != "" {
			v.Set(k, val)
		}
	}
	return v
}

// filter turns the query into a store filter. none is true when the query
// cannot match anything (APP/ENV and env name two environments).
func (a activityQuery) filter() (f store.OperationFilter, none bool, err error) {
	f = store.OperationFilter{App: a.App, Environment: a.Env, Type: a.Type, User: a.User}
	if app, env, ok := strings.Cut(a.App, "/"); ok {
		f.App = app
		if a.Env != "" && a.Env != env {
			none = true
		}
		f.Environment = env
	}
	if a.Status != "" {
		f.Statuses = []string{a.Status}
	}
	if f.Since, err = parseDay(a.Since, false); err != nil {
		return f, false, fmt.Errorf("From: %w", err)
	}
	if f.Until, err = parseDay(a.Until, true); err != nil {
		return f, false, fmt.Errorf("To: %w", err)
	}
	return f, none, nil
}

// parseDay reads a date (YYYY-MM-DD, a day in UTC) or an RFC 3339 time. A date
// that ends a range counts whole: "to 2026-11-03" takes in that day.
func parseDay(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not a date: write it as 2026-11-01 (UTC) or as an RFC 3339 time, 2026-11-01T09:30:00Z.", v)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

type activityData struct {
	base
	Query        activityQuery
	Environments []option
	Types        []option
	Statuses     []option
	Operations   []store.Operation
	Installed    map[string]bool // APP/ENV of installations that still exist
	Paged        bool            // this is not the newest page
	Newest       string          // link to the newest page with the same filter
	Older        string          // link to the next page, "" on the last
	Reports      string          // link to the env filter's reports, when the user may read them
}

// option is one choice of a filter's select.
type option struct {
	Value    string
	Selected bool
}

// options offers known choices with chosen selected; a chosen value that is
// not among them (typed into the address) is offered too, so the form shows
// the filter in force.
func options(known []string, chosen string) []option {
	var out []option
	for _, k := range known {
		out = append(out, option{Value: k, Selected: k == chosen})
	}
	if chosen != "" && !slices.Contains(known, chosen) {
		out = append(out, option{Value: chosen, Selected: true})
	}
	return out
}

// activity lists the operations the user may see, newest first, filtered and
// paged. An environment the user may not see filters down to nothing, exactly
// like one that does not exist.
func (s *server) activity(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	q := readActivityQuery(r.URL.Query())
	envs, err := s.viewableEnvironments(ctx, sess.User)
	if err != nil {
		s.internal(w, r, sess, "list environments", err)
		return
	}
	d := activityData{
		base:         s.base(sess, "Activity"),
		Query:        q,
		Environments: options(envs, q.Env),
		Types:        options(operationTypes, q.Type),
		Statuses:     options(operationStatuses, q.Status),
	}
	d.Nav = "activity"
	if q.Env != "" && slices.Contains(envs, q.Env) {
		d.Reports = "/environments/" + url.PathEscape(q.Env) + "/reports"
	}
	f, none, err := q.filter()
	if err != nil {
		d.Error = err.Error()
		s.render(w, http.StatusBadRequest, "activity", d)
		return
	}
	before := int64(0)
	if raw := r.URL.Query().Get("before"); raw != "" {
		before, err = strconv.ParseInt(raw, 10, 64)
		if err != nil || before <= 0 {
			d.Error = fmt.Sprintf("%q is not an operation number to page back from.", raw)
			s.render(w, http.StatusBadRequest, "activity", d)
			return
		}
		d.Paged = true
		d.Newest = "/activity" + encodeQuery(q.values())
	}
	if !none {
		f.Environments = s.engine.VisibleEnvironments(ctx, sess.User)
		f.BeforeID = before
		f.Limit = activityPage + 1 // one more says whether there is an older page
		if d.Operations, err = s.store.Operations(ctx, f); err != nil {
			s.internal(w, r, sess, "list operations", err)
			return
		}
	}
	if len(d.Operations) > activityPage {
		d.Operations = d.Operations[:activityPage]
		v := q.values()
		v.Set("before", strconv.FormatInt(d.Operations[activityPage-1].ID, 10))
		d.Older = "/activity" + encodeQuery(v)
	}
	if d.Installed, err = s.installed(ctx); err != nil {
		s.internal(w, r, sess, "list installations", err)
		return
	}
	s.render(w, http.StatusOK, "activity", d)
}

func encodeQuery(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// installed says which installations exist now, so operations on deleted
// ones are listed with their names but without a link to nowhere.
func (s *server) installed(ctx context.Context) (map[string]bool, error) {
	all, err := s.store.Installations(ctx, "")
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, inst := range all {
		out[inst.App+"/"+inst.Environment] = true
	}
	return out, nil
}

// viewableEnvironments names the environments whose activity the user may read.
func (s *server) viewableEnvironments(ctx context.Context, u store.User) ([]string, error) {
	all, err := s.store.Environments(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, env := range all {
		if s.engine.Can(ctx, u, env.Name, channels.ActionView) {
			out = append(out, env.Name)
		}
	}
	return out, nil
}

package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// streamFor bounds one event stream. The browser reconnects by itself and
// resumes after the last line it got, so a stream never holds up a shutdown
// (which waits for open requests) for longer than this.
const streamFor = 15 * time.Second

type operationData struct {
	base
	Op         store.Operation
	Log        []store.LogLine
	LastSeq    int64
	CanCancel  bool
	Deleted    bool  // its installation is gone; the name stays, without a link
	Earlier    bool  // older lines than these are stored
	EarlierSeq int64 // the page before starts before this line
	Page       bool  // an older page: not followed live
}

// logPage is how many log lines one operation page shows.
const logPage = 500

// Installation names the operation's installation for the link back, or is
// empty when the operation is not about one.
func (d operationData) Installation() string {
	if d.Op.App == "" || d.Op.Environment == "" {
		return ""
	}
	return d.Op.App + "/" + d.Op.Environment
}

// visibleOperation reads the operation named in the path, answering 404 when
// it does not exist or the user may not see its environment.
func (s *server) visibleOperation(w http.ResponseWriter, r *http.Request, sess *session) (store.Operation, bool) {
	raw := r.PathValue("id")
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id <= 0 {
		s.unknownOperation(w, r, sess, raw)
		return store.Operation{}, false
	}
	op, err := s.store.Operation(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !s.engine.Can(r.Context(), sess.User, op.Environment, channels.ActionView) {
		s.unknownOperation(w, r, sess, raw)
		return store.Operation{}, false
	}
	if err != nil {
		s.internal(w, r, sess, "read operation", err)
		return store.Operation{}, false
	}
	return op, true
}

func (s *server) unknownOperation(w http.ResponseWriter, r *http.Request, sess *session, id string) {
	s.message(w, sess, http.StatusNotFound, "Unknown operation", fmt.Sprintf("There is no operation %s.", id))
}

func (s *server) operation(w http.ResponseWriter, r *http.Request, sess *session) {
	op, ok := s.visibleOperation(w, r, sess)
	if ok {
		s.operationPage(w, r, sess, op, http.StatusOK, "")
	}
}

func (s *server) operationPage(w http.ResponseWriter, r *http.Request, sess *session, op store.Operation, status int, problem string) {
	// A long log is shown a page at a time, newest page first; only the
	// newest page follows the running operation.
	before, _ := strconv.ParseInt(r.URL.Query().Get("before"), 10, 64)
	lines, more, err := s.store.LogTail(r.Context(), op.ID, before, logPage)
	if err != nil {
		s.internal(w, r, sess, "read operation log", err)
		return
	}
	d := operationData{
		base: s.base(sess, fmt.Sprintf("Operation %d", op.ID)),
		Op:   op, Log: lines, Earlier: more, Page: before > 0,
		CanCancel: !op.Done() && s.engine.Can(r.Context(), sess.User, op.Environment, channels.ActionDeploy),
	}
	if more {
		d.EarlierSeq = lines[0].Seq
	}
	d.Error = problem
	if d.Installation() != "" {
		_, err := s.store.InstallationByName(r.Context(), op.App, op.Environment)
		d.Deleted = errors.Is(err, store.ErrNotFound)
	}
	if len(lines) > 0 {
		d.LastSeq = lines[len(lines)-1].Seq
	}
	s.render(w, status, "operation", d)
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request, sess *session) {
	op, ok := s.visibleOperation(w, r, sess)
	if !ok {
		return
	}
	if !s.engine.Can(r.Context(), sess.User, op.Environment, channels.ActionDeploy) {
		s.operationPage(w, r, sess, op, http.StatusForbidden,
			fmt.Sprintf("You may not cancel operations in %s: ask an admin of %s for the deployer role.", op.Environment, op.Environment))
		return
	}
	if err := s.engine.Cancel(op.ID, sess.User.Name); err != nil {
		status, msg, ok := userError(err)
		if !ok {
			s.internal(w, r, sess, "cancel operation", err)
			return
		}
		s.operationPage(w, r, sess, op, status, msg)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/operations/%d", op.ID), http.StatusSeeOther)
}

// startEvents begins a Server-Sent Events response; send writes one event
// (an empty id or event name is left out) and flushes it.
func startEvents(w http.ResponseWriter) (send func(id, event, data string) error, err error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send = func(id, event, data string) error {
		var b strings.Builder
		if id != "" {
			b.WriteString("id: " + id + "\n")
		}
		if event != "" {
			b.WriteString("event: " + event + "\n")
		}
		for _, line := range strings.Split(strings.ReplaceAll(data, "\r", ""), "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
		if _, err := w.Write([]byte(b.String())); err != nil {
			return err
		}
		return rc.Flush()
	}
	_, err = w.Write([]byte("retry: 1000\n\n"))
	return send, err
}

// events streams an operation's log as Server-Sent Events: one event per line
// with the line's seq as its ID, so a browser that reconnects sends
// Last-Event-ID and resumes after it. When the operation ends, a "status"
// event carries its final status (after a "reason" event when it has one).
func (s *server) events(w http.ResponseWriter, r *http.Request, sess *session) {
	op, ok := s.visibleOperation(w, r, sess)
	if !ok {
		return
	}
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		after, _ = strconv.ParseInt(last, 10, 64)
	}
	send, err := startEvents(w)
	if err != nil {
		return
	}

	ctx, cancel := context.WithTimeout(r.Context(), streamFor)
	defer cancel()
	final, err := s.engine.Follow(ctx, op.ID, after, func(l store.LogLine) error {
		return send(strconv.FormatInt(l.Seq, 10), "", l.Text)
	})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error("web: follow operation", "op", op.ID, "err", err)
		}
		return // the browser reconnects and resumes
	}
	if final.Reason != "" {
		send("", "reason", final.Reason)
	}
	send("", "finished", finished(final))
	send("", "status", final.Status)
}

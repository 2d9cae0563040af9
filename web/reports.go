package web

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

type reportsData struct {
	base
	Environment string
	Reports     []store.Report
	Command     string // how an admin makes one now
}

// viewableEnvironment answers 404 unless the environment exists and the user
// may read its activity; the two cases read the same.
func (s *server) viewableEnvironment(w http.ResponseWriter, r *http.Request, sess *session, env string) bool {
	if !s.engine.Can(r.Context(), sess.User, env, channels.ActionView) {
		s.unknownEnvironment(w, sess, env)
		return false
	}
	_, err := s.store.EnvironmentByName(r.Context(), env)
	if errors.Is(err, store.ErrNotFound) {
		s.unknownEnvironment(w, sess, env)
		return false
	}
	if err != nil {
		s.internal(w, r, sess, "read environment", err)
		return false
	}
	return true
}

func (s *server) unknownEnvironment(w http.ResponseWriter, sess *session, env string) {
	s.message(w, sess, http.StatusNotFound, "Unknown environment", fmt.Sprintf("There is no environment %s.", env))
}

// reports lists an environment's weekly activity reports.
func (s *server) reports(w http.ResponseWriter, r *http.Request, sess *session) {
	env := r.PathValue("env")
	if !s.viewableEnvironment(w, r, sess, env) {
		return
	}
	list, err := s.store.Reports(r.Context(), env)
	if err != nil {
		s.internal(w, r, sess, "list reports", err)
		return
	}
	d := reportsData{base: s.base(sess, "Reports of "+env), Environment: env, Reports: list,
		Command: s.sshCommand(r, "report make "+env+" "+channels.PreviousWeek(time.Now()))}
	d.Nav = "activity"
	s.render(w, http.StatusOK, "reports", d)
}

// reportCSV serves one week's report as the CSV file `report get` prints.
func (s *server) reportCSV(w http.ResponseWriter, r *http.Request, sess *session) {
	env := r.PathValue("env")
	if !s.viewableEnvironment(w, r, sess, env) {
		return
	}
	week, ok := strings.CutSuffix(r.PathValue("file"), ".csv")
	rep, err := s.store.ReportByWeek(r.Context(), env, week)
	if !ok || errors.Is(err, store.ErrNotFound) {
		s.message(w, sess, http.StatusNotFound, "Unknown report",
			fmt.Sprintf("%s has no report for week %s.", env, strings.TrimSuffix(r.PathValue("file"), ".csv")))
		return
	}
	if err != nil {
		s.internal(w, r, sess, "read report", err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	// Environment names and weeks hold only letters, digits and dashes, so
	// the file name needs no escaping beyond its quotes.
	h.Set("Content-Disposition", `attachment; filename="slipway-`+rep.Environment+"-"+rep.Week+`.csv"`)
	h.Set("Content-Length", strconv.Itoa(len(rep.CSV)))
	w.WriteHeader(http.StatusOK)
	w.Write(rep.CSV)
}

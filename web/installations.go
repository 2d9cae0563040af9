package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

type indexData struct {
	base
	Installations []store.Installation
	Environments  []string             // whose activity and reports the user may read
	BackupsOnly   []store.Installation // whose backups, and nothing else, the user may see
	Command       string               // how to install something, when nothing is
}

// index lists the installations the user may see, and the environments whose
// activity and reports the user may read.
func (s *server) index(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	all, err := s.store.Installations(ctx, "")
	if err != nil {
		s.internal(w, r, sess, "list installations", err)
		return
	}
	d := indexData{base: s.base(sess, "Installations")}
	d.Nav = "installations"
	for _, inst := range all {
		switch {
		case s.engine.Can(ctx, sess.User, inst.Environment, channels.ActionView):
			d.Installations = append(d.Installations, inst)
		case s.engine.Can(ctx, sess.User, inst.Environment, channels.ActionBackup):
			d.BackupsOnly = append(d.BackupsOnly, inst)
		}
	}
	if d.Environments, err = s.viewableEnvironments(ctx, sess.User); err != nil {
		s.internal(w, r, sess, "list environments", err)
		return
	}
	d.Command = s.sshCommand(r, "install APP/ENV --branch main")
	s.render(w, http.StatusOK, "index", d)
}

type installationData struct {
	base
	channels.History
	Pinned     bool
	CanDeploy  bool
	Operations []store.Operation
	Notice     string                // the page is shown without what could not be read
	Backups    *backupList           // nil unless the user may list backups here
	Names      []channels.NameStatus // the names it answers on, own host first
	Instances  []channels.InstanceReport
	Formation  string // web=3 worker=1
}

func (s *server) installation(w http.ResponseWriter, r *http.Request, sess *session) {
	s.installationPage(w, r, sess, http.StatusOK, "")
}

// installationPage renders an installation with its history and recent
// operations; failed changes come back here with their one-line error.
func (s *server) installationPage(w http.ResponseWriter, r *http.Request, sess *session, status int, problem string) {
	ctx := r.Context()
	app, env := r.PathValue("app"), r.PathValue("env")
	if !s.engine.Can(ctx, sess.User, env, channels.ActionView) {
		if r.Method == http.MethodGet && s.engine.Can(ctx, sess.User, env, channels.ActionBackup) {
			// The backup role sees backups and nothing else of an installation.
			http.Redirect(w, r, "/installations/"+url.PathEscape(app)+"/"+url.PathEscape(env)+"/backups", http.StatusSeeOther)
			return
		}
		s.unknownInstallation(w, r, sess, app, env)
		return
	}
	h, err := s.engine.History(ctx, app, env, 30)
	d := installationData{base: s.base(sess, app+"/"+env), History: h}
	switch {
	case errors.Is(err, channels.ErrUnknownInstallation):
		s.unknownInstallation(w, r, sess, app, env)
		return
	case err != nil && h.Installation.ID == 0:
		s.internal(w, r, sess, "read installation", err)
		return
	case err != nil:
		s.log.Error("web: read history", "installation", app+"/"+env, "err", err)
		d.Notice = "The commit history could not be read; the daemon log says why."
	}
	d.Error = problem
	d.Pinned = h.Installation.Following.Kind == store.ChannelCommit
	d.CanDeploy = s.engine.Can(ctx, sess.User, env, channels.ActionDeploy)
	d.Operations, err = s.store.Operations(ctx, store.OperationFilter{InstallationID: h.Installation.ID, Limit: 20})
	if err != nil {
		s.internal(w, r, sess, "list operations", err)
		return
	}
	if d.Names, err = s.engine.NameStatuses(ctx, h.Installation); err != nil {
		s.log.Error("web: read domains", "installation", app+"/"+env, "err", err)
	}
	if d.Instances, err = s.engine.Instances(ctx, h.Installation); err != nil {
		s.log.Error("web: list instances", "installation", app+"/"+env, "err", err)
	}
	d.Formation = s.engine.DescribeFormation(h.Installation)
	if s.engine.Can(ctx, sess.User, env, channels.ActionBackup) {
		list, err := s.readBackups(ctx, app, env)
		if errors.Is(err, channels.ErrUnknownInstallation) {
			s.unknownInstallation(w, r, sess, app, env)
			return
		}
		d.Backups = &list
	}
	s.render(w, status, "installation", d)
}

// unknownInstallation is the answer for an installation that does not exist
// and for one the user may not see, so the two cannot be told apart.
func (s *server) unknownInstallation(w http.ResponseWriter, r *http.Request, sess *session, app, env string) {
	s.message(w, sess, http.StatusNotFound, "Unknown installation",
		fmt.Sprintf("There is no installation %s/%s.", app, env))
}

func (s *server) pin(w http.ResponseWriter, r *http.Request, sess *session) {
	commit := strings.TrimSpace(r.PostFormValue("commit"))
	s.change(w, r, sess, commit, "Choose a commit to serve, then press Change.",
		func(app, env string) (store.Operation, error) {
			return s.engine.Pin(r.Context(), app, env, commit, sess.User.Name)
		})
}

func (s *server) track(w http.ResponseWriter, r *http.Request, sess *session) {
	branch := strings.TrimSpace(r.PostFormValue("branch"))
	s.change(w, r, sess, branch, "Choose a branch to follow, then press Change.",
		func(app, env string) (store.Operation, error) {
			return s.engine.Track(r.Context(), app, env, branch, sess.User.Name)
		})
}

// change checks the user may deploy to the installation, asks the engine for
// the change and sends the browser to the operation it queued.
func (s *server) change(w http.ResponseWriter, r *http.Request, sess *session, value, missing string, do func(app, env string) (store.Operation, error)) {
	ctx := r.Context()
	app, env := r.PathValue("app"), r.PathValue("env")
	if !s.engine.Can(ctx, sess.User, env, channels.ActionView) {
		s.unknownInstallation(w, r, sess, app, env)
		return
	}
	if !s.engine.Can(ctx, sess.User, env, channels.ActionDeploy) {
		s.installationPage(w, r, sess, http.StatusForbidden,
			fmt.Sprintf("You may not change %s/%s: ask an admin of %s for the deployer role.", app, env, env))
		return
	}
	if value == "" {
		s.installationPage(w, r, sess, http.StatusBadRequest, missing)
		return
	}
	op, err := do(app, env)
	if errors.Is(err, channels.ErrUnknownInstallation) {
		s.unknownInstallation(w, r, sess, app, env)
		return
	}
	if err != nil {
		status, msg, ok := userError(err)
		if !ok {
			s.internal(w, r, sess, "change installation", err)
			return
		}
		s.installationPage(w, r, sess, status, msg)
		return
	}
	http.Redirect(w, r, fmt.Sprintf("/operations/%d", op.ID), http.StatusSeeOther)
}

package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// backupList is an installation's backups as both the installation page and
// the backups page show them, read-only: taking, verifying and restoring
// backups stay SSH commands.
type backupList struct {
	Backups  []store.Backup
	Schedule string // when they are taken
	Notice   string // the list could not be read
}

// readBackups reads an installation's backups. A failure on slipway's side
// leaves a notice in the list rather than losing the page around it.
func (s *server) readBackups(ctx context.Context, app, env string) (backupList, error) {
	list, err := s.engine.Backups(ctx, app, env)
	if errors.Is(err, channels.ErrUnknownInstallation) {
		return backupList{}, err
	}
	if err != nil {
		s.log.Error("web: list backups", "installation", app+"/"+env, "err", err)
		return backupList{Notice: "The backups could not be read; the daemon log says why."}, nil
	}
	b := backupList{Backups: list}
	spec, own, err := s.engine.BackupSchedule(ctx, app, env)
	var volumes []store.Volume
	if err == nil {
		var inst store.Installation
		if inst, err = s.store.InstallationByName(ctx, app, env); err == nil {
			volumes, err = s.store.Volumes(ctx, inst.ID)
		}
	}
	switch {
	case err != nil:
		s.log.Error("web: read backup schedule", "installation", app+"/"+env, "err", err)
	case len(volumes) == 0:
		b.Schedule = "It has no volumes (slipway.yml declares none, or no deploy made them yet), so there is nothing to back up."
	case spec == "" || spec == "off":
		b.Schedule = "No scheduled backups."
	case own:
		b.Schedule = fmt.Sprintf("Backed up on its own schedule, %s (UTC).", spec)
	default:
		b.Schedule = fmt.Sprintf("Backed up on the daemon's schedule, %s (UTC).", spec)
	}
	return b, nil
}

type backupsData struct {
	base
	App, Environment string
	CanView          bool // the installation page is theirs to see too
	List             backupList
	Command          string // how to take one now
}

// backups is an installation's backups on a page of their own, for the
// backup role, which may list backups but not see the installation page.
func (s *server) backups(w http.ResponseWriter, r *http.Request, sess *session) {
	ctx := r.Context()
	app, env := r.PathValue("app"), r.PathValue("env")
	canView := s.engine.Can(ctx, sess.User, env, channels.ActionView)
	canBackup := s.engine.Can(ctx, sess.User, env, channels.ActionBackup)
	if !canView && !canBackup {
		s.unknownInstallation(w, r, sess, app, env)
		return
	}
	if !canBackup {
		if _, err := s.store.InstallationByName(ctx, app, env); errors.Is(err, store.ErrNotFound) {
			s.unknownInstallation(w, r, sess, app, env)
			return
		} else if err != nil {
			s.internal(w, r, sess, "read installation", err)
			return
		}
		s.message(w, sess, http.StatusForbidden, "Backups of "+app+"/"+env,
			fmt.Sprintf("You may not list the backups of %s/%s: ask an admin of %s for the backup role.", app, env, env))
		return
	}
	list, err := s.readBackups(ctx, app, env)
	if err != nil {
		s.unknownInstallation(w, r, sess, app, env)
		return
	}
	s.render(w, http.StatusOK, "backups", backupsData{
		base: s.base(sess, "Backups of "+app+"/"+env), App: app, Environment: env,
		CanView: canView, List: list, Command: s.sshCommand(r, "backup now "+app+"/"+env),
	})
}

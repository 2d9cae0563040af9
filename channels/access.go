package channels

import (
	"context"

	"github.com/slipway-dev/slipway/store"
)

// Action is what a user wants to do in an environment.
type Action int

// Actions. View < Deploy < Admin for the viewer, deployer and admin roles;
// Backup is its own track: the backup role may run and list backups, nothing
// else, and admins may do it too. Restore is admin-only.
const (
	ActionView    Action = iota // status, history, activity, logs, reports
	ActionDeploy                // push, track, pin, restart, cancel, config
	ActionAdmin                 // grant, install, deprovision
	ActionBackup                // run and list backups
	ActionRestore               // restore a backup
)

// Can reports whether user may do action in environment env. Global admins
// may do everything. Every path (git push, SSH commands, web pages, reports)
// asks here, so the rules live in one place.
func (e *Engine) Can(ctx context.Context, u store.User, env string, a Action) bool {
	if u.Admin {
		return true
	}
	role, err := e.store.Role(ctx, u.ID, env)
	if err != nil || role == "" {
		return false
	}
	switch a {
	case ActionView:
		return role == store.RoleViewer || role == store.RoleDeployer || role == store.RoleAdmin
	case ActionDeploy:
		return role == store.RoleDeployer || role == store.RoleAdmin
	case ActionAdmin, ActionRestore:
		return role == store.RoleAdmin
	case ActionBackup:
		return role == store.RoleBackup || role == store.RoleAdmin
	}
	return false
}

// VisibleEnvironments returns nil when the user sees every environment, or
// the list of those it may see.
func (e *Engine) VisibleEnvironments(ctx context.Context, u store.User) []string {
	if u.Admin {
		return nil
	}
	envs, _ := e.store.Environments(ctx)
	out := []string{}
	for _, env := range envs {
		if e.Can(ctx, u, env.Name, ActionView) {
			out = append(out, env.Name)
		}
	}
	return out
}

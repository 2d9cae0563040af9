package channels

import (
	"context"

	"github.com/slipway-dev/slipway/store"
)

// Action is what a user wants to do in an environment.
type Action int

// Actions, from least to most trusted.
const (
	ActionView   Action = iota // status, history, activity, logs
	ActionDeploy               // push, track, pin, restart, cancel, config
	ActionAdmin                // grant, install, deprovision, restore
)

// Can reports whether user may do action in environment env. Admins may do
// everything. Every path (git push, SSH commands, web pages) asks here, so the
// rules live in one place.
func (e *Engine) Can(ctx context.Context, u store.User, env string, a Action) bool {
	return u.Admin
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

package channels

import (
	"context"
	"fmt"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

// RefUpdate is one reference a push moved, as git receive-pack reports it.
type RefUpdate struct {
	Name string `json:"name"` // refs/heads/main
	Old  string `json:"old"`  // 40 zeros when created
	New  string `json:"new"`  // 40 zeros when deleted
	// Rewrite is set (by the pre-receive hook, which sees the pushed objects
	// before they are stored) when Old is not an ancestor of New: a force push.
	Rewrite bool `json:"rewrite,omitempty"`
}

const zeroID = "0000000000000000000000000000000000000000"

// Branch returns the branch name when the ref is a branch.
func (u RefUpdate) Branch() (string, bool) {
	return strings.CutPrefix(u.Name, "refs/heads/")
}

// Deleted reports whether the push deleted the ref.
func (u RefUpdate) Deleted() bool { return u.New == zeroID }

// Pushed queues a deploy for every installation of app that follows a branch
// the push moved. Pinned installations ignore pushes. allowed, when not nil,
// limits which environments the pusher may deploy to; the others are skipped
// and reported back.
func (e *Engine) Pushed(ctx context.Context, app, user string, updates []RefUpdate, allowed func(env string) bool) (ops []store.Operation, skipped []store.Installation, err error) {
	insts, err := e.store.Installations(ctx, app)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range updates {
		branch, ok := u.Branch()
		if !ok || u.Deleted() {
			continue
		}
		for _, inst := range following(insts, branch) {
			if allowed != nil && !allowed(inst.Environment) {
				skipped = append(skipped, inst)
				continue
			}
			op, err := e.deployCommit(ctx, inst, u.New, user, store.OpDeploy)
			if err != nil {
				return ops, skipped, err
			}
			ops = append(ops, op)
		}
	}
	return ops, skipped, nil
}

// Created reports whether the push created the ref.
func (u RefUpdate) Created() bool { return u.Old == zeroID }

// rewrites reports whether the update deletes or rewrites the branch, the
// updates that lose commits an installation may have served.
func (u RefUpdate) rewrites() bool { return u.Deleted() || u.Rewrite }

// RefusedUpdates returns the one-line reason for each branch update the pusher
// may not make. Moving a branch in any way (creating, fast-forwarding,
// rewriting, deleting) that installations follow needs the deploy right in
// every environment with such an installation, whether the pusher can see it
// or not: otherwise a deployer of staging could rewrite what production
// follows. Rewriting or deleting such a branch also needs -o force-deploy.
// The reason never names an environment the pusher may not see.
func (e *Engine) RefusedUpdates(ctx context.Context, app string, updates []RefUpdate, forceDeploy bool, can func(env string, a Action) bool) ([]string, error) {
	insts, err := e.store.Installations(ctx, app)
	if err != nil {
		return nil, err
	}
	var refused []string
	for _, u := range updates {
		branch, ok := u.Branch()
		if !ok {
			continue
		}
		followers := following(insts, branch)
		if len(followers) == 0 {
			continue
		}
		if reason := deployRightMissing(branch, followers, can); reason != "" {
			refused = append(refused, reason)
			continue
		}
		if u.rewrites() && !forceDeploy {
			what := "force-push (rewrite) branch " + branch
			if u.Deleted() {
				what = "delete branch " + branch
			}
			var names []string
			for _, inst := range followers {
				names = append(names, inst.Resource())
			}
			refused = append(refused, fmt.Sprintf("refusing to %s: %s follows it; push with -o force-deploy to do it anyway", what, strings.Join(names, ", ")))
		}
	}
	return refused, nil
}

// following returns the live installations that follow branch.
func following(insts []store.Installation, branch string) []store.Installation {
	var out []store.Installation
	for _, inst := range insts {
		if inst.Follows(branch) {
			out = append(out, inst)
		}
	}
	return out
}

// deployRightMissing says why the pusher may not move branch, or "" when it may
// deploy to every follower. Environments it can see are named, so it knows
// whom to ask; when one it cannot see is among them, only the branch is.
func deployRightMissing(branch string, followers []store.Installation, can func(env string, a Action) bool) string {
	var missing []string
	for _, inst := range followers {
		if can(inst.Environment, ActionDeploy) {
			continue
		}
		if !can(inst.Environment, ActionView) {
			return "you may not update branch " + branch
		}
		missing = append(missing, inst.Environment)
	}
	if len(missing) == 0 {
		return ""
	}
	return fmt.Sprintf("you may not update branch %s: you need the deployer role in %s, whose installation follows it", branch, strings.Join(missing, ", "))
}

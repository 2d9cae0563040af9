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
		for _, inst := range insts {
			if inst.ChannelKind != store.ChannelBranch || inst.ChannelRef != branch || inst.State == store.StateDeprovisioned {
				continue
			}
			if allowed != nil && !allowed(inst.Environment) {
				skipped = append(skipped, inst)
				continue
			}
			op, err := e.deployCommit(ctx, inst, u.New, user, "deploy")
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

// RefusedUpdates returns, for each update that deletes or rewrites a branch
// an installation of app follows, the one-line reason it is refused. A push
// with the force-deploy option is never refused.
func (e *Engine) RefusedUpdates(ctx context.Context, app string, updates []RefUpdate, forceDeploy bool, visible func(env string) bool) ([]string, error) {
	if forceDeploy {
		return nil, nil
	}
	insts, err := e.store.Installations(ctx, app)
	if err != nil {
		return nil, err
	}
	var refused []string
	for _, u := range updates {
		branch, ok := u.Branch()
		if !ok || (!u.Deleted() && !u.Rewrite) {
			continue
		}
		var followers []string
		for _, inst := range insts {
			if inst.ChannelKind == store.ChannelBranch && inst.ChannelRef == branch && inst.State != store.StateDeprovisioned && visible(inst.Environment) {
				followers = append(followers, inst.Resource())
			}
		}
		if len(followers) == 0 {
			continue
		}
		what := "force-push (rewrite) branch " + branch
		if u.Deleted() {
			what = "delete branch " + branch
		}
		refused = append(refused, fmt.Sprintf("refusing to %s: %s follows it; push with -o force-deploy to do it anyway", what, strings.Join(followers, ", ")))
	}
	return refused, nil
}

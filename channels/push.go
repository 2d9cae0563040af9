package channels

import (
	"context"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

// RefUpdate is one reference a push moved, as git receive-pack reports it.
type RefUpdate struct {
	Name string // refs/heads/main
	Old  string // 40 zeros when created
	New  string // 40 zeros when deleted
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

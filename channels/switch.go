package channels

import (
	"context"
	"errors"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// Track makes an installation follow a branch and deploys the branch's head.
func (e *Engine) Track(ctx context.Context, app, env, branch, user string) (store.Operation, error) {
	if err := CheckBranch(branch); err != nil {
		return store.Operation{}, err
	}
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return store.Operation{}, err
	}
	commit, err := r.Branch(branch)
	if err != nil {
		return store.Operation{}, failf(ErrUnknownRef, "%s has no branch %q: push it first", app, branch)
	}
	return e.switchTo(ctx, inst, commit, user, store.Branch(branch))
}

// Pin makes an installation serve one commit and ignore pushes. ref may be a
// full or short commit ID, a tag or a branch; it is resolved once, now.
func (e *Engine) Pin(ctx context.Context, app, env, ref, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return store.Operation{}, err
	}
	commit, err := r.Resolve(ref)
	switch {
	case errors.Is(err, repo.ErrAmbiguous):
		return store.Operation{}, failf(ErrAmbiguousRef, "%q names more than one commit of %s: give more digits", ref, app)
	case errors.Is(err, repo.ErrUnknownRef):
		return store.Operation{}, failf(ErrUnknownRef, "%s has no commit, tag or branch %q", app, ref)
	case err != nil:
		return store.Operation{}, err
	}
	return e.switchTo(ctx, inst, commit, user, store.Pinned(commit))
}

func (e *Engine) switchTo(ctx context.Context, inst store.Installation, commit, user string, to store.Channel) (store.Operation, error) {
	op := store.Operation{
		Type: store.OpSwitch, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: commit, Channel: to.String(),
	}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if to.IsBranch() {
			// The branch's head when the switch starts: a push while it
			// waited in the queue deployed nothing here yet.
			if r, err := repo.Open(e.repoDir(inst.App)); err == nil {
				if head, err := r.Branch(to.Ref); err == nil && head != commit {
					commit = head
					e.resolved(l, commit)
				}
			}
		}
		l.Logf("-----> Switching %s to %s", inst.Resource(), describe(to))
		return e.replace(ctx, l, store.OpSwitch, inst.ID, commit, l.id, &pending{channel: &to})
	})
}

func describe(c store.Channel) string {
	if !c.IsBranch() {
		return "pinned commit " + shortID(c.Ref) + " (pushes are ignored until it tracks a branch again)"
	}
	return "branch " + c.Ref
}

// HistoryEntry is one commit of an installation's channel.
type HistoryEntry struct {
	repo.Commit
	Served   bool // what the installation serves now
	Deployed bool // deployed successfully before
}

// History is an installation with its channel's recent commits.
type History struct {
	Installation store.Installation
	Branches     []string
	Commits      []HistoryEntry
}

// History returns the recent commits of the branch an installation follows
// (or, when pinned, of the branch it tracked before, falling back to the
// pinned commit's ancestry), marking the one served and those deployed before.
func (e *Engine) History(ctx context.Context, app, env string, n int) (History, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return History{}, err
	}
	h := History{Installation: inst}
	r, err := repo.Open(e.repoDir(app))
	if err != nil {
		return h, err
	}
	h.Branches, _ = r.Branches()
	from := inst.Following.Ref
	if inst.Following.IsBranch() {
		from, err = r.Branch(inst.Following.Ref)
		if err != nil {
			return h, nil // nothing pushed yet
		}
	} else if b := e.lastTrackedBranch(ctx, inst); b != "" {
		if head, err := r.Branch(b); err == nil {
			from = head
		}
	}
	commits, err := r.History(from, n)
	if err != nil {
		return h, err
	}
	deployed := map[string]bool{}
	ops, _ := e.store.Operations(ctx, store.OperationFilter{InstallationID: inst.ID, Statuses: []string{store.StatusSucceeded}})
	for _, op := range ops {
		deployed[op.Commit] = true
	}
	for _, c := range commits {
		h.Commits = append(h.Commits, HistoryEntry{Commit: c, Served: c.ID == inst.Commit, Deployed: deployed[c.ID]})
	}
	return h, nil
}

// lastTrackedBranch finds the branch a pinned installation followed before.
func (e *Engine) lastTrackedBranch(ctx context.Context, inst store.Installation) string {
	ops, _ := e.store.Operations(ctx, store.OperationFilter{InstallationID: inst.ID})
	for _, op := range ops {
		if c, ok := store.ParseChannel(op.Channel); ok && c.IsBranch() {
			return c.Ref
		}
	}
	return ""
}

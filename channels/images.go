package channels

import (
	"context"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// Every successful build is kept as an Incus image of the instance as it was
// right after build and release (before the app started), the newest
// KeepImages per installation. Switching back to such a commit launches its
// image: no tree to copy, no build, no release.

type publishResult struct {
	fingerprint string
	err         error
}

// publish snapshots the freshly built instance (instant on btrfs) and
// publishes the snapshot as an image in the background, so the deploy does
// not wait for it. If the deploy fails, the image is deleted again.
func (e *Engine) publish(l *opLog, undo *reverter, inst store.Installation, name, commit, hash string) <-chan publishResult {
	if e.cfg.KeepImages <= 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(e.base, 10*time.Minute)
	if err := e.rt.Snapshot(ctx, name, "built"); err != nil {
		cancel()
		l.Logf("       No rollback image of this build: %s", err)
		return nil
	}
	done := make(chan publishResult, 1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer cancel()
		fp, err := e.rt.PublishSnapshot(ctx, name, "built", map[string]string{
			"slipway.installation": inst.Resource(),
			"slipway.commit":       commit,
			"description":          "slipway rollback image of " + inst.Resource() + " at " + shortID(commit),
		})
		done <- publishResult{fp, err}
	}()
	var result *publishResult
	wait := func() publishResult {
		if result == nil {
			r := <-done
			result = &r
		}
		return *result
	}
	undo.Add(func() error {
		if r := wait(); r.err == nil {
			e.rt.DeleteImage(context.Background(), r.fingerprint)
		}
		return nil
	})
	out := make(chan publishResult, 1)
	go func() { out <- wait() }()
	return out
}

// keepImage records the published image of a build that now serves and
// deletes images beyond the newest KeepImages. It waits for the publish in
// the background: the operation does not.
func (e *Engine) keepImage(l *opLog, inst store.Installation, published <-chan publishResult) {
	r := <-published
	if r.err != nil {
		l.Logf("       No rollback image of this build: %s", r.err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	now, err := e.store.InstallationByID(ctx, inst.ID)
	if err != nil {
		e.rt.DeleteImage(ctx, r.fingerprint)
		return
	}
	replaced, err := e.store.KeepImage(ctx, store.KeptImage{Fingerprint: r.fingerprint, InstallationID: inst.ID, Commit: now.Commit, EnvHash: now.EnvHash})
	if err != nil {
		e.log.Warn("Keep rollback image", "installation", inst.Resource(), "err", err)
		e.rt.DeleteImage(ctx, r.fingerprint)
		return
	}
	if replaced != "" && replaced != r.fingerprint {
		e.rt.DeleteImage(ctx, replaced)
	}
	l.Logf("       Image %.12s of commit %s kept for fast rollbacks", r.fingerprint, shortID(now.Commit))
	e.pruneImages(ctx, l, inst.ID)
}

// pruneImages deletes kept images beyond the newest KeepImages.
func (e *Engine) pruneImages(ctx context.Context, l *opLog, installationID int64) {
	kept, err := e.store.KeptImages(ctx, installationID)
	if err != nil {
		return
	}
	for i, k := range kept {
		if i < e.cfg.KeepImages {
			continue
		}
		if err := e.rt.DeleteImage(ctx, k.Fingerprint); err != nil {
			l.Logf("       Could not delete image %.12s: %s", k.Fingerprint, err)
			continue
		}
		e.store.ForgetKeptImage(ctx, k.Fingerprint)
		l.Logf("       Image %.12s of commit %s deleted (the newest %d are kept)", k.Fingerprint, shortID(k.Commit), e.cfg.KeepImages)
	}
}

// dropImages deletes all of an installation's kept images.
func (e *Engine) dropImages(ctx context.Context, l *opLog, installationID int64) {
	kept, _ := e.store.KeptImages(ctx, installationID)
	for _, k := range kept {
		if err := e.rt.DeleteImage(ctx, k.Fingerprint); err == nil {
			e.store.ForgetKeptImage(ctx, k.Fingerprint)
			l.Logf("       Image %.12s of commit %s deleted", k.Fingerprint, shortID(k.Commit))
		}
	}
}

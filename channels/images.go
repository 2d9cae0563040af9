package channels

import (
	"context"
	"fmt"
	"time"

	"github.com/slipway-dev/slipway/store"
)

// Every build that came to serve is kept as an Incus image of its instance,
// the newest KeepImages per installation. The image is taken from a snapshot
// right after the swap, so it holds the built tree and the web script (with
// the environment it was built with, which is why an image is reused only for
// the same environment). Switching back to such a commit launches its image:
// the image's runner starts the app at boot; no tree to copy, no build, no
// release, no web to start.

type publishResult struct {
	fingerprint string
	err         error
}

// publish snapshots the instance that now serves (instant on btrfs) and
// publishes the snapshot as an image, in the background: the deploy has
// already swapped and does not wait for it.
func (e *Engine) publish(l *opLog, inst store.Installation, name, commit, hash string) <-chan publishResult {
	if e.cfg.KeepImages <= 0 {
		return nil
	}
	done := make(chan publishResult, 1)
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		ctx, cancel := context.WithTimeout(e.base, 10*time.Minute)
		defer cancel()
		if err := e.rt.Snapshot(ctx, name, "served"); err != nil {
			done <- publishResult{err: err}
			return
		}
		e.urgent.waitIdle(ctx)
		fp, err := e.rt.PublishSnapshot(ctx, name, "served", map[string]string{
			"slipway.installation": inst.Resource(),
			"slipway.commit":       commit,
			"description":          "slipway rollback image of " + inst.Resource() + " at " + shortID(commit),
		})
		done <- publishResult{fp, err}
	}()
	return done
}

// keepImage records the published image of the build of commit (made with
// the environment of hash) and deletes images beyond the newest KeepImages.
// It runs after the operation ended, so the installation may serve another
// commit by now: the image is recorded as what it was built from.
func (e *Engine) keepImage(l *opLog, inst store.Installation, commit, hash string, published <-chan publishResult) error {
	r := <-published
	if r.err != nil {
		l.Logf("       No rollback image of this build: %s", r.err)
		return fmt.Errorf("keep a rollback image: %w", r.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := e.store.InstallationByID(ctx, inst.ID); err != nil {
		e.rt.DeleteImage(ctx, r.fingerprint)
		return nil // the installation is gone: nothing to roll back to
	}
	replaced, err := e.store.KeepImage(ctx, store.KeptImage{Fingerprint: r.fingerprint, InstallationID: inst.ID, Commit: commit, EnvHash: hash})
	if err != nil {
		e.log.Warn("Keep rollback image", "installation", inst.Resource(), "err", err)
		e.rt.DeleteImage(ctx, r.fingerprint)
		return fmt.Errorf("record the rollback image: %w", err)
	}
	if replaced != "" && replaced != r.fingerprint {
		e.rt.DeleteImage(ctx, replaced)
	}
	l.Logf("       Image %.12s of commit %s kept for fast rollbacks", r.fingerprint, shortID(commit))
	e.pruneImages(ctx, l, inst.ID)
	return nil
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

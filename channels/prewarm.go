package channels

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// Starting an instance is the longest step of a small app's deploy (about
// 0.4 s). A git push announces the branches it updates before it sends the
// pack, so the SSH server tells the engine right away and the engine starts
// the new instances while git is still transferring and storing the push. The
// deploy then claims the waiting instance instead of launching one; whatever
// is not claimed when the push ends is deleted.

type prewarm struct {
	name  string
	image string
	done  chan struct{} // closed when the launch ended
	err   error
}

type prewarms struct {
	mu   sync.Mutex
	byID map[int64]*prewarm // by installation
}

// Prewarm starts instances for the installations of app that follow one of
// branches, for a push that is arriving. A branch with a follower the pusher
// may not deploy to is skipped: pre-receive will refuse that update. It
// returns at once; release (call it when the push has ended) deletes those no
// deploy claimed.
func (e *Engine) Prewarm(ctx context.Context, app string, branches []string, mayDeploy func(env string) bool) (release func()) {
	insts, err := e.store.Installations(ctx, app)
	if err != nil || len(branches) == 0 {
		return func() {}
	}
	var started []int64
	for _, b := range branches {
		followers := following(insts, b)
		for _, inst := range followers {
			if !mayDeploy(inst.Environment) {
				followers = nil
				break
			}
		}
		for _, inst := range followers {
			if p := e.startPrewarm(inst); p != nil {
				started = append(started, inst.ID)
			}
		}
	}
	return func() {
		for _, id := range started {
			e.dropPrewarm(id)
		}
	}
}

func (e *Engine) startPrewarm(inst store.Installation) *prewarm {
	e.prewarms.mu.Lock()
	defer e.prewarms.mu.Unlock()
	if e.prewarms.byID == nil {
		e.prewarms.byID = map[int64]*prewarm{}
	}
	if e.prewarms.byID[inst.ID] != nil {
		return nil // another push got there first
	}
	e.mu.Lock()
	if e.shutdown {
		e.mu.Unlock()
		return nil
	}
	e.wg.Add(1)
	e.mu.Unlock()
	p := &prewarm{
		name:  fmt.Sprintf("%s-%s-p%06d", inst.App, inst.Environment, rand.IntN(1000000)),
		image: e.expectedImage(inst),
		done:  make(chan struct{}),
	}
	e.prewarms.byID[inst.ID] = p
	endUrgent := e.urgent.begin()
	go func() {
		defer e.wg.Done()
		defer close(p.done)
		defer endUrgent()
		ctx, cancel := context.WithTimeout(e.base, 2*time.Minute)
		defer cancel()
		p.err = e.rt.Launch(ctx, p.name, p.image, e.labels(inst, "", 0))
	}()
	return p
}

// expectedImage guesses the image of the next deploy: the one the manifest at
// the head of the followed branch names. The deploy checks the guess.
func (e *Engine) expectedImage(inst store.Installation) string {
	r, err := repo.Open(e.repoDir(inst.App))
	if err != nil {
		return DefaultImage
	}
	head, err := r.Branch(inst.Following.Ref)
	if err != nil {
		return DefaultImage
	}
	app, err := loadAppAt(r, head)
	if err != nil {
		return DefaultImage
	}
	return app.Image
}

// claimPrewarm hands a deploy the instance started for it, if there is one of
// the right image, waiting for its launch to end. With early set it returns
// as soon as the instance has booted, before Incus ends the launch; settle
// (nil unless early) then waits for that end and must succeed before the
// instance serves.
func (e *Engine) claimPrewarm(ctx context.Context, installationID int64, image string, early bool) (name string, settle func() error, err error) {
	e.prewarms.mu.Lock()
	p := e.prewarms.byID[installationID]
	if p == nil || p.image != image {
		e.prewarms.mu.Unlock()
		return "", nil, errNoPrewarm
	}
	delete(e.prewarms.byID, installationID)
	e.prewarms.mu.Unlock()
	wait := func(ctx context.Context) error {
		select {
		case <-p.done:
			return p.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if early {
		if err := e.rt.Booted(ctx, p.name); err == nil {
			// Not bound to ctx: a launch still under way must end before
			// anyone deletes the instance, even after a cancel.
			return p.name, func() error { return wait(context.Background()) }, nil
		}
	}
	if err := wait(ctx); err != nil {
		go e.deletePrewarm(p)
		return "", nil, err
	}
	return p.name, nil, nil
}

var errNoPrewarm = errors.New("no instance started ahead")

// dropPrewarm deletes the instance started for an installation if no deploy
// claimed it.
func (e *Engine) dropPrewarm(installationID int64) {
	e.prewarms.mu.Lock()
	p := e.prewarms.byID[installationID]
	delete(e.prewarms.byID, installationID)
	e.prewarms.mu.Unlock()
	if p != nil {
		e.deletePrewarm(p)
	}
}

func (e *Engine) deletePrewarm(p *prewarm) {
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := e.rt.Delete(ctx, p.name); err != nil {
		e.log.Warn("Delete unclaimed instance", "instance", p.name, "err", err)
	}
}

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
	byID map[int64]*prewarmSet // by installation
}

// prewarmSet is what a push starts for one installation: the instance of its
// deploy's primary, and one for each other instance of the deploy's first
// batch when it is scaled (see members.go).
type prewarmSet struct {
	primary *prewarm
	extras  []*prewarm
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

func (e *Engine) startPrewarm(inst store.Installation) *prewarmSet {
	e.prewarms.mu.Lock()
	defer e.prewarms.mu.Unlock()
	if e.prewarms.byID == nil {
		e.prewarms.byID = map[int64]*prewarmSet{}
	}
	if e.prewarms.byID[inst.ID] != nil {
		return nil // another push got there first
	}
	image, n, volumes := e.expectedLaunch(inst)
	labels := e.placed(context.Background(), inst, volumes, e.labels(inst, "", 0))
	set := &prewarmSet{}
	for i := range n {
		p := e.launchAhead(inst, image, labels)
		if p == nil {
			break // shutting down
		}
		if i == 0 {
			set.primary = p
		} else {
			set.extras = append(set.extras, p)
		}
	}
	if set.primary == nil {
		return nil
	}
	e.prewarms.byID[inst.ID] = set
	return set
}

// launchAhead starts one instance of image for inst, or returns nil when the
// engine is shutting down.
func (e *Engine) launchAhead(inst store.Installation, image string, labels map[string]string) *prewarm {
	e.mu.Lock()
	if e.shutdown {
		e.mu.Unlock()
		return nil
	}
	e.wg.Add(1)
	e.mu.Unlock()
	p := &prewarm{
		name:  fmt.Sprintf("%s-%s-p%06d", inst.App, inst.Environment, rand.IntN(1000000)),
		image: image,
		done:  make(chan struct{}),
	}
	endUrgent := e.urgent.begin()
	go func() {
		defer e.wg.Done()
		defer close(p.done)
		defer endUrgent()
		ctx, cancel := context.WithTimeout(e.base, 2*time.Minute)
		defer cancel()
		p.err = e.rt.Launch(ctx, p.name, p.image, labels)
	}()
	return p
}

// expectedLaunch guesses what the next deploy launches: the image the
// manifest at the head of the followed branch names, and how many instances
// its first batch starts. The deploy checks the guess.
func (e *Engine) expectedLaunch(inst store.Installation) (image string, n int, volumes map[string]string) {
	r, err := repo.Open(e.repoDir(inst.App))
	if err != nil {
		return DefaultImage, 1, nil
	}
	head, err := r.Branch(inst.Following.Ref)
	if err != nil {
		return DefaultImage, 1, nil
	}
	app, err := loadAppAt(r, head)
	if err != nil {
		return DefaultImage, 1, nil
	}
	n = len(slotsOf(app.Processes, inst.Formation))
	if inst.Surge > 0 && len(inst.Members) > 0 {
		n = min(n, inst.Surge)
	}
	return app.Image, n, app.Volumes
}

// claimPrewarm hands a deploy the instance started for it, if there is one of
// the right image, waiting for its launch to end. With early set it returns
// as soon as the instance has booted, before Incus ends the launch; settle
// (nil unless early) then waits for that end and must succeed before the
// instance serves.
func (e *Engine) claimPrewarm(ctx context.Context, installationID int64, image string, early bool) (name string, settle func() error, err error) {
	e.prewarms.mu.Lock()
	set := e.prewarms.byID[installationID]
	if set == nil || set.primary == nil || set.primary.image != image {
		e.prewarms.mu.Unlock()
		return "", nil, errNoPrewarm
	}
	p := set.primary
	set.primary = nil
	e.forgetEmpty(installationID, set)
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

// claimExtra hands a member of a deploy one of the other instances started
// for it, of image, or nil; the member waits for its launch.
func (e *Engine) claimExtra(installationID int64, image string) *prewarm {
	e.prewarms.mu.Lock()
	defer e.prewarms.mu.Unlock()
	set := e.prewarms.byID[installationID]
	if set == nil || len(set.extras) == 0 || set.extras[0].image != image {
		return nil
	}
	p := set.extras[0]
	set.extras = set.extras[1:]
	e.forgetEmpty(installationID, set)
	return p
}

// forgetEmpty drops a set all of whose instances were claimed, so the next
// push may start its own. The caller holds e.prewarms.mu.
func (e *Engine) forgetEmpty(installationID int64, set *prewarmSet) {
	if set.primary == nil && len(set.extras) == 0 && e.prewarms.byID[installationID] == set {
		delete(e.prewarms.byID, installationID)
	}
}

// dropPrewarm deletes the instances started for an installation that no
// deploy claimed.
func (e *Engine) dropPrewarm(installationID int64) {
	e.prewarms.mu.Lock()
	set := e.prewarms.byID[installationID]
	delete(e.prewarms.byID, installationID)
	e.prewarms.mu.Unlock()
	if set == nil {
		return
	}
	for _, p := range append([]*prewarm{set.primary}, set.extras...) {
		if p != nil {
			e.deletePrewarm(p)
		}
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

package channels

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/channels/revert"
	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// A deploy, a switch, a restart, a configure and a restore all take one path,
// told here in its phases: plan → launch → build and release → verify → swap
// → retire and keep. Each phase registers the undo of what it makes; until
// the swap, a failure (or a cancel) undoes them all, in reverse, and the old
// instance keeps serving. The speed-ups live inside the phase they speed up.

// deployment is one replace on its way through the phases.
type deployment struct {
	e      *Engine
	l      *opLog
	opType store.OpType
	opID   int64
	inst   store.Installation // as it was when the deployment began
	commit string
	change *pending

	repo   *repo.Repo
	app    *App      // what the commit runs: manifest, Procfile, detection
	m      *Manifest // the same, as the manifest it amounts to
	env    map[string]string
	hash   string           // of env: a kept image is reused only for the same one
	limits store.Limits     // what the new instance may use
	kept   *store.KeptImage // an earlier build of commit to launch, or nil

	name     string       // the new instance, the primary of its set
	healthy  <-chan error // a health check already under way, or nil
	settle   func() error // waits for the end of a launch not waited for, or nil
	undo     revert.Reverter
	done     []func() // release what the phases hold, at the end
	retiring []string // the instances the swap took traffic from

	slots           []slot    // the new set: the primary's first (see formation.go)
	members         []*member // the rest of the set (see members.go)
	built, released *gate     // the primary's build and release steps have run
}

// replace makes installationID serve commit through the phases. change is
// what the operation changes about the installation once the new instance
// serves (nil: nothing).
func (e *Engine) replace(ctx context.Context, l *opLog, opType store.OpType, installationID int64, commit string, opID int64, change *pending) (err error) {
	endUrgent := e.urgent.begin()
	defer endUrgent() // at the latest; on success right after the swap
	d, err := e.plan(ctx, l, opType, installationID, commit, opID, change)
	if err != nil {
		return err
	}
	defer d.release()
	defer func() {
		if err != nil {
			d.rollBack(err)
		}
	}()
	for _, phase := range []func(context.Context) error{d.launch, d.buildAndRelease, d.verify, d.roll} {
		if err := phase(ctx); err != nil {
			return err
		}
	}
	if err := d.swap(endUrgent); err != nil {
		return err
	}
	d.retireAndKeep()
	return nil
}

// plan resolves what the deployment makes: the manifest at commit, the app's
// environment, the new instance's name and whether an earlier build of the
// same commit and environment can be launched instead of building again.
func (e *Engine) plan(ctx context.Context, l *opLog, opType store.OpType, installationID int64, commit string, opID int64, change *pending) (*deployment, error) {
	if change == nil {
		change = &pending{}
	}
	inst, err := e.store.InstallationByID(ctx, installationID)
	if err != nil {
		return nil, fmt.Errorf("installation is gone: %w", err)
	}
	l.Logf("-----> %s of %s: commit %s (%s)", opType, inst.Resource(), shortID(commit), inst.Channel())
	d := &deployment{e: e, l: l, opType: opType, opID: opID, inst: inst, commit: commit, change: change,
		name: memberName(inst, opID, 1), built: newGate(), released: newGate()}
	if d.repo, err = repo.Open(e.repoDir(inst.App)); err != nil {
		return nil, err
	}
	if d.app, err = loadAppAt(d.repo, commit); err != nil {
		return nil, err
	}
	d.m = d.app.Manifest()
	formation := inst.Formation
	if change.formation != nil {
		formation = change.formation
	}
	d.slots = slotsOf(d.app.Processes, formation)
	for _, line := range d.app.Log {
		l.Logf("%s", line)
	}
	if d.env, err = e.appEnv(ctx, l, inst, commit, change, d.app.Env); err != nil {
		return nil, err
	}
	d.hash = envHash(d.env)
	d.limits = inst.Limits
	if change.limits != nil {
		d.limits = *change.limits
	}
	if opType != store.OpRestart && opType != store.OpRebuild { // both start afresh
		if kept, err := e.store.KeptImageFor(ctx, inst.ID, commit, d.hash); err == nil {
			d.kept = &kept
		}
	}
	return d, nil
}

// dial reaches the new instance's app, as the proxy will.
func (d *deployment) dial(ctx context.Context) (net.Conn, error) {
	return d.e.rt.Dial(ctx, d.name, d.e.cfg.AppPort)
}

// launch starts the new instance: from the kept image of an earlier build, or
// from the manifest's image, and bounds it by the installation's limits.
func (d *deployment) launch(ctx context.Context) error {
	d.members = d.startMembers(ctx, d.slots[1:d.batch()], 2)
	launch := d.launchFresh
	if d.kept != nil {
		launch = d.launchKept
	}
	if err := launch(ctx); err != nil {
		return err
	}
	if d.limits.None() {
		return nil
	}
	if err := d.e.rt.Limit(ctx, d.name, d.limits.CPU, d.limits.Memory); err != nil {
		return d.e.stepError(ctx, "set limits", err)
	}
	d.l.Logf("       Limits: %s", d.limits)
	return nil
}

// early: the app may start as soon as the instance has booted, before Incus
// ends its launch, when nothing must be done to the instance first.
func (d *deployment) early() bool { return len(d.m.Volumes) == 0 && d.limits.None() }

// launchKept launches the image of an earlier build of the commit (a
// rollback): it holds the built tree and the web script, and its runner starts
// the app as the instance boots, so the health check starts at once.
func (d *deployment) launchKept(ctx context.Context) error {
	e, l := d.e, d.l
	step := time.Now()
	launched := make(chan error, 1)
	hctx, hcancel := context.WithCancel(ctx)
	d.done = append(d.done, hcancel)
	go func() {
		err := e.rt.Launch(ctx, d.name, d.kept.Fingerprint, e.placed(ctx, d.inst, d.m.Volumes, e.labels(d.inst, d.commit, d.opID)))
		if err != nil {
			hcancel()
		}
		launched <- err
	}()
	if d.early() {
		// Nothing to attach or bound first: start the app and check it while
		// Incus finishes the start (see Runtime.Booted).
		d.healthy = e.checkWhenBooted(hctx, d.name, d.start, d.dial, d.inst.Host, d.m.Health)
	}
	if err := <-launched; err != nil {
		if d.healthy != nil {
			<-d.healthy
		}
		return e.stepError(ctx, "create instance from the image of "+shortID(d.commit), err)
	}
	d.undo.Add(func() error { return e.deleteInstance(l, d.name, "new instance") })
	l.Logf("       Instance %s started from the image of commit %s (%s): build and release skipped; release steps (migrations) are never reversed or re-run by a rollback",
		d.name, shortID(d.commit), time.Since(step).Round(time.Millisecond))
	return d.attachStorage(ctx)
}

// launchFresh claims the instance started while the push arrived (see
// Prewarm), or launches one from the manifest's image.
func (d *deployment) launchFresh(ctx context.Context) error {
	e, l := d.e, d.l
	step := time.Now()
	// On the together path only the tree's delivery comes before the health
	// check, so the instance may be used as soon as it has booted.
	early := d.together() && d.early()
	if ahead, wait, err := e.claimPrewarm(ctx, d.inst.ID, d.m.Image, early); err == nil {
		d.name, d.settle = ahead, wait
		d.undo.Add(func() error {
			if d.settle != nil {
				d.settle() // Incus deletes an instance only once its launch has ended
			}
			return e.deleteInstance(l, d.name, "new instance")
		})
		l.Logf("       Instance %s started from image %s while the push arrived (waited %s)", d.name, d.m.Image, time.Since(step).Round(time.Millisecond))
	} else {
		if ctx.Err() != nil {
			return e.stepError(ctx, "create instance", err)
		}
		if err := e.rt.Launch(ctx, d.name, d.m.Image, e.placed(ctx, d.inst, d.m.Volumes, e.labels(d.inst, d.commit, d.opID))); err != nil {
			return e.stepError(ctx, "create instance", err)
		}
		d.undo.Add(func() error { return e.deleteInstance(l, d.name, "new instance") })
		l.Logf("       Instance %s started from image %s (%s)", d.name, d.m.Image, time.Since(step).Round(time.Millisecond))
	}
	return d.attachStorage(ctx)
}

// attachStorage gives the new instance the installation's volumes and the
// sockets of its databases.
func (d *deployment) attachStorage(ctx context.Context) error {
	if err := d.e.attachVolumes(ctx, d.l, d.inst, d.name, d.m); err != nil {
		return err
	}
	return d.e.attachDatabases(ctx, d.l, d.inst, d.name)
}

// together: without build or release steps nothing runs between copying the
// tree and starting the app, so one step does both.
func (d *deployment) together() bool { return len(d.m.Build) == 0 && len(d.m.Release) == 0 }

// buildAndRelease puts the commit's tree into the new instance, runs the
// manifest's build and release steps and starts the app's processes. An
// instance launched from a kept image has the built tree already.
func (d *deployment) buildAndRelease(ctx context.Context) error {
	e, l := d.e, d.l
	if d.kept != nil || d.together() {
		d.built.open()
		d.released.open()
	}
	if d.kept != nil {
		if d.healthy != nil {
			return nil // started as it booted
		}
		return d.start(ctx)
	}
	if d.together() {
		l.Logf("-----> Copying commit %s and starting web: %s", shortID(d.commit), d.m.Web)
	}
	if err := e.putTree(ctx, d.repo, d.name, d.commit); err != nil {
		return e.stepError(ctx, "copy the commit into the instance", err)
	}
	if !d.together() {
		if err := d.build(ctx); err != nil {
			return err
		}
		d.built.open()
		for _, cmd := range d.app.Release {
			if err := e.runStep(ctx, l, d.name, "release", cmd, d.env); err != nil {
				return err
			}
		}
		if len(d.m.Release) > 0 {
			l.Logf("       Note: a later rollback does not undo release steps (migrations); roll forward instead")
		}
		d.released.open()
		l.Logf("-----> Starting web: %s", d.m.Web)
	}
	return d.start(ctx)
}

// start has the new instance's supervisor run the app's processes.
func (d *deployment) start(ctx context.Context) error {
	if err := d.e.rt.StartProcesses(ctx, d.name, d.processes()); err != nil {
		return d.e.stepError(ctx, "start web", err)
	}
	d.e.kickCollector()
	return nil
}

// processes is what the primary's supervisor runs: its slot's processes
// with the app's environment, in /app.
func (d *deployment) processes() runtime.Processes { return d.processesOf(d.slots[0]) }

// stopGrace is how long an app's processes have after SIGTERM, when their
// instance retires, before they are killed.
const stopGrace = 10 * time.Second

// verify waits for the health check, and for the end of a launch the
// deployment went on without: that end must have gone well before the
// instance serves.
func (d *deployment) verify(ctx context.Context) error {
	step := time.Now()
	if d.healthy == nil {
		d.healthy = d.e.checkWhenBooted(ctx, d.name, nil, d.dial, d.inst.Host, d.m.Health)
	}
	if err := <-d.healthy; err != nil {
		d.showAppOutput()
		return err
	}
	d.l.Logf("       Healthy: GET %s answered in time (%s)", d.m.Health.Path, time.Since(step).Round(time.Millisecond))
	if d.settle != nil {
		if err := d.settle(); err != nil {
			return d.e.stepError(ctx, "create instance", err)
		}
	}
	return d.waitMembers(ctx, d.members)
}

// newMembers is the set the swap records: the primary, then the members.
func (d *deployment) newMembers() []store.Member {
	out := []store.Member{{Name: d.name, Process: d.slots[0].process}}
	for _, m := range d.members {
		out = append(out, store.Member{Name: m.name, Process: m.slot.process})
	}
	return out
}

// swap records the new instance as the one serving, then moves the proxy to
// it. The store first: a crash from here on finds the new instance recorded
// (and routes to it), a crash before finds the old one. From the proxy's
// swap on the new instance serves, so nothing is undone.
func (d *deployment) swap(endUrgent func()) error {
	e, l, inst := d.e, d.l, d.inst
	members := d.newMembers()
	sw := store.Swap{Commit: d.commit, Instance: d.name, State: store.StateRunning, EnvHash: d.hash,
		Members: members, Formation: d.change.formation, Health: d.m.Health.Path}
	if err := e.recordSwap(l, inst, sw, d.change); err != nil {
		return err
	}
	// Recorded: the new instance is the one to serve from now on, so nothing
	// is undone even when the proxy is slow to take it.
	d.undo.Success()
	old, err := e.routeAll(inst, webMembers(members), d.m.Health.Path)
	endUrgent()
	if err != nil {
		return err
	}
	old = union(old, webMembers(inst.Members)) // a rolling deploy took some out before
	if to := d.change.channel; to != nil {
		l.Logf("-----> %s now follows %s", inst.Resource(), describe(*to))
	}
	l.Logf("-----> %s now serves commit %s from %s", inst.Host, shortID(d.commit), strings.Join(webMembers(members), ", "))
	d.retiring = old
	return nil
}

// retireAndKeep registers what follows the swap, after the operation ends
// (see settle.go): the old instance is drained and deleted, and the new
// build is kept as an image for fast rollbacks. The snapshot for that image
// is taken now, while the instance is as its build left it.
func (d *deployment) retireAndKeep() {
	e, l := d.e, d.l
	var published <-chan publishResult
	if d.kept == nil {
		published = e.publish(l, d.inst, d.name, d.commit, d.hash)
	}
	old := d.retiring
	names := e.markRetiring(d.inst.ID, old, d.inst.Members)
	l.afterwards(func() error {
		err := e.retire(l, old, d.inst, names)
		if published != nil {
			err = errors.Join(err, e.keepImage(l, d.inst, d.commit, d.hash, published))
		}
		return err
	})
}

// rollBack undoes what the phases made, after err, and says how that went.
func (d *deployment) rollBack(err error) {
	l, inst := d.l, d.inst
	l.Logf("-----> Rolling back: %s", err)
	if rerr := d.undo.Fail(); rerr != nil {
		l.Logf("       Rollback failed: %s", rerr)
		return
	}
	if inst.Commit != "" {
		l.Logf("       Rollback succeeded: %s still serves commit %s", inst.Host, shortID(inst.Commit))
	} else {
		l.Logf("       Rollback succeeded: nothing was serving %s before; it still serves nothing", inst.Host)
	}
}

// release lets go of what the phases hold (a health check's context).
func (d *deployment) release() {
	for _, fn := range d.done {
		fn()
	}
}

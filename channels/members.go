package channels

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// A scaled installation's deployment makes several instances. The first (the
// primary, d.name) takes the single-instance path of phases.go, with its
// speed-ups and its release steps; the others are members, launched beside
// it from the same image, each built on its own, started once the primary's
// release steps ran, and health-checked when they take traffic. Their build
// output stays out of the operation's log (it is the primary's, again);
// a failing member's last lines are shown.

// member is one instance a deployment makes besides its primary.
type member struct {
	name  string
	slot  slot
	ahead *prewarm      // the instance a push started for it, or nil
	done  chan struct{} // closed when run has returned
	err   error
}

// LabelProcess is the label naming the process type an instance runs.
const LabelProcess = "process"

// memberName names the n-th instance (from 1) of an operation's set.
func memberName(inst store.Installation, opID int64, n int) string {
	if n <= 1 {
		return fmt.Sprintf("%s-%s-%d", inst.App, inst.Environment, opID)
	}
	return fmt.Sprintf("%s-%s-%d-%d", inst.App, inst.Environment, opID, n)
}

// startMembers launches a member for each of slots, the first named the
// n-th of the set, at once; waitMembers waits for them. Their undo waits for
// each to end, then deletes it.
func (d *deployment) startMembers(ctx context.Context, slots []slot, n int) []*member {
	var out []*member
	for i, s := range slots {
		m := &member{name: memberName(d.inst, d.opID, n+i), slot: s, done: make(chan struct{})}
		if d.kept == nil {
			if m.ahead = d.e.claimExtra(d.inst.ID, d.m.Image); m.ahead != nil {
				m.name = m.ahead.name
			}
		}
		out = append(out, m)
		d.undo.Add(func() error {
			<-m.done
			return d.e.deleteInstance(d.l, m.name, "new instance")
		})
		go func() {
			defer close(m.done)
			m.err = d.runMember(ctx, m)
		}()
	}
	return out
}

// waitMembers waits for members and returns the first failure.
func (d *deployment) waitMembers(ctx context.Context, members []*member) error {
	step := time.Now()
	var first error
	for _, m := range members {
		<-m.done
		if m.err != nil && first == nil {
			first = fmt.Errorf("instance %s (%s): %w", m.name, m.slot.process, m.err)
		}
	}
	if first == nil && len(members) > 0 {
		d.l.Logf("       %d more instance(s) ready: %s (%s)", len(members), memberList(members), time.Since(step).Round(time.Millisecond))
	}
	return first
}

func memberList(members []*member) string {
	var parts []string
	for _, m := range members {
		parts = append(parts, m.name+" ("+m.slot.process+")")
	}
	return strings.Join(parts, ", ")
}

// runMember makes one member serve: launch, storage, limits, tree and build
// (unless from a kept image), start after the primary's release, health.
func (d *deployment) runMember(ctx context.Context, m *member) error {
	e := d.e
	image := d.m.Image
	if d.kept != nil {
		image = d.kept.Fingerprint
	}
	if err := d.launchMember(ctx, m, image); err != nil {
		return err
	}
	if err := e.attachVolumes(ctx, d.l, d.inst, m.name, d.m); err != nil {
		return err
	}
	if err := e.attachDatabases(ctx, d.l, d.inst, m.name); err != nil {
		return err
	}
	if !d.limits.None() {
		if err := e.rt.Limit(ctx, m.name, d.limits.CPU, d.limits.Memory); err != nil {
			return e.stepError(ctx, "set limits", err)
		}
	}
	if d.kept == nil {
		if err := d.buildMember(ctx, m.name); err != nil {
			return err
		}
	}
	if err := d.released.wait(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := e.rt.StartProcesses(ctx, m.name, d.processesOf(m.slot)); err != nil {
		return e.stepError(ctx, "start "+m.slot.process, err)
	}
	if m.slot.web() {
		dial := func(ctx context.Context) (net.Conn, error) { return e.rt.Dial(ctx, m.name, e.cfg.AppPort) }
		if err := healthCheck(ctx, dial, d.inst.Host, d.m.Health); err != nil {
			return err
		}
	}
	if m.ahead != nil {
		return d.settleMember(ctx, m)
	}
	return nil
}

// settleMember waits for the end of the launch of the instance started
// ahead for m: it must have gone well before the instance serves, and Incus
// deletes an instance only once its launch has ended.
func (d *deployment) settleMember(ctx context.Context, m *member) error {
	select {
	case <-m.ahead.done:
	case <-ctx.Done():
		<-m.ahead.done
		return d.e.stepError(ctx, "create instance", ctx.Err())
	}
	if m.ahead.err != nil {
		return d.e.stepError(ctx, "create instance", m.ahead.err)
	}
	return nil
}

// launchMember waits for the instance started ahead for m, or launches one.
func (d *deployment) launchMember(ctx context.Context, m *member, image string) error {
	e := d.e
	if m.ahead != nil {
		if d.early() {
			// As the primary does: use it once its init runs; runMember
			// waits for the launch's end before it reports ready.
			if err := e.rt.Booted(ctx, m.name); err == nil {
				return nil
			}
		}
		return d.settleMember(ctx, m)
	}
	labels := e.placed(ctx, d.inst, d.m.Volumes, e.labels(d.inst, d.commit, d.opID))
	labels[LabelProcess] = m.slot.process
	if err := e.rt.Launch(ctx, m.name, image, labels); err != nil {
		return e.stepError(ctx, "create instance", err)
	}
	return nil
}

// buildMember copies the commit into a member and runs the build steps
// there, keeping their output for a failure's message.
func (d *deployment) buildMember(ctx context.Context, name string) error {
	e := d.e
	if err := e.putTree(ctx, d.repo, name, d.commit); err != nil {
		return e.stepError(ctx, "copy the commit into the instance", err)
	}
	env := under(d.app.BuildEnv, d.env)
	if usesCache(d.app.Build) {
		if err := d.built.wait(ctx); err != nil {
			return fmt.Errorf("build: %w", err)
		}
		if vr, ok := e.rt.(VolumeRuntime); ok {
			if err := vr.AttachVolumes(ctx, name, map[string]string{cacheVolume(d.inst): CacheMount}); err != nil {
				return e.stepError(ctx, "mount the build cache", err)
			}
			env["SLIPWAY_CACHE"] = CacheMount
		}
	}
	for _, step := range d.app.Build {
		var out limitedBuffer
		code, err := e.rt.Run(ctx, name, []string{"/bin/sh", "-c", "cd /app && " + step.Command}, env, &out)
		if err != nil {
			return e.stepError(ctx, "build step "+step.Name, err)
		}
		if code != 0 {
			return fmt.Errorf("build step %q exited with status %d: %s", step.Command, code, strings.TrimSpace(out.String()))
		}
	}
	return nil
}

// processesOf is what a slot's supervisor runs.
func (d *deployment) processesOf(s slot) runtime.Processes {
	p := runtime.Processes{Env: d.env, Dir: "/app", Grace: stopGrace}
	for _, proc := range s.procs {
		p.List = append(p.List, runtime.Process{Name: proc.Name, Command: proc.Command})
	}
	return p
}

// gate is a moment of the primary's that members wait for: its build (a
// warm build cache, which a rebuild empties first) or its release steps
// (migrations come before any new process starts).
type gate struct {
	once sync.Once
	ch   chan struct{}
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

func (g *gate) open() { g.once.Do(func() { close(g.ch) }) }

// wait returns once g is open, or with ctx's end.
func (g *gate) wait(ctx context.Context) error {
	select {
	case <-g.ch:
		return nil
	case <-ctx.Done():
		return ErrCancelled
	}
}

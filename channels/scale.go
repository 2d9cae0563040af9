package channels

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/slipway-dev/slipway/channels/detect"
	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// Scale sets how many instances of each process type an installation runs
// (counts are TYPE=COUNT) and, when surge is not nil, how many new instances
// a rolling deploy starts at a time. The counts hold for every later deploy,
// switch, restart and rollback.
func (e *Engine) Scale(ctx context.Context, app, env string, counts []string, surge *int, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	if surge != nil && (*surge < 0 || *surge > maxScale) {
		return store.Operation{}, failf(ErrInvalidName, "--surge %d: give 0 (all at once) to %d", *surge, maxScale)
	}
	procs, err := e.processesServed(inst)
	if err != nil {
		return store.Operation{}, err
	}
	var formation map[string]int
	if len(counts) > 0 || surge == nil {
		if formation, err = parseScale(counts, inst.Formation, procs); err != nil {
			return store.Operation{}, err
		}
	}
	op := store.Operation{Type: store.OpScale, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if surge != nil {
			if err := e.store.SetFormation(ctx, inst.ID, nil, surge); err != nil {
				return err
			}
			l.Logf("-----> Rolling deploys of %s start %s", inst.Resource(), DescribeSurge(*surge))
		}
		if formation == nil {
			return nil
		}
		l.Logf("-----> Scaling %s to %s", inst.Resource(), e.DescribeFormation(store.Installation{App: inst.App, Commit: inst.Commit, Formation: formation}))
		return e.reform(ctx, l, store.OpScale, inst.ID, formation, nil)
	})
}

// DescribeSurge says how rolling deploys start their new instances.
func DescribeSurge(surge int) string {
	if surge == 0 {
		return "every new instance at once"
	}
	return fmt.Sprintf("%d new instance(s) at a time", surge)
}

// DescribeFormation renders an installation's counts, every process type of
// the commit it serves included: web=3 worker=1.
func (e *Engine) DescribeFormation(inst store.Installation) string {
	procs, err := e.processesServed(inst)
	if err != nil || procs == nil {
		procs = []detect.Process{{Name: "web"}}
		for name := range inst.Formation {
			if name != "web" {
				procs = append(procs, detect.Process{Name: name})
			}
		}
		sort.Slice(procs[1:], func(a, b int) bool { return procs[1+a].Name < procs[1+b].Name })
	}
	return describeFormation(procs, inst.Formation)
}

// processesServed are the process types of the commit inst serves; nil
// before its first deploy.
func (e *Engine) processesServed(inst store.Installation) ([]detect.Process, error) {
	if inst.Commit == "" {
		return nil, nil
	}
	r, err := repo.Open(e.repoDir(inst.App))
	if err != nil {
		return nil, err
	}
	app, err := loadAppAt(r, inst.Commit)
	if err != nil {
		return nil, err
	}
	return app.Processes, nil
}

// reform brings the installation's instances of the commit it serves to
// formation, leaving out the instances in drop (dead ones, for heal): it
// keeps the members it can, starts the missing ones, health-checks them,
// then moves traffic and retires the rest. A change between one instance
// running several process types and one per type makes a new set instead.
func (e *Engine) reform(ctx context.Context, l *opLog, opType store.OpType, id int64, formation map[string]int, drop map[string]bool) (err error) {
	endUrgent := e.urgent.begin()
	defer endUrgent()
	inst, err := e.store.InstallationByID(ctx, id)
	if err != nil {
		return fmt.Errorf("installation is gone: %w", err)
	}
	if inst.Commit == "" {
		l.Logf("       Nothing is deployed yet: the first deploy starts these")
		return e.store.SetFormation(ctx, id, formation, nil)
	}
	e.resolved(l, inst.Commit)
	d, err := e.plan(ctx, l, opType, id, inst.Commit, l.id, &pending{formation: formation})
	if err != nil {
		return err
	}
	keep, add, remove := regroup(inst.Members, d.slots, drop)
	if shared(d.app.Processes, inst.Formation) != shared(d.app.Processes, formation) || d.hash != inst.EnvHash || !hasWeb(keep) {
		d.release()
		endUrgent()
		return e.replace(ctx, l, opType, id, inst.Commit, l.id, &pending{formation: formation})
	}
	defer d.release()
	defer func() {
		if err != nil {
			d.rollBack(err)
		}
	}()
	d.built.open()
	d.released.open() // the commit's release steps ran when it was deployed
	d.members = d.startMembers(ctx, add, 1)
	if err := d.waitMembers(ctx, d.members); err != nil {
		return err
	}
	return d.swapMembers(endUrgent, keep, remove, drop)
}

// regroup sorts the members into those kept (at most each type's count, the
// oldest first), the slots to start and the members to retire.
func regroup(members []store.Member, slots []slot, drop map[string]bool) (keep []store.Member, add []slot, remove []string) {
	have := map[string][]store.Member{}
	for _, m := range members {
		if !drop[m.Name] {
			have[m.Process] = append(have[m.Process], m)
		}
	}
	for _, s := range slots {
		if list := have[s.process]; len(list) > 0 {
			keep = append(keep, list[0])
			have[s.process] = list[1:]
			continue
		}
		add = append(add, s)
	}
	for _, list := range have {
		for _, m := range list {
			remove = append(remove, m.Name)
		}
	}
	return keep, add, remove
}

func hasWeb(members []store.Member) bool { return len(webMembers(members)) > 0 }

// swapMembers records kept and new members as the installation's set, moves
// traffic to its web members and retires the members removed and dropped.
func (d *deployment) swapMembers(endUrgent func(), keep []store.Member, remove []string, drop map[string]bool) error {
	e, l, inst := d.e, d.l, d.inst
	members := append([]store.Member(nil), keep...)
	for _, m := range d.members {
		members = append(members, store.Member{Name: m.name, Process: m.slot.process})
	}
	primary := webMembers(members)[0]
	sw := store.Swap{Commit: inst.Commit, Instance: primary, State: inst.State, EnvHash: inst.EnvHash,
		Members: members, Formation: d.change.formation, Health: inst.Health}
	if err := e.recordSwap(l, inst, sw, &pending{}); err != nil {
		return err
	}
	d.undo.Success()
	replaced, err := e.routeAll(inst, webMembers(members), inst.Health)
	endUrgent()
	if err != nil {
		return err
	}
	l.Logf("-----> %s now serves from %s", inst.Host, strings.Join(webMembers(members), ", "))
	gone := append(append([]string(nil), replaced...), remove...)
	for name := range drop {
		gone = append(gone, name)
	}
	names := e.markRetiring(inst.ID, gone, nil)
	l.afterwards(func() error { return e.retire(l, replaced, inst, names) })
	return nil
}

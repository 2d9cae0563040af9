package channels

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// Instance states, as ps shows them.
const (
	InstanceStarting = "starting" // made by an operation under way
	InstanceServing  = "serving"  // a web member: takes traffic
	InstanceRunning  = "running"  // a member of another process type
	InstanceDraining = "draining" // replaced: finishing its requests, then deleted
	InstanceStopped  = "stopped"  // a member that stopped: a heal replaces it
)

// ProcessRuntime reports what an instance's supervisor runs (container.Incus).
type ProcessRuntime interface {
	ProcessStates(ctx context.Context, name string) ([]runtime.ProcessState, error)
}

// InstanceReport is one instance of an installation, for ps.
type InstanceReport struct {
	Name      string
	Process   string // web, or another process type; "" for one not recorded yet
	Commit    string
	State     string
	Restarts  int       // times its supervisor restarted a process of it
	StartedAt time.Time // zero while it starts
	Member    string    // the Incus cluster member it runs on; "" off a cluster
}

// psTimeout bounds the question to each instance's supervisor.
const psTimeout = 2 * time.Second

// Instances reports every instance of an installation: its members first,
// then those starting or draining.
func (e *Engine) Instances(ctx context.Context, inst store.Installation) ([]InstanceReport, error) {
	list, err := e.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	out := e.reportsOf(inst, list)
	e.countRestarts(ctx, out)
	return out, nil
}

// InstanceStates counts every installation's instances by state, by
// APP/ENV, from one listing (for /metrics: no supervisor is asked).
func (e *Engine) InstanceStates(ctx context.Context) (map[string]map[string]int, error) {
	insts, err := e.store.Installations(ctx, "")
	if err != nil {
		return nil, err
	}
	list, err := e.rt.List(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]int{}
	for _, inst := range insts {
		counts := map[string]int{}
		for _, r := range e.reportsOf(inst, list) {
			counts[r.State]++
		}
		out[inst.Resource()] = counts
	}
	return out, nil
}

// reportsOf places inst's instances among those the runtime lists.
func (e *Engine) reportsOf(inst store.Installation, list []runtime.Instance) []InstanceReport {
	draining := map[string]bool{}
	for _, n := range e.Retiring(inst.ID) {
		draining[n] = true
	}
	id := strconv.FormatInt(inst.ID, 10)
	byName := map[string]runtime.Instance{}
	for _, in := range list {
		if in.Labels[LabelInstallation] == id {
			byName[in.Name] = in
		}
	}
	var out []InstanceReport
	for _, m := range inst.Members {
		r := InstanceReport{Name: m.Name, Process: m.Process, Commit: inst.Commit, StartedAt: m.StartedAt, State: InstanceStopped}
		if in, ok := byName[m.Name]; ok && in.Running {
			r.Member = in.Location
			r.State = InstanceRunning
			if m.Process == "web" {
				r.State = InstanceServing
			}
		}
		delete(byName, m.Name)
		out = append(out, r)
	}
	var others []InstanceReport
	for name, in := range byName {
		r := InstanceReport{Name: name, Process: in.Labels[LabelProcess], Commit: in.Labels[LabelCommit], State: InstanceStarting, Member: in.Location}
		if draining[name] {
			r.State = InstanceDraining
		}
		others = append(others, r)
	}
	sort.Slice(others, func(a, b int) bool { return others[a].Name < others[b].Name })
	return append(out, others...)
}

// countRestarts asks each running instance's supervisor, at once.
func (e *Engine) countRestarts(ctx context.Context, reports []InstanceReport) {
	pr, ok := e.rt.(ProcessRuntime)
	if !ok {
		return
	}
	var wg sync.WaitGroup
	for i := range reports {
		if reports[i].State == InstanceStopped {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			qctx, cancel := context.WithTimeout(ctx, psTimeout)
			defer cancel()
			states, err := pr.ProcessStates(qctx, reports[i].Name)
			if err != nil {
				return
			}
			for _, s := range states {
				reports[i].Restarts += s.Restarts
			}
		}()
	}
	wg.Wait()
}

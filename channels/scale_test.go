package channels

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

const workerManifest = "processes:\n  web: serve\n  worker: work\nhealth:\n  timeout: 2s\n"

// processesOn lists what each running instance's supervisor runs.
func (te *testEngine) processesOn() map[string]string {
	out := map[string]string{}
	for _, name := range te.rt.Running() {
		var procs []string
		for _, p := range te.rt.Processes(name).List {
			procs = append(procs, p.Name)
		}
		out[name] = strings.Join(procs, "+")
	}
	return out
}

func layoutOf(m map[string]string) string {
	var parts []string
	for _, procs := range m {
		parts = append(parts, procs)
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func TestScalingAProcessTypeGivesEachTypeItsInstances(t *testing.T) {
	te := newTestEngine(t, "shop")
	inst := te.install("shop")
	ctx := context.Background()
	te.wait(te.push("shop", te.commit("shop", workerManifest, "one")))
	if got := layoutOf(te.processesOn()); got != "web+worker" {
		t.Fatalf("unscaled: %q, want one instance running both", got)
	}
	for _, tc := range []struct {
		counts []string
		want   string
	}{
		{[]string{"worker=2"}, "web worker worker"},
		{[]string{"web=2"}, "web web worker worker"},
		{[]string{"worker=0"}, "web web"},
		{[]string{"web=1", "worker=1"}, "web+worker"},
	} {
		op, err := te.Scale(ctx, "shop", "prod", tc.counts, nil, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if op = te.wait(op); op.Status != store.StatusSucceeded {
			t.Fatalf("scale %v: %+v\n%s", tc.counts, op, te.log(op.ID))
		}
		if got := layoutOf(te.processesOn()); got != tc.want {
			t.Fatalf("after scale %v: instances run %q, want %q\n%s", tc.counts, got, tc.want, te.log(op.ID))
		}
		now, _ := te.store.InstallationByID(ctx, inst.ID)
		if len(now.Members) != len(strings.Fields(tc.want)) {
			t.Fatalf("after scale %v: members %+v", tc.counts, now.Members)
		}
	}
	// Counts hold through a deploy: two web instances serve the new commit.
	if _, err := te.Scale(ctx, "shop", "prod", []string{"web=2", "worker=0"}, nil, "alice"); err != nil {
		t.Fatal(err)
	}
	op := te.wait(te.push("shop", te.commit("shop", workerManifest, "two")))
	if got := layoutOf(te.processesOn()); op.Status != store.StatusSucceeded || got != "web web" {
		t.Fatalf("deploy after scale: %s, instances run %q\n%s", op.Status, got, te.log(op.ID))
	}
	if _, err := te.Scale(ctx, "shop", "prod", []string{"wrkr=1"}, nil, "alice"); err == nil || !strings.Contains(err.Error(), `runs no "wrkr" process`) {
		t.Fatalf("a type the app does not run: %v", err)
	}
}

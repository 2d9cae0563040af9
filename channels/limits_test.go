package channels

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

// Limits reach the new instance and are stored with its swap; a redeploy
// under new limits that fails keeps the old ones, stored and in force.
func TestLimitsBoundTheNewInstanceAndStayOnFailure(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	ctx := context.Background()
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	cpus, memory := 1, int64(256<<20)
	op, err := te.SetLimits(ctx, "web", "prod", &cpus, &memory, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := te.wait(op); got.Status != store.StatusSucceeded || got.Type != store.OpConfigure {
		t.Fatalf("limits operation: %+v\n%s", got, te.log(op.ID))
	}
	now, _ := te.store.InstallationByID(ctx, inst.ID)
	if now.Limits != (store.Limits{CPU: 1, Memory: 256 << 20}) {
		t.Errorf("stored limits %+v", now.Limits)
	}
	if c, m := te.rt.Limits(now.Instance); c != 1 || m != 256<<20 {
		t.Errorf("instance %s limits: %d CPUs, %d bytes", now.Instance, c, m)
	}
	if log := te.log(op.ID); !strings.Contains(log, "Limits of web/prod: 1 CPU, 256 MiB memory (were: none)") {
		t.Errorf("log:\n%s", log)
	}

	te.rt.Mu.Lock()
	te.rt.LaunchErr = errors.New("no room for another instance")
	te.rt.Mu.Unlock()
	none := int64(0)
	op, err = te.SetLimits(ctx, "web", "prod", nil, &none, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if got := te.wait(op); got.Status != store.StatusFailed {
		t.Fatalf("failing redeploy: %+v", got)
	}
	after, _ := te.store.InstallationByID(ctx, inst.ID)
	if after.Limits != now.Limits || after.Instance != now.Instance {
		t.Errorf("after a failed change: %+v serving %s, want %+v serving %s", after.Limits, after.Instance, now.Limits, now.Instance)
	}
}

// Limits set before the first deploy bound it.
func TestLimitsBeforeTheFirstDeploy(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	ctx := context.Background()
	cpus := 2
	op, err := te.SetLimits(ctx, "web", "prod", &cpus, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	te.wait(op)
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	now, _ := te.store.InstallationByID(ctx, inst.ID)
	if c, _ := te.rt.Limits(now.Instance); c != 2 || now.Limits.CPU != 2 {
		t.Errorf("first deploy: instance %d CPUs, stored %+v", c, now.Limits)
	}
}

func TestParseLimits(t *testing.T) {
	for in, want := range map[string]int64{"512MiB": 512 << 20, "1GiB": 1 << 30, "1.5G": 3 << 29, "100": 100 << 20, "64MB": 64e6, "none": 0} {
		if got, err := ParseMemory(in); err != nil || got != want {
			t.Errorf("ParseMemory(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for in, reason := range map[string]string{"lots": "give a size such as 512MiB", "-1G": "give a size", "1KB": "below 32 MiB", "999999GiB": "this host has", "": "give a size"} {
		if _, err := ParseMemory(in); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseMemory(%q): %v, want %q", in, err, reason)
		}
	}
	if n, err := ParseCPU("1"); n != 1 || err != nil {
		t.Errorf("ParseCPU(1) = %d, %v", n, err)
	}
	for in, reason := range map[string]string{"0": "whole number", "1.5": "whole number", "4096": "this host has"} {
		if _, err := ParseCPU(in); err == nil || !strings.Contains(err.Error(), reason) {
			t.Errorf("ParseCPU(%q): %v, want %q", in, err, reason)
		}
	}
}

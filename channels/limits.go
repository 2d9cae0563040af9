package channels

import (
	"context"
	"fmt"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/store"
)

// MinMemory is the smallest memory limit slipway sets: below it even a
// shell's instance fails to start, and the deploy would only roll back.
const MinMemory = 32 << 20

// ParseCPU reads `--cpu N`: a whole number of CPUs no larger than the host
// has, or "none" (0) to lift the limit.
func ParseCPU(s string) (int, error) {
	if s == "none" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, failf(ErrInvalidName, "--cpu %q: give a whole number of CPUs such as 2, or none", s)
	}
	if host := goruntime.NumCPU(); n > host {
		return 0, failf(ErrInvalidName, "--cpu %d: this host has %d CPUs", n, host)
	}
	return n, nil
}

var memoryUnits = []struct {
	suffix string
	bytes  int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30},
}

// ParseMemory reads `--memory SIZE`: 512MiB, 1GB, 1.5G or a plain number of
// MiB, between MinMemory and the host's memory, or "none" (0) to lift it.
func ParseMemory(s string) (int64, error) {
	if s == "none" {
		return 0, nil
	}
	num, unit := s, int64(1<<20)
	for _, u := range memoryUnits {
		if strings.HasSuffix(s, u.suffix) {
			num, unit = strings.TrimSuffix(s, u.suffix), u.bytes
			break
		}
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f <= 0 || f > 1<<50 {
		return 0, failf(ErrInvalidName, "--memory %q: give a size such as 512MiB or 2GiB, or none", s)
	}
	n := int64(f * float64(unit))
	if n < MinMemory {
		return 0, failf(ErrInvalidName, "--memory %s is below %s, too little for an instance to start", s, store.MemorySize(MinMemory))
	}
	if host := hostMemory(); host > 0 && n > host {
		return 0, failf(ErrInvalidName, "--memory %s: this host has %s", s, store.MemorySize(host))
	}
	return n, nil
}

// hostMemory is the host's memory in bytes from /proc/meminfo, or 0.
func hostMemory() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb int64
	for _, line := range strings.Split(string(b), "\n") {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

// SetLimits changes what an installation's instances may use (nil: keep
// that one) and redeploys the served commit bounded by them, as a configure
// operation: the limits are stored once the bounded instance serves, so a
// limit the app cannot live with is rolled back like any failed deploy.
func (e *Engine) SetLimits(ctx context.Context, app, env string, cpus *int, memory *int64, user string) (store.Operation, error) {
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	to := inst.Limits
	if cpus != nil {
		to.CPU = *cpus
	}
	if memory != nil {
		to.Memory = *memory
	}
	op := store.Operation{Type: store.OpConfigure, App: inst.App, Environment: inst.Environment, InstallationID: inst.ID,
		User: user, Commit: inst.Commit, Channel: inst.Channel()}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		now, err := e.store.InstallationByID(ctx, inst.ID)
		if err != nil {
			return err
		}
		l.Logf("-----> Limits of %s: %s (were: %s)", inst.Resource(), to, now.Limits)
		if now.Commit == "" {
			l.Logf("       Nothing is deployed yet: the first deploy will use these limits")
			return e.store.SetLimits(ctx, inst.ID, to)
		}
		e.resolved(l, now.Commit)
		return e.replace(ctx, l, store.OpConfigure, inst.ID, now.Commit, l.id, &pending{limits: &to})
	})
}

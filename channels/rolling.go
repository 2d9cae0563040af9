package channels

import (
	"context"
	"time"
)

// A rolling deploy: with a surge of N, the new set starts N instances at a
// time. Each batch, once healthy, takes traffic from as many old web
// instances, which stay up (out of the route) until the whole new set
// serves: a failure at any point routes traffic back to the old set and
// deletes the new instances. Without a surge (or on a first deploy) the
// whole set starts at once and traffic moves in one swap.

// batch is how many instances of the new set start in the first batch.
func (d *deployment) batch() int {
	if d.inst.Surge <= 0 || len(d.inst.Members) == 0 {
		return len(d.slots)
	}
	return min(d.inst.Surge, len(d.slots))
}

// roll starts the batches after the first, moving traffic batch by batch.
func (d *deployment) roll(ctx context.Context) error {
	n := d.batch()
	if n >= len(d.slots) {
		return nil
	}
	e, l := d.e, d.l
	oldWeb := webMembers(d.inst.Members)
	d.undo.Add(func() error {
		_, err := e.routeAll(d.inst, oldWeb, d.inst.Health)
		if err == nil {
			l.Logf("       Traffic back on %d old instance(s)", len(oldWeb))
		}
		return err
	})
	for {
		if err := d.shift(oldWeb); err != nil {
			return err
		}
		if n >= len(d.slots) {
			return nil
		}
		next := min(n+d.inst.Surge, len(d.slots))
		step := time.Now()
		l.Logf("-----> Starting instances %d to %d of %d", n+1, next, len(d.slots))
		batch := d.startMembers(ctx, d.slots[n:next], n+1)
		d.members = append(d.members, batch...)
		if err := d.waitMembers(ctx, batch); err != nil {
			return err
		}
		l.Logf("       Batch healthy (%s)", time.Since(step).Round(time.Millisecond))
		n = next
	}
}

// shift routes the installation's traffic to the new web instances so far
// and the old ones they do not yet replace.
func (d *deployment) shift(oldWeb []string) error {
	fresh := webMembers(d.newMembers())
	set := append(append([]string(nil), fresh...), oldWeb[min(len(fresh), len(oldWeb)):]...)
	if _, err := d.e.routeAll(d.inst, set, d.m.Health.Path); err != nil {
		return err
	}
	d.l.Logf("       Traffic on %d new and %d old instance(s)", len(fresh), len(set)-len(fresh))
	return nil
}

// union is a and the names of b not in a.
func union(a, b []string) []string {
	seen := map[string]bool{}
	out := append([]string(nil), a...)
	for _, n := range a {
		seen[n] = true
	}
	for _, n := range b {
		if !seen[n] {
			out = append(out, n)
			seen[n] = true
		}
	}
	return out
}

package channels

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/slipway-dev/slipway/channels/detect"
	"github.com/slipway-dev/slipway/store"
)

// An installation's formation is how many instances of each process type it
// runs. Unscaled, each type runs once, and one instance runs them all, as
// slipway always has: the cheapest layout. Once a count is not one, every
// instance runs one process type alone, so that a type can be scaled
// without the others; only web instances take traffic.

// processName is what a Procfile's process type may be named.
var processName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// maxScale bounds one process type's count: far more than a host serves,
// few enough that a typo cannot launch a thousand containers.
const maxScale = 20

// slot is one instance of a formation: the process type it stands for and
// the processes its supervisor runs.
type slot struct {
	process string
	procs   []detect.Process
}

// web reports whether the slot's instance takes traffic.
func (s slot) web() bool { return s.process == "web" }

// countOf is a process type's count in formation: one when it sets none.
func countOf(formation map[string]int, process string) int {
	if n, ok := formation[process]; ok {
		return n
	}
	return 1
}

// compact reports whether one instance runs every process: each type runs
// once.
func compact(procs []detect.Process, formation map[string]int) bool {
	for _, p := range procs {
		if countOf(formation, p.Name) != 1 {
			return false
		}
	}
	return true
}

// shared reports whether one instance runs several process types: what
// changes the layout when the counts change (an app with web alone has one
// either way).
func shared(procs []detect.Process, formation map[string]int) bool {
	return len(procs) > 1 && compact(procs, formation)
}

// slotsOf lays out the instances the app runs under formation, web first.
func slotsOf(procs []detect.Process, formation map[string]int) []slot {
	if compact(procs, formation) {
		return []slot{{process: "web", procs: procs}}
	}
	var out []slot
	for _, p := range webFirst(procs) {
		for range countOf(formation, p.Name) {
			out = append(out, slot{process: p.Name, procs: []detect.Process{p}})
		}
	}
	return out
}

func webFirst(procs []detect.Process) []detect.Process {
	out := append([]detect.Process(nil), procs...)
	sort.SliceStable(out, func(a, b int) bool { return out[a].Name == "web" && out[b].Name != "web" })
	return out
}

// parseScale reads scale's arguments, TYPE=COUNT each, over the counts
// already set. Types the app does not run are refused, so a typo does not
// pass for a change; before the first deploy (procs nil) any type name goes.
func parseScale(args []string, current map[string]int, procs []detect.Process) (map[string]int, error) {
	known := map[string]bool{}
	var names []string
	for _, p := range procs {
		known[p.Name] = true
		names = append(names, p.Name)
	}
	next := map[string]int{}
	for k, v := range current {
		if known[k] || procs == nil {
			next[k] = v
		}
	}
	if len(args) == 0 {
		return nil, failf(ErrInvalidName, "say what to scale, as TYPE=COUNT")
	}
	for _, arg := range args {
		name, count, ok := strings.Cut(arg, "=")
		n, err := strconv.Atoi(count)
		switch {
		case !ok || err != nil || n < 0:
			return nil, failf(ErrInvalidName, "%q is not TYPE=COUNT with a count of 0 or more", arg)
		case procs == nil && !processName.MatchString(name):
			return nil, failf(ErrInvalidName, "%q is not a process type (letters, digits, - and _)", name)
		case procs != nil && !known[name]:
			return nil, failf(ErrInvalidName, "the app runs no %q process (it runs %s)", name, strings.Join(names, ", "))
		case n > maxScale:
			return nil, failf(ErrInvalidName, "%s=%d: at most %d instances of one process type", name, n, maxScale)
		case name == "web" && n == 0:
			return nil, failf(ErrInvalidName, "web=0 would serve nothing: turn maintenance on, or uninstall the installation")
		}
		next[name] = n
	}
	return next, nil
}

// describeFormation renders counts as people type them: web=3 worker=1.
func describeFormation(procs []detect.Process, formation map[string]int) string {
	var parts []string
	for _, p := range webFirst(procs) {
		parts = append(parts, fmt.Sprintf("%s=%d", p.Name, countOf(formation, p.Name)))
	}
	return strings.Join(parts, " ")
}

// webMembers are the names of the members that take traffic.
func webMembers(members []store.Member) []string {
	var out []string
	for _, m := range members {
		if m.Process == "web" {
			out = append(out, m.Name)
		}
	}
	return out
}

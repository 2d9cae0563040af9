package channels

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/slipway-dev/slipway/channels/detect"
	"github.com/slipway-dev/slipway/store"
)

var webAndWorker = []detect.Process{{Name: "web", Command: "serve"}, {Name: "worker", Command: "work"}}

func layout(slots []slot) string {
	var parts []string
	for _, s := range slots {
		var names []string
		for _, p := range s.procs {
			names = append(names, p.Name)
		}
		parts = append(parts, s.process+":"+strings.Join(names, "+"))
	}
	return strings.Join(parts, " ")
}

func TestSlotsOfAFormation(t *testing.T) {
	for _, tc := range []struct {
		procs     []detect.Process
		formation map[string]int
		want      string
	}{
		{webAndWorker, nil, "web:web+worker"},                      // unscaled: one instance runs all
		{webAndWorker, map[string]int{"web": 1}, "web:web+worker"}, // set to what it was
		{webAndWorker, map[string]int{"web": 3}, "web:web web:web web:web worker:worker"},
		{webAndWorker, map[string]int{"worker": 0}, "web:web"},
		{webAndWorker, map[string]int{"web": 2, "worker": 2}, "web:web web:web worker:worker worker:worker"},
		{[]detect.Process{{Name: "worker"}, {Name: "web"}}, map[string]int{"web": 2}, "web:web web:web worker:worker"},
		{[]detect.Process{{Name: "web"}}, map[string]int{"web": 2, "gone": 4}, "web:web web:web"},
	} {
		if got := layout(slotsOf(tc.procs, tc.formation)); got != tc.want {
			t.Errorf("slotsOf(%v): %q, want %q", tc.formation, got, tc.want)
		}
	}
}

func TestParseScaleRefusesWhatCannotRun(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		procs []detect.Process
		want  string // "" ok, else a part of the reason
	}{
		{[]string{"web=3"}, webAndWorker, ""},
		{[]string{"web=3", "worker=0"}, webAndWorker, ""},
		{[]string{"worker=2"}, nil, ""}, // before the first deploy
		{[]string{"wrk=2"}, webAndWorker, `runs no "wrk" process (it runs web, worker)`},
		{[]string{"web=0"}, webAndWorker, "web=0 would serve nothing"},
		{[]string{"web=-1"}, webAndWorker, "count of 0 or more"},
		{[]string{"web"}, webAndWorker, "not TYPE=COUNT"},
		{[]string{"web=two"}, webAndWorker, "not TYPE=COUNT"},
		{[]string{"web=21"}, webAndWorker, "at most 20"},
		{[]string{"we b=2"}, nil, "not a process type"},
		{nil, webAndWorker, "TYPE=COUNT"},
	} {
		got, err := parseScale(tc.args, map[string]int{"worker": 1}, tc.procs)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrInvalidName)):
			t.Errorf("%v: got %v, %v; want a refusal with %q", tc.args, got, err, tc.want)
		case tc.want == "" && got["worker"] != 1 && !strings.Contains(fmt.Sprint(tc.args), "worker"):
			t.Errorf("%v: the worker count set before was lost: %v", tc.args, got)
		}
	}
}

func TestRegroupKeepsTheOldestAndStartsWhatIsMissing(t *testing.T) {
	members := []store.Member{{Name: "a-1", Process: "web"}, {Name: "a-2", Process: "web"}, {Name: "a-3", Process: "web"}, {Name: "a-4", Process: "worker"}}
	slots := slotsOf(webAndWorker, map[string]int{"web": 2, "worker": 2})
	keep, add, remove := regroup(members, slots, map[string]bool{"a-1": true})
	var kept []string
	for _, m := range keep {
		kept = append(kept, m.Name)
	}
	if fmt.Sprint(kept) != "[a-2 a-3 a-4]" || layout(add) != "worker:worker" || len(remove) != 0 {
		t.Fatalf("kept %v, add %q, remove %v", kept, layout(add), remove)
	}
	keep, add, remove = regroup(members, slotsOf(webAndWorker, map[string]int{"web": 1, "worker": 0}), nil)
	if len(keep) != 1 || keep[0].Name != "a-1" || len(add) != 0 || fmt.Sprint(sorted(remove)) != "[a-2 a-3 a-4]" {
		t.Fatalf("scale down: kept %v, add %q, remove %v", keep, layout(add), remove)
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

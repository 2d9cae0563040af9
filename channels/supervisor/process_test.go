package supervisor

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestStartRunsProcessesWithTheirEnvAndDir(t *testing.T) {
	_, root := newTest(t, Options{})
	f := follow(t, root)
	start(t, root, Spec{
		Processes: []ProcessSpec{{Name: "web", Command: `echo "port=$PORT home=$HOME dir=$(pwd)"; exec sleep 100`}},
		Env:       map[string]string{"PORT": "5000"},
	})
	f.waitLine(t, 5*time.Second, "port=5000 home=/root dir="+root+"/app")
	ev := f.events("web started")
	if len(ev) != 1 || !regexp.MustCompile(`^web started \(pid \d+\): echo`).MatchString(ev[0].Line) || ev[0].Process != EventProcess {
		t.Errorf("start events %+v", ev)
	}
	if p := status(t, root)["web"]; p.State != StateRunning || p.PID == 0 || p.Restarts != 0 || p.Started.IsZero() {
		t.Errorf("status %+v", p)
	}
}

func TestCrashingProcessIsRestartedWithDoublingBackoff(t *testing.T) {
	_, root := newTest(t, Options{BackoffMin: 20 * time.Millisecond, BackoffMax: 80 * time.Millisecond, StableAfter: time.Hour})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "crash", Command: "echo boom; exit 3"}}})
	f.wait(t, 5*time.Second, func(r Record) bool { return strings.Contains(r.Line, "restart 5 ") })

	want := []string{
		"crash exited with status 3; restart 1 in 3600 s, next in 20ms",
		"crash exited with status 3; restart 2 in 3600 s, next in 40ms",
		"crash exited with status 3; restart 3 in 3600 s, next in 80ms",
		"crash exited with status 3; restart 4 in 3600 s, next in 80ms", // capped
	}
	exits := f.events("crash exited")
	for i, w := range want {
		if exits[i].Line != w {
			t.Errorf("exit event %d: %q, want %q", i, exits[i].Line, w)
		}
	}
	// Each restart comes after its backoff.
	starts := f.events("crash started")
	for i, min := range []time.Duration{20, 40, 80} {
		if gap := starts[i+1].Time.Sub(exits[i].Time); gap < min*time.Millisecond {
			t.Errorf("restart %d after %v, want ≥ %dms", i+1, gap, min)
		}
	}
	// Output comes before the exit it led to.
	if boom := f.waitLine(t, time.Second, "boom"); boom.Seq >= exits[0].Seq {
		t.Error("the exit event came before the output")
	}
	p := status(t, root)["crash"]
	if p.Restarts < 4 || p.LastExit != "status 3" {
		t.Errorf("status %+v", p)
	}
}

func TestBackoffResetsAfterAStableRun(t *testing.T) {
	_, root := newTest(t, Options{BackoffMin: 20 * time.Millisecond, StableAfter: 100 * time.Millisecond})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "slow", Command: "sleep 0.15; exit 1"}}})
	for i := 0; len(f.events("slow exited")) < 3; i++ {
		if i > 500 {
			t.Fatalf("no three exits:\n%s", f.dump())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, e := range f.events("slow exited") {
		// Every run lasted past StableAfter, so none doubles the backoff,
		// and no more than one restart falls in the window.
		if !strings.HasSuffix(e.Line, "restart 1 in 100ms, next in 20ms") {
			t.Errorf("event %q", e.Line)
		}
	}
}

func TestProcessKilledBySignalSaysSo(t *testing.T) {
	_, root := newTest(t, Options{BackoffMin: time.Hour})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "web", Command: "kill -9 $$"}}})
	f.wait(t, 5*time.Second, func(r Record) bool { return strings.HasPrefix(r.Line, "web killed by signal 9; restart 1 in") })
	if p := status(t, root)["web"]; p.State != StateBackoff || p.LastExit != "killed by signal 9" || p.PID != 0 {
		t.Errorf("status %+v", p)
	}
}

func TestStopSendsTermThenKillAfterGrace(t *testing.T) {
	_, root := newTest(t, Options{})
	f := follow(t, root)
	start(t, root, Spec{Grace: 1, Processes: []ProcessSpec{
		{Name: "polite", Command: `trap 'echo got TERM; exit 0' TERM; echo up; while :; do sleep 0.02; done`},
		{Name: "stubborn", Command: `trap '' TERM; echo up; while :; do sleep 0.02; done`},
	}})
	f.wait(t, 5*time.Second, func(r Record) bool { return r.Process == "polite" && r.Line == "up" })
	f.wait(t, 5*time.Second, func(r Record) bool { return r.Process == "stubborn" && r.Line == "up" })

	begin := time.Now()
	start(t, root, Spec{}) // nothing: both are stopped
	took := time.Since(begin)
	if took < time.Second || took > 3*time.Second {
		t.Errorf("stopping took %v, want the 1 s grace", took)
	}
	f.wait(t, time.Second, func(r Record) bool { return r.Process == "polite" && r.Line == "got TERM" })
	f.waitLine(t, time.Second, "polite stopped (status 0)")
	f.waitLine(t, time.Second, "stubborn still running 1 s after SIGTERM: sending SIGKILL")
	f.waitLine(t, time.Second, "stubborn stopped (killed by signal 9)")
	if len(status(t, root)) != 0 {
		t.Error("processes left")
	}
}

func TestStartReplacesOnlyChangedProcesses(t *testing.T) {
	_, root := newTest(t, Options{})
	spec := Spec{Env: map[string]string{"V": "1"}, Processes: []ProcessSpec{
		{Name: "web", Command: "exec sleep 100"},
		{Name: "worker", Command: "exec sleep 101"},
		{Name: "cron", Command: "exec sleep 102"},
	}}
	start(t, root, spec)
	before := status(t, root)

	spec.Processes = []ProcessSpec{{Name: "web", Command: "exec sleep 100"}, {Name: "worker", Command: "exec sleep 99"}}
	start(t, root, spec)
	after := status(t, root)
	if after["web"].PID != before["web"].PID {
		t.Error("unchanged web was restarted")
	}
	if after["worker"].PID == before["worker"].PID || after["worker"].PID == 0 {
		t.Error("changed worker was not restarted")
	}
	if _, ok := after["cron"]; ok {
		t.Error("cron is still supervised")
	}
	for _, name := range []string{"worker", "cron"} {
		if syscall.Kill(before[name].PID, 0) == nil {
			t.Errorf("old %s (pid %d) still runs", name, before[name].PID)
		}
	}

	spec.Env["V"] = "2" // a new environment restarts everything
	start(t, root, spec)
	if now := status(t, root); now["web"].PID == after["web"].PID {
		t.Error("web kept its old environment")
	}
}

func TestStartErrorsNameTheProcess(t *testing.T) {
	_, root := newTest(t, Options{Shell: "/nonexistent/sh"}) // words, exec'd directly
	err := Start(context.Background(), dial(t, root), Spec{Processes: []ProcessSpec{
		{Name: "web", Command: "sleep 100"},
		{Name: "worker", Command: "no-such-binary --flag"},
	}})
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "start worker: no-such-binary: command not found") {
		t.Fatalf("got %v", err)
	}
	if p := status(t, root)["web"]; p.State != StateRunning {
		t.Errorf("web %+v", p)
	}
	for _, bad := range []Spec{
		{Processes: []ProcessSpec{{Name: "a", Command: "x"}, {Name: "a", Command: "y"}}},
		{Processes: []ProcessSpec{{Name: "../a", Command: "x"}}},
		{Processes: []ProcessSpec{{Name: "a"}}},
		{Processes: []ProcessSpec{{Name: "a", Command: "x"}}, Env: map[string]string{"A=B": "c"}},
	} {
		if err := Start(context.Background(), dial(t, root), bad); !errors.Is(err, ErrRefused) {
			t.Errorf("%+v: got %v", bad, err)
		}
	}
}

func TestShutdownStopsEverything(t *testing.T) {
	ctxDone := make(chan struct{})
	s, root := newTest(t, Options{})
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "web", Command: "exec sleep 100"}}})
	pid := status(t, root)["web"].PID
	go func() { s.shutdown(); close(ctxDone) }()
	select {
	case <-ctxDone:
	case <-time.After(5 * time.Second):
		t.Fatal("shutdown hangs")
	}
	if syscall.Kill(pid, 0) == nil {
		t.Errorf("web (pid %d) survived", pid)
	}
	err := Start(context.Background(), dial(t, root), Spec{Processes: []ProcessSpec{{Name: "web", Command: "true"}}})
	if err == nil || !strings.Contains(err.Error(), "stopping") {
		t.Errorf("start after shutdown: %v", err)
	}
}

// A process that never runs stably makes the supervisor give up: it stops,
// and so does the instance it is the init of, for the daemon to replace.
func TestSupervisorGivesUpOnAProcessThatKeepsCrashing(t *testing.T) {
	s, root := newTest(t, Options{GiveUpAfter: 3, BackoffMax: 20 * time.Millisecond})
	f := follow(t, root)
	start(t, root, Spec{Processes: []ProcessSpec{{Name: "steady", Command: "sleep 1000"}, {Name: "crash", Command: "exit 3"}}})
	select {
	case <-s.GaveUp():
	case <-time.After(10 * time.Second):
		t.Fatal("the supervisor did not give up on a process that crashed again and again")
	}
	f.wait(t, 5*time.Second, func(r Record) bool {
		return strings.HasPrefix(r.Line, "crash exited 3 times without running 3600 s: giving up")
	})
	if n := len(f.events("crash started")); n != 3 {
		t.Fatalf("crash started %d times, want 3 before giving up", n)
	}
	// Its shutdown stops the other processes too.
	f.wait(t, 5*time.Second, func(r Record) bool { return strings.HasPrefix(r.Line, "steady stopped") })
}

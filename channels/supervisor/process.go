package supervisor

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// process is one supervised command: started, restarted with backoff when
// it exits, stopped on request.
type process struct {
	s     *Supervisor
	spec  ProcessSpec
	argv  []string
	env   []string
	dir   string
	grace time.Duration

	stopOnce sync.Once
	stopCh   chan struct{} // closed to stop it
	done     chan struct{} // closed when its loop has returned

	mu       sync.Mutex
	pid      int
	state    string
	restarts int
	started  time.Time
	lastExit string
}

// running is one run of a process.
type running struct {
	pid     int
	exit    <-chan unix.WaitStatus
	outputs [2]chan struct{} // closed when stdout, stderr reach EOF
	started time.Time
}

// launch starts p's first run (so the caller learns a failed exec) and
// supervises it from then on.
func (s *Supervisor) launch(ps ProcessSpec, env []string, dir string, grace time.Duration) (*process, error) {
	p := &process{
		s: s, spec: ps, argv: s.argvFor(ps.Command), env: env, dir: dir, grace: grace,
		stopCh: make(chan struct{}), done: make(chan struct{}),
	}
	run, err := p.spawn()
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", ps.Name, err)
	}
	go p.loop(run)
	return p, nil
}

func (p *process) spawn() (*running, error) {
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, err
	}
	pid, exit, err := p.s.start(command{argv: p.argv, env: p.env, dir: p.dir, stdout: outW, stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return nil, err
	}
	run := &running{pid: pid, exit: exit, started: time.Now(), outputs: [2]chan struct{}{make(chan struct{}), make(chan struct{})}}
	p.mu.Lock()
	p.pid, p.state, p.started = pid, StateRunning, run.started
	p.mu.Unlock()
	// Before the first output line: the pipe holds it meanwhile.
	p.s.ring.event("%s started (pid %d): %s", p.spec.Name, pid, p.spec.Command)
	go capture(p.s.ring, p.spec.Name, StreamStdout, outR, run.outputs[0])
	go capture(p.s.ring, p.spec.Name, StreamStderr, errR, run.outputs[1])
	return run, nil
}

// loop waits for each run to end and starts the next after the backoff,
// until stopped.
func (p *process) loop(run *running) {
	defer close(p.done)
	o := p.s.opts
	backoff := o.BackoffMin
	var recent []time.Time // restarts within the last StableAfter
	unstable := 0          // restarts since the last stable run
	for {
		var ws unix.WaitStatus
		select {
		case ws = <-run.exit:
		case <-p.stopCh:
			p.terminate(run)
			return
		}
		p.settle(run, true)
		now := time.Now()
		if now.Sub(run.started) >= o.StableAfter {
			backoff, unstable = o.BackoffMin, 0
		}
		unstable++
		recent = append(pruneBefore(recent, now.Add(-o.StableAfter)), now)
		p.exited(ws, backoff, len(recent))
		if o.GiveUpAfter > 0 && unstable >= o.GiveUpAfter {
			p.s.ring.event("%s exited %d times without running %s: giving up, the instance stops so that a fresh one replaces it",
				p.spec.Name, unstable, seconds(o.StableAfter))
			p.s.giveUp()
			<-p.stopCh // the shutdown the give-up starts stops every process
			return
		}
		for {
			if !p.sleep(backoff) {
				return
			}
			backoff = min(backoff*2, o.BackoffMax)
			next, err := p.spawn()
			if err == nil {
				run = next
				break
			}
			p.s.ring.event("%s failed to start: %s; next in %s", p.spec.Name, oneLine(err.Error()), seconds(backoff))
		}
	}
}

func (p *process) exited(ws unix.WaitStatus, backoff time.Duration, recent int) {
	how := exitString(ws)
	p.mu.Lock()
	p.pid, p.state, p.lastExit = 0, StateBackoff, how
	p.restarts++
	p.mu.Unlock()
	verb := "exited with "
	if ws.Signaled() {
		verb = ""
	}
	p.s.ring.event("%s %s%s; restart %d in %s, next in %s", p.spec.Name, verb, how, recent, seconds(p.s.opts.StableAfter), seconds(backoff))
}

// sleep waits d, or returns false when p is stopped meanwhile.
func (p *process) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.stopCh:
		return false
	}
}

// settle waits briefly for the run's last output, so its exit event comes
// after its last lines, then kills what is left of its process group: a
// child left holding the app's port would make every restart fail.
func (p *process) settle(run *running, kill bool) {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	for _, done := range run.outputs {
		select {
		case <-done:
		case <-t.C:
		}
	}
	if kill && groupAlive(run.pid) {
		killGroup(run.pid, syscall.SIGKILL)
	}
}

// terminate stops a run: SIGTERM to its group, then SIGKILL to what is
// left of the group once the grace has passed.
func (p *process) terminate(run *running) {
	p.mu.Lock()
	p.state = StateStopping
	p.mu.Unlock()
	killGroup(run.pid, syscall.SIGTERM)
	deadline := time.Now().Add(p.grace)
	t := time.NewTimer(p.grace)
	defer t.Stop()
	var ws unix.WaitStatus
	exited := true
	select {
	case ws = <-run.exit:
	case <-t.C:
		exited = false
	}
	for exited && groupAlive(run.pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if !exited || groupAlive(run.pid) {
		p.s.ring.event("%s still running %s after SIGTERM: sending SIGKILL", p.spec.Name, seconds(p.grace))
		killGroup(run.pid, syscall.SIGKILL)
		if !exited {
			ws = <-run.exit
		}
	}
	p.settle(run, false)
	p.mu.Lock()
	p.pid, p.lastExit = 0, exitString(ws)
	p.mu.Unlock()
	p.s.ring.event("%s stopped (%s)", p.spec.Name, exitString(ws))
}

func (p *process) stop() {
	p.stopOnce.Do(func() { close(p.stopCh) })
	<-p.done
}

func (p *process) status() ProcessStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	return ProcessStatus{Name: p.spec.Name, PID: p.pid, State: p.state, Restarts: p.restarts, Started: p.started, LastExit: p.lastExit}
}

func pruneBefore(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cut) {
		i++
	}
	return ts[i:]
}

// seconds prints d as the events do: "4 s", or Go's form below a second.
func seconds(d time.Duration) string {
	if d >= time.Second && d%time.Second == 0 {
		return fmt.Sprintf("%d s", d/time.Second)
	}
	return d.String()
}

package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

var errStopping = errors.New("the supervisor is stopping")

// serveStart replaces the supervised set with spec's processes.
func (s *Supervisor) serveStart(spec *Spec) error {
	if spec == nil {
		return errors.New("start without a spec")
	}
	if err := checkSpec(spec); err != nil {
		return err
	}
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	stopping := s.stopping
	old := s.procs
	s.mu.Unlock()
	if stopping {
		return errStopping
	}
	env := envList(spec.Env)
	dir := s.path(cmp(spec.Dir, "/app"))
	grace := s.opts.Grace
	if spec.Grace > 0 {
		grace = time.Duration(spec.Grace) * time.Second
	}

	next := map[string]*process{}
	var gone []*process
	for name, p := range old {
		if ps, ok := find(spec.Processes, name); ok && ps.Command == p.spec.Command && slices.Equal(env, p.env) && dir == p.dir {
			p.grace = grace
			next[name] = p
			continue
		}
		gone = append(gone, p)
	}
	// Stopped first, so a changed web has let go of its port before the new one binds it.
	stopAll(gone)
	s.setProcs(next)
	for _, ps := range spec.Processes {
		if next[ps.Name] != nil {
			continue
		}
		p, err := s.launch(ps, env, dir, grace)
		if err != nil {
			return err
		}
		next[ps.Name] = p
		s.setProcs(next)
	}
	return nil
}

func (s *Supervisor) setProcs(m map[string]*process) {
	s.mu.Lock()
	s.procs = maps(m)
	s.mu.Unlock()
}

func maps(m map[string]*process) map[string]*process {
	c := make(map[string]*process, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func find(ps []ProcessSpec, name string) (ProcessSpec, bool) {
	for _, p := range ps {
		if p.Name == name {
			return p, true
		}
	}
	return ProcessSpec{}, false
}

func cmp(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// stopAll stops ps at once (each with its own grace) and waits for all.
func stopAll(ps []*process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() { defer wg.Done(); p.stop() }()
	}
	wg.Wait()
}

func checkSpec(spec *Spec) error {
	seen := map[string]bool{}
	for _, p := range spec.Processes {
		if !goodName(p.Name) {
			return fmt.Errorf("bad process name %q", oneLine(p.Name))
		}
		if seen[p.Name] {
			return fmt.Errorf("process %s named twice", p.Name)
		}
		seen[p.Name] = true
		if len(p.Command) == 0 || len(p.Command) > 64<<10 {
			return fmt.Errorf("process %s: empty or oversized command", p.Name)
		}
	}
	if spec.Grace < 0 || spec.Grace > 3600 {
		return fmt.Errorf("grace_seconds %d out of range", spec.Grace)
	}
	return checkEnv(spec.Env)
}

func goodName(n string) bool {
	if n == "" || len(n) > 64 || n == EventProcess {
		return false
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// shutdown stops every process and exec and refuses new ones.
func (s *Supervisor) shutdown() {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	s.mu.Lock()
	s.stopping = true
	var ps []*process
	for _, p := range s.procs {
		ps = append(ps, p)
	}
	execs := make([]int, 0, len(s.execs))
	for pid := range s.execs {
		execs = append(execs, pid)
	}
	s.mu.Unlock()
	s.ring.event("supervisor stopping %d processes", len(ps))
	for _, pid := range execs {
		killGroup(pid, sigTERM)
	}
	stopAll(ps)
	for _, pid := range execs {
		killGroup(pid, sigKILL)
	}
	s.ring.event("supervisor stopped")
}

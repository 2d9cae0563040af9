package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of utime and stime in
// /proc/PID/stat; it is 100 on every architecture Go supports on Linux.
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time pid has used.
func procCPU(pid int) (time.Duration, error) {
	fields, err := procStat(pid)
	if err != nil {
		return 0, err
	}
	// Fields after the command: state(3) ppid(4) ... utime(14) stime(15).
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad utime/stime", pid)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// procStat returns the fields of /proc/PID/stat after the command name
// (which may contain spaces), so fields[0] is the state, fields[1] the ppid.
func procStat(pid int) ([]string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return fields, nil
}

// vmHWM returns pid's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// resetHWM resets pid's peak RSS to its current RSS (Linux ≥ 4.0), so a
// later vmHWM measures one operation rather than the process's life.
func resetHWM(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// descendants returns the pids of every process below root.
func descendants(root int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fields, err := procStat(pid)
		if err != nil {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], pid)
	}
	var out []int
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// rssSampler follows the peak RSS of a process and of every process below
// it, polling /proc every 10 ms (the kernel has no children file here).
// A child's VmHWM only grows, so the last sample before it exits is its
// peak to within 10 ms of growth.
type rssSampler struct {
	root     int
	mu       sync.Mutex
	self     int64          // root's VmHWM
	children map[int]int64  // pid -> VmHWM
	names    map[int]string // pid -> command
	stop     chan struct{}
	done     chan struct{}
}

func sampleRSS(root int) *rssSampler {
	s := &rssSampler{root: root, children: map[int]int64{}, names: map[int]string{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stop:
				s.sample()
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	hwm, _ := vmHWM(s.root)
	pids := descendants(s.root)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.self = max(s.self, hwm)
	for _, p := range pids {
		h, err := vmHWM(p)
		if err != nil {
			continue
		}
		if h > s.children[p] {
			s.children[p] = h
		}
		if _, ok := s.names[p]; !ok {
			comm, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/cmdline")
			s.names[p] = strings.Join(strings.Fields(strings.ReplaceAll(string(comm), "\x00", " ")), " ")
		}
	}
}

// result stops the sampler and returns root's peak and the largest child's
// peak with its command line.
func (s *rssSampler) result() (self, child int64, childCmd string) {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, h := range s.children {
		if h > child {
			child, childCmd = h, s.names[p]
		}
	}
	return s.self, child, childCmd
}

// loadAvg is the 1, 5 and 15 minute load averages: the bench shares the
// machine with whatever else runs on it, and says so.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// treeCPU returns the CPU time root and every process below it have used
// (nginx's master and its workers).
func treeCPU(root int) (time.Duration, error) {
	total, err := procCPU(root)
	if err != nil {
		return 0, err
	}
	for _, pid := range descendants(root) {
		if t, err := procCPU(pid); err == nil {
			total += t
		}
	}
	return total, nil
}

// treeSyscalls returns the read and write system calls root and every
// process below it have made (/proc/PID/io's syscr and syscw): what a proxy
// costs per request beyond its own code.
func treeSyscalls(root int) (reads, writes int64) {
	for _, pid := range append([]int{root}, descendants(root)...) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			k, v, _ := strings.Cut(line, ": ")
			n, _ := strconv.ParseInt(v, 10, 64)
			switch k {
			case "syscr":
				reads += n
			case "syscw":
				writes += n
			}
		}
	}
	return reads, writes
}

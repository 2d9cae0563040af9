package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// A test binary that dies without its cleanups (a -timeout panic, SIGKILL)
// takes its holders with it (Pdeathsig), and so every process of its
// clusters, but leaves its directory and its empty cgroups. Each cluster
// writes who owns it in an "owner" file; Start removes what dead owners
// left.

const ownerFile = "owner"

// startTime is a process's start time in clock ticks since boot, which
// with its PID names it even once the PID is reused.
func startTime(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	// Field 22 of stat; f[0] is field 3.
	if len(f) < 20 {
		return ""
	}
	return f[19]
}

// writeOwner records this process and the cluster's cgroup trees.
func writeOwner(dir string, cgroups []string) error {
	pid := os.Getpid()
	lines := append([]string{strconv.Itoa(pid) + " " + startTime(pid)}, cgroups...)
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

// sweep removes the directories and cgroups of clusters whose test binary
// is gone. It returns what it removed.
func sweep() []string {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "slwc-*"))
	var removed []string
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		pid, start, _ := strings.Cut(lines[0], " ")
		n, err := strconv.Atoi(pid)
		if err != nil || startTime(n) == start {
			continue // still running (or not ours to judge)
		}
		if len(MountsUnder(dir)) > 0 {
			continue
		}
		var cgroups []string
		for _, l := range lines[1:] {
			// Only the harness's own trees: a name it made, under cgroupfs.
			if strings.HasPrefix(l, "/sys/fs/cgroup/") && strings.HasPrefix(filepath.Base(l), "slwc-") {
				cgroups = append(cgroups, l)
			}
		}
		if removeCgroups(cgroups, 0) != nil {
			continue
		}
		if os.RemoveAll(dir) == nil {
			removed = append(removed, dir)
		}
	}
	return removed
}

// removeAppArmor unloads the AppArmor profiles the members' incusd loaded
// for their containers: kernel state an incusd killed with SIGKILL never
// unloads. Incus names them after the instance and its INCUS_DIR
// ("incus-NAME_<DIR>"), so the harness's directory in a name marks it ours.
// A host without AppArmor (like the one this was written on) has nothing
// to do here.
func removeAppArmor(dir string) error {
	const fs = "/sys/kernel/security/apparmor"
	b, err := os.ReadFile(fs + "/profiles")
	if err != nil {
		return nil
	}
	var errs []string
	for _, line := range strings.Split(string(b), "\n") {
		// "NAME (MODE)"
		name := line
		if i := strings.LastIndex(line, " ("); i >= 0 {
			name = line[:i]
		}
		if !strings.Contains(name, "<"+dir+"/") && !strings.Contains(name, "<"+dir+">") {
			continue
		}
		if err := os.WriteFile(fs+"/.remove", []byte(name), 0o200); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", name, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("AppArmor profiles left: %s", strings.Join(errs, "; "))
	}
	return nil
}

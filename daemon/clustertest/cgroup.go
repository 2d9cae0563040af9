package clustertest

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The cgroup tree is the host's: namespaces do not separate it. liblxc
// makes each container's cgroups (lxc.monitor.NAME, lxc.payload.NAME) below
// the cgroup of the incusd that starts it, and an incusd killed with SIGKILL
// never removes them. So each member runs in a cgroup of the harness's own,
// in every hierarchy, below the test's: two clusters' containers of the same
// name do not collide, nothing lands in the host incusd's cgroups, and
// teardown removes the lot.

// cgroupDirs returns, for every cgroup hierarchy mounted on the host, the
// directory of this process's own cgroup in it.
func cgroupDirs() ([]string, error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	// "ID:controllers:path"; cgroup2's controllers field is empty.
	paths := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(self)), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 {
			paths[f[1]] = f[2]
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, line := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, sf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(sf) < 3 {
			continue
		}
		mountPoint, root := pf[4], pf[3]
		key, ok := "", false
		switch sf[0] {
		case "cgroup2":
			ok = true
		case "cgroup":
			// The super options hold the hierarchy's controllers (or its
			// name=): its entry in /proc/self/cgroup is the one whose
			// controllers are all among them.
			opts := strings.Split(sf[2], ",")
			for k := range paths {
				if k == "" {
					continue
				}
				all := true
				for _, c := range strings.Split(k, ",") {
					all = all && slices.Contains(opts, c)
				}
				if all {
					key, ok = k, true
				}
			}
		}
		p, has := paths[key]
		ok = ok && has
		if !ok || root != "/" && !strings.HasPrefix(p, root) {
			continue
		}
		dirs = append(dirs, filepath.Join(mountPoint, strings.TrimPrefix(p, strings.TrimSuffix(root, "/"))))
	}
	return dirs, nil
}

// joinCgroup makes <own cgroup>/rel in every hierarchy and moves pid into
// it.
func joinCgroup(rel string, pid int) error {
	dirs, err := cgroupDirs()
	if err != nil {
		return err
	}
	for _, base := range dirs {
		dir := base
		for _, part := range strings.Split(rel, "/") {
			parent := dir
			dir = filepath.Join(dir, part)
			if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
				return err
			}
			// cgroup v1's cpuset starts a new cgroup with no CPUs and no
			// memory nodes, and refuses tasks until given some.
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				if cur, err := os.ReadFile(filepath.Join(dir, f)); err == nil && strings.TrimSpace(string(cur)) == "" {
					if v, err := os.ReadFile(filepath.Join(parent, f)); err == nil {
						_ = os.WriteFile(filepath.Join(dir, f), v, 0o644)
					}
				}
			}
		}
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move PID %d to %s: %w", pid, dir, err)
		}
	}
	return nil
}

// removeCgroups removes the given cgroup trees, deepest first, retrying
// while the last processes of a killed namespace finish exiting.
func removeCgroups(tops []string, patience time.Duration) error {
	deadline := time.Now().Add(patience)
	for {
		var left []string
		for _, top := range tops {
			var dirs []string
			_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
					left = append(left, dirs[i])
				}
			}
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups left: %v", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

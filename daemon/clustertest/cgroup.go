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

// The cgroup tree is the host's: namespaces do not separate it. liblxc,
// run as root, makes each container's cgroups (lxc.monitor.NAME,
// lxc.payload.NAME) below the cgroup of PID 1 as it sees PID 1 (in a
// member's PID namespace, its holder), and an incusd killed with SIGKILL
// never removes them. So each member runs in a cgroup of the harness's own,
// in every hierarchy, below the test's: two clusters' containers of the same
// name do not collide, nothing lands in the host incusd's cgroups, and
// teardown removes the lot.

// On a host where cgroup2 holds controllers (pure cgroup2, Debian 12's
// default) one rule changes that: liblxc, run as root, takes the cgroup of
// PID 1 as the base of its containers' cgroups and enables every controller
// in the base's cgroup.subtree_control, which cgroup2 refuses for a cgroup
// that has processes of its own, except the root. A member's PID 1 is its
// holder, in its base; so there the holder stays in the root cgroup of the
// unified hierarchy (where the host's incusd puts its containers too, and
// where Incus's own test suite does), and the containers' cgroups land
// there. Teardown then removes those one by one: lxcCgroups names them.
// Untested here: this machine's controllers are all on cgroup v1.

// unifiedRoot returns the unified hierarchy's mount point when its root has
// controllers to give, "" otherwise.
func unifiedRoot() string {
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		pf, sf := strings.Fields(pre), strings.Fields(post)
		// Pure cgroup2 is cgroup2 on /sys/fs/cgroup itself; liblxc ignores
		// the unified hierarchy's controllers on a hybrid host.
		if !ok || len(pf) < 5 || len(sf) < 1 || sf[0] != "cgroup2" || pf[3] != "/" || pf[4] != "/sys/fs/cgroup" {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(pf[4], "cgroup.controllers")); err == nil && strings.TrimSpace(string(b)) != "" {
			return pf[4]
		}
	}
	return ""
}

// descendants returns pid and every process below it.
func descendants(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 {
			if pp, err := strconv.Atoi(f[1]); err == nil {
				children[pp] = append(children[pp], p)
			}
		}
	}
	all := []int{pid}
	for i := 0; i < len(all); i++ {
		all = append(all, children[all[i]]...)
	}
	return all
}

// lxcCgroups returns the cgroup directories, named by liblxc
// (lxc.payload.*, lxc.monitor.*) and outside the trees in keep, that hold
// pid or a process below it (a member's holder: as the init of its PID
// namespace every orphan there becomes its child). Read before the member
// is killed, they are what its containers leave behind.
func lxcCgroups(pid int, keep []string) []string {
	mounts := map[string]string{} // hierarchy key, as in /proc/PID/cgroup, to mount point
	dirs, _ := cgroupDirsOf("self")
	for _, d := range dirs {
		mounts[d.key] = d.mount
	}
	seen := map[string]bool{}
	var found []string
	for _, p := range descendants(pid) {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			f := strings.SplitN(line, ":", 3)
			if len(f) != 3 {
				continue
			}
			mnt, ok := mounts[f[1]]
			if !ok {
				continue
			}
			// The first lxc.* element of the path is the tree to remove.
			parts := strings.Split(strings.Trim(f[2], "/"), "/")
			for i, part := range parts {
				if strings.HasPrefix(part, "lxc.payload.") || strings.HasPrefix(part, "lxc.monitor.") {
					dir := filepath.Join(append([]string{mnt}, parts[:i+1]...)...)
					inside := false
					for _, k := range keep {
						inside = inside || strings.HasPrefix(dir, k+"/")
					}
					if !inside && !seen[dir] {
						seen[dir] = true
						found = append(found, dir)
					}
					break
				}
			}
		}
	}
	return found
}

// cgroupDir is one hierarchy: where it is mounted, its key in
// /proc/PID/cgroup, and a process's cgroup directory in it.
type cgroupDir struct {
	mount, key, dir string
}

// cgroupDirs returns, for every cgroup hierarchy mounted on the host, the
// directory of this process's own cgroup in it.
func cgroupDirs() ([]string, error) {
	ds, err := cgroupDirsOf("self")
	var dirs []string
	for _, d := range ds {
		dirs = append(dirs, d.dir)
	}
	return dirs, err
}

func cgroupDirsOf(proc string) ([]cgroupDir, error) {
	self, err := os.ReadFile("/proc/" + proc + "/cgroup")
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
	var dirs []cgroupDir
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
		dirs = append(dirs, cgroupDir{mountPoint, key, filepath.Join(mountPoint, strings.TrimPrefix(p, strings.TrimSuffix(root, "/")))})
	}
	return dirs, nil
}

// joinCgroup makes <own cgroup>/rel in every hierarchy and moves pid into
// it; on a unified hierarchy with controllers it moves pid to the root
// instead (see above).
func joinCgroup(rel string, pid int) error {
	dirs, err := cgroupDirsOf("self")
	if err != nil {
		return err
	}
	unified := unifiedRoot()
	for _, d := range dirs {
		if unified != "" && d.mount == unified {
			if err := os.WriteFile(filepath.Join(unified, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				return fmt.Errorf("move PID %d to the root cgroup: %w", pid, err)
			}
			continue
		}
		dir := d.dir
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

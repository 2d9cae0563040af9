package container

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"

	"github.com/lxc/incus/v6/shared/api"
	"golang.org/x/sys/unix"
)

// InitPID returns the host pid of the instance's init, or ErrNotRunning.
func (c *Incus) InitPID(name string) (int64, error) {
	if pid := c.initFromCgroup(name); pid > 0 {
		return pid, nil
	}
	if c.launchOf(name) != nil {
		// Not booted yet; asking Incus now would only slow the launch.
		return 0, ErrNotRunning
	}
	state, _, err := c.srv.GetInstanceState(name)
	if err != nil {
		return 0, wrap(err, "instance state")
	}
	if state.Pid <= 0 {
		return 0, ErrNotRunning
	}
	return state.Pid, nil
}

// cgroupRoots are where LXC puts a container's processes, under cgroup v2
// and under the v1 hierarchies in use on hybrid hosts.
var cgroupRoots = []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/systemd"}

// initFromCgroup finds the instance's init among the processes of its
// cgroup: the one that is pid 1 in its own namespace. Asking Incus instead
// (GET .../state) gathers every counter of the instance and takes 20–30 ms
// here, which a rollback would wait for before its first health check. It
// returns 0 when the layout is not the one it knows; the caller asks Incus.
func (c *Incus) initFromCgroup(name string) int64 {
	lxcName := c.project + "_" + name // how Incus names a project's container for LXC
	if c.project == api.ProjectDefaultName {
		lxcName = name
	}
	for _, root := range cgroupRoots {
		procs, err := os.ReadFile(root + "/lxc.payload." + lxcName + "/cgroup.procs")
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(procs)) {
			pid, err := strconv.ParseInt(field, 10, 64)
			if err == nil && isNamespaceInit(pid) && hasOwnRoot(pid) {
				return pid
			}
		}
		return 0
	}
	return 0
}

// hasOwnRoot: pid's root directory is not the host's. LXC puts the
// container's first process in its cgroup before that process has pivoted
// into the instance's rootfs; until then it is not the instance's init, and
// its /proc/PID/root is the host's /.
func hasOwnRoot(pid int64) bool {
	var host, own unix.Stat_t
	if unix.Stat("/", &host) != nil || unix.Stat("/proc/"+strconv.FormatInt(pid, 10)+"/root", &own) != nil {
		return false
	}
	return host.Dev != own.Dev || host.Ino != own.Ino
}

// isNamespaceInit: the last NSpid of pid (its pid in the innermost pid
// namespace) is 1.
func isNamespaceInit(pid int64) bool {
	status, err := os.ReadFile("/proc/" + strconv.FormatInt(pid, 10) + "/status")
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "NSpid:"); ok {
			ids := strings.Fields(rest)
			return len(ids) > 1 && ids[len(ids)-1] == "1"
		}
	}
	return false
}

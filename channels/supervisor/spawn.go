package supervisor

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func itoa(n int) string { return strconv.Itoa(n) }

// command is one process to fork: argv, env, cwd, and its stdout and
// stderr (the same file for exec, so their order is kept).
type command struct {
	argv   []string
	env    []string
	dir    string
	stdout *os.File
	stderr *os.File
}

// argvFor turns a spec command into argv: /bin/sh -c when the instance has
// a shell, else its words (images without a shell still run a binary).
func (s *Supervisor) argvFor(cmd string) []string {
	if st, err := os.Stat(s.shell); err == nil && !st.IsDir() {
		return []string{s.shell, "-c", cmd}
	}
	return strings.Fields(cmd)
}

// start forks c in its own session (so its process group can be signalled
// as one), registering it with the reaper before any exit can be reaped.
func (s *Supervisor) start(c command) (int, <-chan unix.WaitStatus, error) {
	if len(c.argv) == 0 {
		return 0, nil, errors.New("empty command")
	}
	path, err := lookPath(c.argv[0], c.env)
	if err != nil {
		return 0, nil, err
	}
	stdin, err := os.Open(os.DevNull)
	if err != nil {
		return 0, nil, err
	}
	defer stdin.Close()
	attr := &syscall.ProcAttr{
		Dir:   c.dir,
		Env:   c.env,
		Files: []uintptr{stdin.Fd(), c.stdout.Fd(), c.stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	// syscall.ForkExec and not os/exec: exec.Cmd.Wait would race the
	// reaper for the status.
	return s.reaper.spawn(func() (int, error) { return syscall.ForkExec(path, c.argv, attr) })
}

// lookPath finds name in env's PATH, as a shell would; a name with a slash
// is used as it is.
func lookPath(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	dirs := BasePath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			dirs = v
		}
	}
	for _, dir := range filepath.SplitList(dirs) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New(name + ": command not found")
}

// killGroup signals pid's process group (its session: start made it the leader).
func killGroup(pid int, sig syscall.Signal) {
	if pid > 0 {
		_ = unix.Kill(-pid, sig)
	}
}

// groupAlive: some process of pid's group still exists.
func groupAlive(pid int) bool {
	return unix.Kill(-pid, 0) == nil
}

const (
	sigTERM = syscall.SIGTERM
	sigKILL = syscall.SIGKILL
)

func fdFile(fd int, name string) *os.File { return os.NewFile(uintptr(fd), name) }

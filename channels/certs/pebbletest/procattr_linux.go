package pebbletest

import (
	"os/exec"
	"syscall"
)

// dieWithParent has the kernel kill Pebble when the test binary dies without
// running its cleanups (a timeout's panic, a kill -9).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

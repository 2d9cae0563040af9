//go:build !linux

package pebbletest

import "os/exec"

func dieWithParent(cmd *exec.Cmd) {}

package container

import (
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// SupervisorBinary is the supervisor's file name, next to the slipway binary
// (just build puts both in bin/) and in the directory instances mount.
const SupervisorBinary = "slipway-supervisor"

// InstallSupervisor copies the supervisor binary at from into dir (made
// 0755: instances read it as an unprivileged root), replacing the one there
// atomically, and returns dir for Connect. Instances already running keep
// the binary they started with. The binary must be static: it runs on
// images without a C library, or with another one.
func InstallSupervisor(from, dir string) (string, error) {
	if err := checkStatic(from); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("install the supervisor: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", fmt.Errorf("install the supervisor: %w", err)
	}
	src, err := os.Open(from)
	if err != nil {
		return "", fmt.Errorf("install the supervisor: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".new-*")
	if err != nil {
		return "", fmt.Errorf("install the supervisor: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = io.Copy(tmp, src)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o755)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, SupervisorBinary))
	}
	if err != nil {
		return "", fmt.Errorf("install the supervisor: %w", err)
	}
	return dir, nil
}

// checkStatic refuses a binary that needs a dynamic loader.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("the supervisor %s is not a Linux binary (%v): build it with `just build`", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("the supervisor %s is linked dynamically; build it with CGO_ENABLED=0 (`just build` does)", path)
		}
	}
	return nil
}

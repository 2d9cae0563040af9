package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/slipway-dev/slipway/daemon/remote"
)

// remoteCmd is `slipway remote add NAME URL | remove NAME | default NAME | list`.
func remoteCmd(args []string) int {
	path, err := remote.Path()
	if err != nil {
		return fail(err)
	}
	c, err := remote.Load(path)
	if err != nil {
		return fail(err)
	}
	switch {
	case len(args) == 3 && args[0] == "add":
		err = c.Add(args[1], args[2])
	case len(args) == 2 && args[0] == "remove":
		err = c.Remove(args[1])
	case len(args) == 2 && args[0] == "default":
		if _, err = c.Get(args[1]); err == nil {
			c.Default = args[1]
		}
	case len(args) == 0 || len(args) == 1 && args[0] == "list":
		for _, r := range c.Remotes {
			mark := " "
			if r.Name == c.Default {
				mark = "*"
			}
			fmt.Printf("%s %s\t%s\n", mark, r.Name, r.URL)
		}
		return 0
	default:
		fmt.Fprintln(os.Stderr, "usage: slipway remote add NAME ssh://git@HOST:2222 | remove NAME | default NAME | list")
		return 2
	}
	if err == nil {
		err = c.Save(path)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// onRemote runs a slipway command on a remote over ssh, its arguments as
// they are: `slipway [-r NAME] maintenance hello/production on --message "Back at noon"`.
func onRemote(name string, args []string) int {
	path, err := remote.Path()
	if err != nil {
		return fail(err)
	}
	c, err := remote.Load(path)
	if err != nil {
		return fail(err)
	}
	r, err := c.Get(name)
	if err != nil {
		return fail(err)
	}
	sshArgs, err := remote.SSHArgs(r, args, isTerminal(os.Stdin) && isTerminal(os.Stdout))
	if err != nil {
		return fail(err)
	}
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		return fail(fmt.Errorf("ssh is not installed: %w", err))
	}
	// ssh takes the terminal, the signals and the exit status from here on.
	return fail(syscall.Exec(ssh, append([]string{"ssh"}, sshArgs...), os.Environ()))
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func fail(err error) int {
	fmt.Fprintf(os.Stderr, "slipway: %s\n", err)
	return 1
}

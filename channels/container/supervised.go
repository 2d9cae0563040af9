package container

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/channels/supervisor"
)

// Every instance runs slipway's own supervisor as its init (see package
// supervisor): a static binary in a host directory that each instance mounts
// read-only at SupervisorMount, run through LXC's lxc.init.cmd. So an app
// starts, logs and stops the same way on any image, with or without an init
// of its own, and delivering it costs no Incus exec.

// SupervisorMount is where instances see the supervisor's directory.
const SupervisorMount = "/.slipway"

// supervisorDialTimeout bounds the wait for a booting instance's supervisor.
const supervisorDialTimeout = 10 * time.Second

// supervisorConfig is what every instance's config and devices carry so that
// the supervisor is its init.
func (c *Incus) supervisorConfig() (map[string]string, map[string]map[string]string, error) {
	if c.supervisor == "" {
		return nil, nil, fmt.Errorf("no supervisor: this runtime was connected without one, so it cannot launch instances")
	}
	config := map[string]string{"raw.lxc": "lxc.init.cmd = " + SupervisorMount + "/" + SupervisorBinary}
	devices := map[string]map[string]string{
		"slipway": {"type": "disk", "source": c.supervisor, "path": SupervisorMount, "readonly": "true"},
	}
	return config, devices, nil
}

// dialSupervisor connects to the instance's supervisor once it has booted.
func (c *Incus) dialSupervisor(ctx context.Context, name string) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, supervisorDialTimeout)
	defer cancel()
	if r, err := c.relayFor(name); err != nil || r != nil {
		if err != nil {
			return nil, err
		}
		return r.DialSupervisor(ctx, name)
	}
	if err := c.Booted(ctx, name); err != nil {
		return nil, err
	}
	pid, err := c.InitPID(name)
	if err != nil {
		return nil, err
	}
	conn, err := supervisor.DialInstance(ctx, int(pid))
	if err != nil {
		return nil, fmt.Errorf("reach the supervisor of %s: %w", name, err)
	}
	return conn, nil
}

// Deliver unpacks tree (a tar of the app) into /app of the instance.
func (c *Incus) Deliver(ctx context.Context, name string, tree io.Reader) error {
	conn, err := c.dialSupervisor(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close()
	return supervisor.Deliver(ctx, conn, tree)
}

// Run runs argv in the instance through its supervisor, in /app, and returns
// its exit code; out gets its output. When ctx ends the command is killed.
func (c *Incus) Run(ctx context.Context, name string, argv []string, env map[string]string, out io.Writer) (int, error) {
	conn, err := c.dialSupervisor(ctx, name)
	if err != nil {
		return -1, err
	}
	defer conn.Close()
	return supervisor.Exec(ctx, conn, supervisor.ExecRequest{Argv: argv, Env: env, Dir: "/app"}, out)
}

// StartProcesses has the supervisor run p, replacing what it ran.
func (c *Incus) StartProcesses(ctx context.Context, name string, p runtime.Processes) error {
	spec := supervisor.Spec{Env: p.Env, Dir: p.Dir, Grace: int(p.Grace / time.Second)}
	for _, proc := range p.List {
		spec.Processes = append(spec.Processes, supervisor.ProcessSpec{Name: proc.Name, Command: proc.Command})
	}
	conn, err := c.dialSupervisor(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close()
	return supervisor.Start(ctx, conn, spec)
}

// FollowLogs hands fn what the instance's processes print after seq of boot
// (everything the supervisor holds for another boot), until the instance
// stops or ctx ends.
func (c *Incus) FollowLogs(ctx context.Context, name, boot string, seq uint64, fn func(runtime.LogLine) error) error {
	conn, err := c.dialSupervisor(ctx, name)
	if err != nil {
		return err
	}
	defer conn.Close()
	return supervisor.Logs(ctx, conn, supervisor.Cursor{Boot: boot, After: seq}, true, func(r supervisor.Record) error {
		return fn(runtime.LogLine{Time: r.Time, Process: r.Process, Stream: r.Stream, Line: r.Line, Boot: r.Boot, Seq: r.Seq})
	})
}

// ProcessStates reports the instance's processes as its supervisor runs them.
func (c *Incus) ProcessStates(ctx context.Context, name string) ([]runtime.ProcessState, error) {
	conn, err := c.dialSupervisor(ctx, name)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st, err := supervisor.Status(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []runtime.ProcessState
	for _, p := range st.Processes {
		out = append(out, runtime.ProcessState{Name: p.Name, State: p.State, Restarts: p.Restarts, Started: p.Started, LastExit: p.LastExit})
	}
	return out, nil
}

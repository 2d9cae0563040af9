package channels

import (
	"context"
	"io"
	"net"

	"github.com/slipway-dev/slipway/channels/runtime"
)

// Runtime is what the engine needs from a container runtime. The Incus
// implementation lives in channels/container; tests may use a fake.
type Runtime interface {
	// Launch creates and starts an instance of image carrying labels.
	Launch(ctx context.Context, name, image string, labels map[string]string) error
	// Booted returns once the instance's init runs, which may be before its
	// Launch returns, or the error of that Launch if it fails first.
	Booted(ctx context.Context, name string) error
	// Exec runs cmd in the instance and returns its exit code.
	Exec(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer) (int, error)
	// Deliver unpacks tree (a tar of the app) into /app of the instance.
	Deliver(ctx context.Context, name string, tree io.Reader) error
	// Run runs a build or release step in the instance (through its
	// supervisor, without Incus's exec) and returns its exit code.
	Run(ctx context.Context, name string, argv []string, env map[string]string, out io.Writer) (int, error)
	// StartProcesses has the instance's supervisor run the app's processes,
	// replacing any it runs.
	StartProcesses(ctx context.Context, name string, p runtime.Processes) error
	// Dial connects to 127.0.0.1:port inside the instance.
	Dial(ctx context.Context, name string, port int) (net.Conn, error)
	// Limit bounds an instance's CPUs and memory (bytes); 0 is no bound.
	Limit(ctx context.Context, name string, cpus int, memory int64) error
	// Start starts a stopped instance; Stop stops a running one.
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string) error
	// Snapshot snapshots an instance; PublishSnapshot makes an image of a
	// snapshot (Launch takes its fingerprint); DeleteImage deletes one.
	Snapshot(ctx context.Context, name, snapshot string) error
	PublishSnapshot(ctx context.Context, name, snapshot string, properties map[string]string) (string, error)
	DeleteImage(ctx context.Context, fingerprint string) error
	// Delete stops and deletes the instance; a missing instance is not an error.
	Delete(ctx context.Context, name string) error
	// FollowLogs hands fn what the instance's processes print, from the
	// line after seq of supervisor boot (all it holds if boot is another),
	// until the instance stops or ctx ends.
	FollowLogs(ctx context.Context, name, boot string, seq uint64, fn func(runtime.LogLine) error) error
	// List returns the instances carrying slipway labels.
	List(ctx context.Context) ([]Instance, error)
}

// Instance is what List reports of one container; the type is shared with
// the runtimes (package runtime), so they implement Runtime as they are.
type Instance = runtime.Instance

// Labels the engine puts on every instance it makes, so reconciliation can
// tell its own instances (and whose they are) from anything else.
const (
	LabelInstallation = "installation"
	LabelApp          = "app"
	LabelEnvironment  = "environment"
	LabelCommit       = "commit"
	LabelOperation    = "operation"
)

// TerminalRuntime runs a command on a pseudo-terminal (container.Incus).
type TerminalRuntime interface {
	ExecTerminal(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer, term runtime.Terminal) (int, error)
}

// exec runs cmd in the instance, on a terminal when one is given and the
// runtime has them.
func (e *Engine) exec(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer, term *runtime.Terminal) (int, error) {
	if tr, ok := e.rt.(TerminalRuntime); ok && term != nil {
		if term.Term != "" {
			env = under(env, map[string]string{"TERM": term.Term})
		}
		return tr.ExecTerminal(ctx, name, cmd, env, stdin, out, *term)
	}
	return e.rt.Exec(ctx, name, cmd, env, stdin, out)
}

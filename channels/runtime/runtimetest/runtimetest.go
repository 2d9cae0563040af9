// Package runtimetest is the in-memory container runtime of the unit tests
// (packages channels and web). Each instance "serves" a real HTTP server on
// loopback that answers with the instance's name, so the engine's health
// checks, swaps and drains run for real while no container is involved. The
// real runtime (channels/container over incusd) has its own tests.
package runtimetest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/slipway-dev/slipway/channels/runtime"
)

// Runtime is the fake. Its exported fields change how it behaves; a test sets
// them before the engine runs, or under Mu while operations may be running.
type Runtime struct {
	Mu sync.Mutex

	// FailExec gives the exit code of a command; nil: 0.
	FailExec func(cmd []string) int
	// BlockExec, when set, makes Exec of build steps wait on it or the context.
	BlockExec chan struct{}
	// LaunchErr fails every Launch before it makes anything.
	LaunchErr error
	// LateErr makes Launch make the instance (it boots) and then fail; the
	// instance is deleted shortly after, as the Incus runtime does in the
	// background with what a failed launch made.
	LateErr error
	// Hang, when set, makes new instances answer only once it is closed.
	Hang chan struct{}
	// HoldDelete, when set, makes Delete wait until it is closed.
	HoldDelete chan struct{}
	// DeleteErr fails every Delete.
	DeleteErr error

	// Launches records every Launch that made an instance, as "name from image".
	Launches []string

	hold      chan struct{}        // see HoldLaunches
	instances map[string]*instance // by name
	launched  map[string]error     // name -> outcome of its last Launch, for Booted
	published map[string]bool      // fingerprints of images that exist
	images    int
}

type instance struct {
	srv       *httptest.Server
	labels    map[string]string
	stopped   bool
	lines     []runtime.LogLine // what its processes printed (see Print)
	processes runtime.Processes // what StartProcesses gave it
	cpus      int               // what Limit gave it
	memory    int64
}

// New returns a fake with no instances and no images.
func New() *Runtime {
	return &Runtime{instances: map[string]*instance{}, launched: map[string]error{}, published: map[string]bool{}}
}

// Close stops the servers of the instances still there.
func (f *Runtime) Close() {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	for name, in := range f.instances {
		in.srv.CloseClientConnections()
		in.srv.Close()
		delete(f.instances, name)
	}
}

// HoldLaunches makes launches wait (or end with their context) until release
// is called.
func (f *Runtime) HoldLaunches() (release func()) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	hold := make(chan struct{})
	f.hold = hold
	return func() {
		f.Mu.Lock()
		defer f.Mu.Unlock()
		if f.hold == hold {
			f.hold = nil
		}
		close(hold)
	}
}

// Launch makes an instance of image; an image named by a fingerprint must
// have been published.
func (f *Runtime) Launch(ctx context.Context, name, image string, labels map[string]string) error {
	f.Mu.Lock()
	hold := f.hold
	f.Mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			f.Mu.Lock()
			f.launched[name] = ctx.Err()
			f.Mu.Unlock()
			return ctx.Err()
		}
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if f.LaunchErr != nil {
		f.launched[name] = f.LaunchErr
		return f.LaunchErr
	}
	if len(image) == 64 && !f.published[image] {
		err := fmt.Errorf("image %s not found", image)
		f.launched[name] = err
		return err
	}
	f.Launches = append(f.Launches, name+" from "+image)
	hang := f.Hang
	kept := make(map[string]string, len(labels))
	for k, v := range labels {
		kept[k] = v
	}
	f.instances[name] = &instance{labels: kept, srv: httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, name)
	}))}
	f.launched[name] = nil
	if f.LateErr != nil {
		time.AfterFunc(100*time.Millisecond, func() { f.Delete(context.Background(), name) })
	}
	return f.LateErr
}

// Booted waits until a Launch of name has made it, or returns the error of
// the Launch that failed first.
func (f *Runtime) Booted(ctx context.Context, name string) error {
	for {
		f.Mu.Lock()
		err, done := f.launched[name]
		f.Mu.Unlock()
		if done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Exec reads stdin, writes "ran <last argument>" and exits with FailExec's code.
func (f *Runtime) Exec(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer) (int, error) {
	if stdin != nil {
		io.Copy(io.Discard, stdin)
	}
	f.Mu.Lock()
	block, fail := f.BlockExec, f.FailExec
	f.Mu.Unlock()
	if block != nil && strings.Contains(strings.Join(cmd, " "), "build-step") {
		select {
		case <-block:
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	fmt.Fprintf(out, "ran %s\n", cmd[len(cmd)-1])
	if fail != nil {
		return fail(cmd), nil
	}
	return 0, nil
}

// Deliver reads the tree.
func (f *Runtime) Deliver(ctx context.Context, name string, tree io.Reader) error {
	_, err := io.Copy(io.Discard, tree)
	return err
}

// Run is Exec without stdin.
func (f *Runtime) Run(ctx context.Context, name string, argv []string, env map[string]string, out io.Writer) (int, error) {
	return f.Exec(ctx, name, argv, env, nil, out)
}

// StartProcesses records what was started; the instance serves already.
func (f *Runtime) StartProcesses(ctx context.Context, name string, p runtime.Processes) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if in := f.instances[name]; in != nil {
		in.processes = p
	}
	return nil
}

// Processes is what StartProcesses last gave instance name.
func (f *Runtime) Processes(name string) runtime.Processes {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if in := f.instances[name]; in != nil {
		return in.processes
	}
	return runtime.Processes{}
}

// Dial connects to the instance's server, whatever the port.
func (f *Runtime) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	f.Mu.Lock()
	in, ok := f.instances[name]
	running := ok && !in.stopped
	f.Mu.Unlock()
	if !running {
		return nil, fmt.Errorf("instance %s is not running", name)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", in.srv.Listener.Addr().String())
}

func (f *Runtime) Snapshot(ctx context.Context, name, snapshot string) error { return nil }

// PublishSnapshot makes a fake image: a fingerprint that Launch accepts.
func (f *Runtime) PublishSnapshot(ctx context.Context, name, snapshot string, properties map[string]string) (string, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	f.images++
	fp := fmt.Sprintf("%064x", f.images)
	f.published[fp] = true
	return fp, nil
}

func (f *Runtime) DeleteImage(ctx context.Context, fingerprint string) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	delete(f.published, fingerprint)
	return nil
}

func (f *Runtime) Start(ctx context.Context, name string) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if in, ok := f.instances[name]; ok {
		in.stopped = false
	}
	return nil
}

// Limit records the limits; Limits reads them back.
func (f *Runtime) Limit(ctx context.Context, name string, cpus int, memory int64) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	in, ok := f.instances[name]
	if !ok {
		return fmt.Errorf("set limits of %s: no such instance", name)
	}
	in.cpus, in.memory = cpus, memory
	return nil
}

// Limits returns what Limit set on an instance.
func (f *Runtime) Limits(name string) (cpus int, memory int64) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if in, ok := f.instances[name]; ok {
		return in.cpus, in.memory
	}
	return 0, 0
}

func (f *Runtime) Stop(ctx context.Context, name string) error {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if in, ok := f.instances[name]; ok {
		in.stopped = true
	}
	return nil
}

// Delete waits for HoldDelete, fails with DeleteErr, else deletes the
// instance; a missing instance is not an error.
func (f *Runtime) Delete(ctx context.Context, name string) error {
	f.Mu.Lock()
	hold, err := f.HoldDelete, f.DeleteErr
	f.Mu.Unlock()
	if hold != nil {
		<-hold
	}
	if err != nil {
		return err
	}
	f.Mu.Lock()
	defer f.Mu.Unlock()
	if in, ok := f.instances[name]; ok {
		in.srv.CloseClientConnections()
		in.srv.Close()
		delete(f.instances, name)
	}
	return nil
}

// List returns the instances with the labels they were launched with, sorted
// by name.
func (f *Runtime) List(ctx context.Context) ([]runtime.Instance, error) {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []runtime.Instance
	for name, in := range f.instances {
		labels := make(map[string]string, len(in.labels))
		for k, v := range in.labels {
			labels[k] = v
		}
		out = append(out, runtime.Instance{Name: name, Labels: labels, Running: !in.stopped})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Running returns the names of the instances that run, sorted.
func (f *Runtime) Running() []string {
	f.Mu.Lock()
	defer f.Mu.Unlock()
	var out []string
	for name, in := range f.instances {
		if !in.stopped {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

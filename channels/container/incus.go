// Package container runs slipway's instances on Incus, through the Go client
// over incusd's local unix socket. It implements the runtime interface the
// operation engine (package channels) declares: launch an instance from an
// image alias, exec into it, start the app under the image's supervisor, dial
// the app, list and delete instances.
//
// Every instance lives in one Incus project per daemon (or per test), and
// carries its labels as user.slipway.<key> config keys so that reconciliation
// finds its own instances and nothing else.
package container

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container/incusop"
	"github.com/slipway-dev/slipway/channels/runtime"
)

// LabelPrefix is the Incus config key prefix under which labels are stored.
const LabelPrefix = "user.slipway."

// Incus is the runtime over one Incus project. It is safe for concurrent use.
type Incus struct {
	srv        incus.InstanceServer
	project    string
	supervisor string // host directory holding the supervisor (see supervised.go)
	log        *slog.Logger

	mu        sync.Mutex
	nets      map[string]netns   // instance name -> cached network namespace of its init
	launching map[string]*launch // instance name -> its launch, while Incus works on it

	bg     sync.WaitGroup // background clean-ups of half-made instances
	closed chan struct{}

	place     placement // where instances run, on a cluster (members.go)
	remoteURL string    // --incus-url, or "" for the unix socket
}

// SocketPath is where incusd listens: $INCUS_SOCKET, else
// $INCUS_DIR/unix.socket, else /var/lib/incus/unix.socket (Debian's incusd).
func SocketPath() string {
	if p := os.Getenv("INCUS_SOCKET"); p != "" {
		return p
	}
	dir := os.Getenv("INCUS_DIR")
	if dir == "" {
		dir = "/var/lib/incus"
	}
	return filepath.Join(dir, "unix.socket")
}

// ConnectServer connects to incusd over its unix socket, in the default
// project. Errors wrap ErrUnreachable when nothing answers.
func ConnectServer(ctx context.Context) (incus.InstanceServer, error) {
	path := SocketPath()
	// Operations are awaited with GET /operations/<id>/wait (one request,
	// no events websocket to keep alive or lose when incusd restarts).
	srv, err := incus.ConnectIncusUnixWithContext(ctx, path, &incus.ConnectionArgs{
		UserAgent:     "slipway",
		SkipGetEvents: true,
	})
	if err != nil {
		return nil, fmt.Errorf("%w at %s: %w", ErrUnreachable, path, err)
	}
	return srv, nil
}

// Connect connects to the local incusd and uses project, creating it when
// missing. supervisor is the directory InstallSupervisor filled, which every
// instance mounts; a runtime connected without one ("") can list, stop and
// delete instances but not launch them. A project it creates shares the default project's images and
// profiles (features.images=false, features.profiles=false), which is where
// `slipway setup` puts the base image and the root disk.
func Connect(project, supervisor string, logger *slog.Logger) (*Incus, error) {
	return ConnectTo(Remote{}, project, supervisor, logger)
}

// ConnectTo is Connect through remote's HTTPS API (the unix socket when its
// URL is empty).
func ConnectTo(remote Remote, project, supervisor string, logger *slog.Logger) (*Incus, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if project == "" {
		return nil, fmt.Errorf("connect to incus: %w: empty project name", ErrBadName)
	}
	var srv incus.InstanceServer
	var err error
	if remote.URL == "" {
		srv, err = ConnectServer(context.Background())
	} else {
		srv, err = remote.connect(context.Background())
	}
	if err != nil {
		return nil, err
	}
	if err := ensureProject(srv, project, logger); err != nil {
		srv.Disconnect()
		return nil, err
	}
	return &Incus{
		remoteURL:  remote.URL,
		srv:        srv.UseProject(project),
		project:    project,
		supervisor: supervisor,
		log:        logger.With("project", project),
		nets:       map[string]netns{},
		launching:  map[string]*launch{},
		closed:     make(chan struct{}),
	}, nil
}

func ensureProject(srv incus.InstanceServer, project string, log *slog.Logger) error {
	if _, _, err := srv.GetProject(project); err == nil {
		return nil
	} else if !api.StatusErrorCheck(err, 404) {
		return wrap(err, "look up incus project %s", project)
	}
	err := srv.CreateProject(api.ProjectsPost{
		Name: project,
		ProjectPut: api.ProjectPut{
			Description: "slipway instances",
			Config: map[string]string{
				"features.images":   "false",
				"features.profiles": "false",
			},
		},
	})
	if err != nil {
		// Another daemon or test may have made it in the meantime.
		if _, _, gerr := srv.GetProject(project); gerr == nil {
			return nil
		}
		return wrap(err, "create incus project %s", project)
	}
	log.Info("Created incus project", "project", project)
	return nil
}

// Project is the Incus project this runtime works in.
func (c *Incus) Project() string { return c.project }

// Server is the underlying client, bound to the project.
func (c *Incus) Server() incus.InstanceServer { return c.srv }

// Close waits for background clean-ups and disconnects.
func (c *Incus) Close() error {
	select {
	case <-c.closed:
		return nil
	default:
	}
	close(c.closed)
	c.bg.Wait()
	c.srv.Disconnect()
	return nil
}

var (
	nameRe  = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9-]{0,62}$`)
	labelRe = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]*$`)
)

func checkName(name string) error {
	if !nameRe.MatchString(name) || strings.HasSuffix(name, "-") {
		return fmt.Errorf("%w: instance name %q (letters, digits and '-', starting with a letter, at most 63)", ErrBadName, name)
	}
	return nil
}

// Launch creates and starts an instance of image (an alias) carrying labels,
// in one request: Incus creates it from the image and starts it within the
// same operation (API extension instance_create_start). If that fails after
// the instance was made, Launch deletes it again.
func (c *Incus) Launch(ctx context.Context, name, image string, labels map[string]string) error {
	return c.create(ctx, name, imageSource(image), "from "+image, labels)
}

// Snapshot takes a snapshot of an instance (cheap on btrfs: a subvolume
// snapshot), so a later Clone can start from exactly this state.
func (c *Incus) Snapshot(ctx context.Context, name, snapshot string) error {
	op, err := c.srv.CreateInstanceSnapshot(name, api.InstanceSnapshotsPost{Name: snapshot})
	if err != nil {
		return wrap(err, "snapshot %s", name)
	}
	// Waited for even when ctx ends: incusd goes on with a snapshot it has
	// begun, and a caller that deletes the instance meanwhile leaves its
	// subvolume behind, which then blocks deleting the instance for good.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if _, err := c.wait(wctx, op); err != nil {
		return wrap(err, "snapshot %s", name)
	}
	return ctx.Err()
}

func (c *Incus) create(ctx context.Context, name string, source api.InstanceSource, from string, labels map[string]string) (err error) {
	return c.createWith(ctx, name, source, from, labels, nil)
}

func (c *Incus) createWith(ctx context.Context, name string, source api.InstanceSource, from string, labels map[string]string, extra Devices) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	config, devices, err := c.supervisorConfig()
	if err != nil {
		return fmt.Errorf("launch %s: %w", name, err)
	}
	for k, d := range extra {
		if _, taken := devices[k]; taken {
			return fmt.Errorf("launch %s: %w: device %q is the supervisor's", name, ErrBadName, k)
		}
		devices[k] = d
	}
	for k, v := range labels {
		if !labelRe.MatchString(k) {
			return fmt.Errorf("launch %s: %w: label key %q", name, ErrBadName, k)
		}
		config[LabelPrefix+k] = v
	}
	start := time.Now()
	l := c.startLaunch(name)
	defer func() { c.endLaunch(name, l, err) }()
	member, spread := labels[LabelMember], false
	if member == "" {
		var placed func()
		member, placed = c.spread(labels["installation"])
		defer placed()
		spread = member != ""
	}
	post := api.InstancesPost{
		Name:   name,
		Type:   api.InstanceTypeContainer,
		Start:  true,
		Source: source,
		InstancePut: api.InstancePut{
			Config:  config,
			Devices: devices,
		},
	}
	op, err := c.onMember(member).CreateInstance(post)
	if err != nil && spread {
		// The member spread chose went away meanwhile: Incus's scheduler
		// knows better which are left.
		c.log.Debug("Launch on the member spread chose failed; Incus places it", "instance", name, "member", member, "err", err)
		op, err = c.srv.CreateInstance(post)
	}
	if err != nil {
		if isExists(err) {
			return fmt.Errorf("launch %s: instance %w (%v)", name, ErrExists, err)
		}
		if isNoImage(err) {
			return fmt.Errorf("launch %s %s: image %w (%v)", name, from, ErrNotFound, err)
		}
		return wrap(err, "launch %s %s", name, from)
	}
	if _, err := c.wait(ctx, op); err != nil {
		if !isExists(err) {
			c.cleanup(op, name)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("launch %s %s: %w", name, from, ctx.Err())
		}
		if isExists(err) {
			return fmt.Errorf("launch %s: instance %w (%v)", name, ErrExists, err)
		}
		if isNoImage(err) {
			return fmt.Errorf("launch %s %s: image %w (%v)", name, from, ErrNotFound, err)
		}
		return wrap(err, "launch %s %s", name, from)
	}
	c.log.Debug("Launched instance", "instance", name, "source", from, "took", time.Since(start))
	// Asking Incus for the init pid that Dial needs takes tens of
	// milliseconds; do it now, while the caller unpacks and builds.
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		_, _ = c.netns(name, false)
	}()
	return nil
}

// cleanup deletes an instance whose launch failed or was cancelled, once its
// create operation has ended, in the background (the create may still be
// running when ctx ends). Close waits for it.
func (c *Incus) cleanup(op incus.Operation, name string) {
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		_, _ = c.wait(ctx, op)
		if err := c.Delete(ctx, name); err != nil {
			c.log.Warn("Could not delete instance after failed launch", "instance", name, "err", err)
		}
	}()
}

// Delete force-stops and deletes the instance. A missing instance is not an
// error.
func (c *Incus) Delete(ctx context.Context, name string) error {
	c.forget(name)
	c.forgetPlace(name)
	op, err := c.srv.UpdateInstanceState(name, api.InstanceStatePut{Action: "stop", Force: true, Timeout: -1}, "")
	switch {
	case api.StatusErrorCheck(err, 404):
		return nil
	case err != nil && !isNotRunning(err):
		return wrap(err, "stop %s", name)
	case err == nil:
		if _, err := c.wait(ctx, op); err != nil && !isNotRunning(err) {
			return wrap(err, "stop %s", name)
		}
	}
	op, err = c.srv.DeleteInstance(name)
	if api.StatusErrorCheck(err, 404) {
		return nil
	}
	if err != nil {
		return wrap(err, "delete %s", name)
	}
	if _, err := c.wait(ctx, op); err != nil && !api.StatusErrorCheck(err, 404) {
		return wrap(err, "delete %s", name)
	}
	c.forget(name) // again: Launch's prefetch may have raced the first
	return nil
}

// Start starts a stopped instance (after a host reboot, say). Starting a
// running one is not an error.
func (c *Incus) Start(ctx context.Context, name string) error {
	return c.changeState(ctx, name, api.InstanceStatePut{Action: "start", Timeout: -1})
}

// Stop force-stops an instance. Stopping a stopped one is not an error.
func (c *Incus) Stop(ctx context.Context, name string) error {
	return c.changeState(ctx, name, api.InstanceStatePut{Action: "stop", Force: true, Timeout: -1})
}

// Restart force-restarts an instance: its init and every process start anew.
func (c *Incus) Restart(ctx context.Context, name string) error {
	return c.changeState(ctx, name, api.InstanceStatePut{Action: "restart", Force: true, Timeout: -1})
}

func (c *Incus) changeState(ctx context.Context, name string, put api.InstanceStatePut) error {
	c.forget(name)
	op, err := c.srv.UpdateInstanceState(name, put, "")
	if err == nil {
		_, err = c.wait(ctx, op)
	}
	if err == nil || (put.Action == "stop" && isNotRunning(err)) || (put.Action == "start" && isAlreadyRunning(err)) {
		return nil
	}
	return wrap(err, "%s %s", put.Action, name)
}

// List returns the instances of this project that carry slipway labels,
// sorted by name.
func (c *Incus) List(ctx context.Context) ([]runtime.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	all, err := c.srv.GetInstances(api.InstanceTypeAny)
	if err != nil {
		return nil, wrap(err, "list instances")
	}
	var out []runtime.Instance
	for _, inst := range all {
		labels := map[string]string{}
		for k, v := range inst.Config {
			if key, ok := strings.CutPrefix(k, LabelPrefix); ok {
				labels[key] = v
			}
		}
		if len(labels) == 0 {
			continue
		}
		out = append(out, runtime.Instance{Name: inst.Name, Labels: labels, Running: inst.StatusCode == api.Running, Location: location(inst.Location)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteProject deletes every instance in the project, then the project. It
// is for tests and benchmarks that make a throwaway project.
func (c *Incus) DeleteProject(ctx context.Context) error {
	if c.project == api.ProjectDefaultName {
		return fmt.Errorf("refusing to empty and delete the %s project", c.project)
	}
	all, err := c.srv.GetInstances(api.InstanceTypeAny)
	if err != nil && !api.StatusErrorCheck(err, 404) {
		return wrap(err, "list instances of project %s", c.project)
	}
	var errs []error
	for _, inst := range all {
		if err := c.Delete(ctx, inst.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.deleteProjectImages(ctx); err != nil {
		errs = append(errs, err)
	}
	// Custom volumes (data, build caches) belong to the project too: Incus
	// refuses to delete a project that still has any.
	if len(errs) == 0 {
		if err := c.DeleteVolumes(ctx); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := c.srv.DeleteProject(c.project); err != nil && !api.StatusErrorCheck(err, 404) {
		return wrap(err, "delete incus project %s", c.project)
	}
	return nil
}

// wait waits for op to end and returns its final state. When ctx ends it
// asks Incus to cancel the operation (most are not cancellable; that is
// fine) and returns ctx.Err() without waiting further (see incusop.Wait).
func (c *Incus) wait(ctx context.Context, op incus.Operation) (*api.Operation, error) {
	return waitOp(ctx, c.srv, c.project, op)
}

// waitSeconds is how long one wait request may take (a variable for tests).
var waitSeconds = 30

func waitOp(ctx context.Context, srv incus.InstanceServer, project string, op incus.Operation) (*api.Operation, error) {
	return incusop.Wait(ctx, srv, project, op, waitSeconds)
}

// location is an instance's cluster member: Incus says "none" off a cluster.
func location(l string) string {
	if l == "none" {
		return ""
	}
	return l
}

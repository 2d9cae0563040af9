// Package setup is `slipway setup`: it makes a Debian host ready to run
// slipway, the way Dokku's bootstrap does, one idempotent step at a time:
// Incus installed, incusd running, a root disk on a storage pool in the
// default profile, the busybox base image imported, systemd units for the
// proxy and the daemon where systemd runs the host (and, when asked, the
// Debian image). Each step prints one line saying what it found or did;
// running it again changes nothing.
package setup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// Defaults for Options.
const (
	DefaultDataDir  = "/var/lib/slipway"
	DefaultPool     = "slipway"
	DefaultPoolSize = "20GiB"
	incusdLibexec   = "/usr/libexec/incus/incusd"
	readyTimeout    = 30 * time.Second
)

// Packages are what setup installs on Debian: incus-base runs containers
// without pulling in QEMU (the `incus` package does), btrfs-progs makes the
// btrfs pool possible, busybox-static is the base image.
var Packages = []string{"incus-base", "btrfs-progs", "busybox-static"}

// Options configure Run. Zero values mean the defaults.
type Options struct {
	DataDir     string // slipway's data directory; incusd.log goes here when setup starts incusd
	BusyboxPath string // busybox-static binary for the base image (default /bin/busybox)
	Logger      *slog.Logger

	Pool     string // storage pool to create when the default profile has no root disk (default "slipway")
	PoolSize string // size of a loop-backed btrfs pool (default 20GiB)
	Image    string // base image alias (default slipway/busybox)

	Debian   Debian  // the rich Debian image: built by Run only when Debian.Build is set
	Postgres Debian  // the Postgres image databases run on: built by Run only when Postgres.Build is set
	Systemd  Systemd // the units Run writes where systemd runs the host
}

func (o *Options) defaults() {
	if o.DataDir == "" {
		o.DataDir = DefaultDataDir
	}
	if o.BusyboxPath == "" {
		o.BusyboxPath = baseimage.DefaultBusybox
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Pool == "" {
		o.Pool = DefaultPool
	}
	if o.PoolSize == "" {
		o.PoolSize = DefaultPoolSize
	}
	if o.Image == "" {
		o.Image = baseimage.DefaultAlias
	}
	o.Debian.defaults()
	o.Postgres.defaultsPostgres()
	o.Systemd.defaults()
}

// Run makes the host ready, printing one line per step to out.
func Run(ctx context.Context, opts Options, out io.Writer) error {
	opts.defaults()
	h := host{opts: opts, out: out, log: opts.Logger}
	incusd, err := h.ensureIncus(ctx)
	if err != nil {
		return err
	}
	srv, err := h.ensureDaemon(ctx, incusd)
	if err != nil {
		return err
	}
	defer srv.Disconnect()
	if err := h.ensureRootDisk(srv); err != nil {
		return err
	}
	if err := h.ensureImage(ctx, srv); err != nil {
		return err
	}
	// Before the Debian image, which is long and may fail: the units do
	// not need it.
	if err := h.ensureUnits(ctx); err != nil {
		return err
	}
	if opts.Postgres.Build {
		if err := h.ensurePostgres(ctx, srv); err != nil {
			return err
		}
	}
	if !opts.Debian.Build {
		h.offerDebian(srv)
		return nil
	}
	return h.ensureDebian(ctx, srv)
}

// Image rebuilds the base image and re-imports it when it differs from the
// one the alias names (a new busybox, or a new slipway whose runner or
// receiver changed), starting incusd if it is installed but not running.
// It is Run's last step alone, for a host that is set up already.
func Image(ctx context.Context, opts Options, out io.Writer) error {
	opts.defaults()
	h := host{opts: opts, out: out, log: opts.Logger}
	incusd := findIncusd()
	if incusd == "" {
		return fmt.Errorf("incus is not installed: run `slipway setup`")
	}
	srv, err := h.ensureDaemon(ctx, incusd)
	if err != nil {
		return err
	}
	defer srv.Disconnect()
	return h.ensureImage(ctx, srv)
}

type host struct {
	opts Options
	out  io.Writer
	log  *slog.Logger
}

func (h *host) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	fmt.Fprintln(h.out, line)
	h.log.Info("setup: " + line)
}

// Step 1: Incus installed.

// findIncusd returns the incusd binary: Debian's libexec path, else PATH.
func findIncusd() string {
	if _, err := os.Stat(incusdLibexec); err == nil {
		return incusdLibexec
	}
	if p, err := exec.LookPath("incusd"); err == nil {
		return p
	}
	return ""
}

func (h *host) ensureIncus(ctx context.Context) (string, error) {
	if p := findIncusd(); p != "" {
		h.say("incus: already installed (%s)", incusdVersion(ctx, p))
		return p, nil
	}
	plan := installPlan(readOSRelease("/etc/os-release"), "/etc/apt")
	if os.Geteuid() != 0 || !haveCommand("apt-get") {
		return "", fmt.Errorf("incus is not installed, and setup can install it only as root on Debian; run:\n%s", plan.script())
	}
	if plan.sourcesFile != "" {
		if err := os.WriteFile(plan.sourcesFile, []byte(plan.sourcesLine), 0o644); err != nil {
			return "", fmt.Errorf("add %s: %w", plan.suite, err)
		}
	}
	for _, args := range plan.commands() {
		cmd := exec.CommandContext(ctx, args[0], args[1:]...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if b, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("%s: %w\n%s", strings.Join(args, " "), err, tail(b, 20))
		}
	}
	p := findIncusd()
	if p == "" {
		return "", fmt.Errorf("installed %s but found no incusd", strings.Join(Packages, " "))
	}
	from := "Debian"
	if plan.suite != "" {
		from = plan.suite
	}
	h.say("incus: installed (%s from %s)", incusdVersion(ctx, p), from)
	return p, nil
}

func incusdVersion(ctx context.Context, incusd string) string {
	b, err := exec.CommandContext(ctx, incusd, "--version").Output()
	if v := strings.TrimSpace(string(b)); err == nil && v != "" {
		return "incusd " + v
	}
	return incusd
}

// Step 2: incusd answering.

func (h *host) ensureDaemon(ctx context.Context, incusd string) (incus.InstanceServer, error) {
	srv, err := connect(ctx)
	if err == nil {
		h.say("incusd: already running (%s)", container.SocketPath())
		return srv, nil
	}
	if !errors.Is(err, os.ErrNotExist) && !errors.Is(err, syscall.ECONNREFUSED) {
		// Something answers but is not ready (incusd starting up):
		// wait for it rather than start a second one.
		if srv, err := waitReady(ctx, readyTimeout); err == nil {
			h.say("incusd: already running (%s)", container.SocketPath())
			return srv, nil
		}
	}
	if os.Geteuid() != 0 {
		return nil, fmt.Errorf("incusd does not answer at %s, and only root can start it: run `slipway setup` as root", container.SocketPath())
	}
	var how string
	if systemdRuns() {
		if b, err := exec.CommandContext(ctx, "systemctl", "start", "incus").CombinedOutput(); err != nil {
			return nil, fmt.Errorf("systemctl start incus: %w\n%s", err, tail(b, 10))
		}
		how = "started (systemctl start incus)"
	} else {
		pid, err := startDetached(filepath.Join(h.opts.DataDir, "incusd.log"), incusd, "--group", "root")
		if err != nil {
			return nil, err
		}
		how = fmt.Sprintf("started (pid %d, log %s)", pid, filepath.Join(h.opts.DataDir, "incusd.log"))
	}
	srv, err = waitReady(ctx, readyTimeout)
	if err != nil {
		return nil, err
	}
	h.say("incusd: %s", how)
	return srv, nil
}

func connect(ctx context.Context) (incus.InstanceServer, error) {
	if _, err := os.Stat(container.SocketPath()); err != nil {
		return nil, err
	}
	return container.ConnectServer(ctx)
}

// systemdRuns: systemctl is installed and PID 1 is systemd. Containers and
// build machines often have the first without the second.
func systemdRuns() bool {
	if !haveCommand("systemctl") {
		return false
	}
	comm, err := os.ReadFile("/proc/1/comm")
	return err == nil && strings.TrimSpace(string(comm)) == "systemd"
}

// startDetached starts a daemon (incusd) in its own session with its output
// appended to logPath, so that it outlives setup and is not killed with the
// terminal setup ran in.
func startDetached(logPath, name string, args ...string) (int, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(name, args...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", name, err)
	}
	pid := cmd.Process.Pid
	// Not ours to wait for: it runs on after setup exits (init reaps it).
	_ = cmd.Process.Release()
	return pid, nil
}

// waitReady waits for the socket, a connection and incusd's own readiness
// (GET /internal/ready, what `incus admin waitready` asks).
func waitReady(ctx context.Context, timeout time.Duration) (incus.InstanceServer, error) {
	// The client keeps the context it was made with for every later request,
	// so the deadline applies to the wait only, not to the connection.
	deadline := time.After(timeout)
	var lastErr error
	for {
		srv, err := connect(ctx)
		if err == nil {
			if _, _, err = srv.RawQuery("GET", "/internal/ready", nil, ""); err == nil {
				return srv, nil
			}
			srv.Disconnect()
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-deadline:
			return nil, fmt.Errorf("incusd did not become ready at %s within %v: %v", container.SocketPath(), timeout, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Step 3: a root disk in the default profile.

func (h *host) ensureRootDisk(srv incus.InstanceServer) error {
	profile, etag, err := srv.GetProfile("default")
	if err != nil {
		return fmt.Errorf("read the default profile: %w", err)
	}
	if name, pool := rootDisk(profile.Devices); name != "" {
		h.say("profile default: already has a root disk (pool %s)", pool)
		return nil
	}
	pool := h.opts.Pool
	existing, _, err := srv.GetStoragePool(pool)
	switch {
	case err == nil:
		h.say("storage pool %s: already there (%s)", pool, existing.Driver)
	case api.StatusErrorCheck(err, 404):
		driver, why := poolDriver(readFile("/proc/filesystems"), haveCommand("mkfs.btrfs"))
		req := api.StoragePoolsPost{Name: pool, Driver: driver}
		if driver == "btrfs" {
			req.Config = map[string]string{"size": h.opts.PoolSize}
		}
		if err := srv.CreateStoragePool(req); err != nil {
			return fmt.Errorf("create storage pool %s (%s): %w", pool, driver, err)
		}
		if driver == "btrfs" {
			h.say("storage pool %s: btrfs (%s loop file)", pool, h.opts.PoolSize)
		} else {
			h.say("storage pool %s: dir (%s; every launch copies the image)", pool, why)
		}
	default:
		return fmt.Errorf("look up storage pool %s: %w", pool, err)
	}
	put := profile.Writable()
	if put.Devices == nil {
		put.Devices = map[string]map[string]string{}
	}
	name := "root"
	if _, taken := put.Devices[name]; taken {
		name = "slipway-root"
	}
	put.Devices[name] = map[string]string{"type": "disk", "path": "/", "pool": pool}
	if err := srv.UpdateProfile("default", put, etag); err != nil {
		return fmt.Errorf("add a root disk to the default profile: %w", err)
	}
	h.say("profile default: root disk on pool %s", pool)
	return nil
}

// rootDisk returns the device name and pool of a profile's root disk.
func rootDisk(devices map[string]map[string]string) (name, pool string) {
	for n, d := range devices {
		if d["type"] == "disk" && d["path"] == "/" {
			return n, d["pool"]
		}
	}
	return "", ""
}

// poolDriver picks btrfs when the kernel has it (/proc/filesystems) and
// mkfs.btrfs is installed: a loop-backed btrfs pool clones the image per
// launch as a snapshot, where `dir` copies it every time.
func poolDriver(procFilesystems string, haveMkfs bool) (driver, why string) {
	kernel := false
	for _, line := range strings.Split(procFilesystems, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[len(f)-1] == "btrfs" {
			kernel = true
		}
	}
	switch {
	case !kernel:
		return "dir", "the kernel has no btrfs"
	case !haveMkfs:
		return "dir", "mkfs.btrfs is not installed (apt-get install btrfs-progs)"
	}
	return "btrfs", ""
}

// Step 4: the base image.

func (h *host) ensureImage(ctx context.Context, srv incus.InstanceServer) error {
	alias := h.opts.Image
	if _, err := os.Stat(h.opts.BusyboxPath); err != nil {
		if os.Geteuid() != 0 || !haveCommand("apt-get") || h.opts.BusyboxPath != baseimage.DefaultBusybox {
			return fmt.Errorf("image %s needs busybox-static at %s; install it with: apt-get install -y busybox-static", alias, h.opts.BusyboxPath)
		}
		if err := aptInstall(ctx, "busybox-static"); err != nil {
			return err
		}
	}
	want, err := baseimage.Fingerprint(h.opts.BusyboxPath)
	if err != nil {
		return err
	}
	entry, _, err := srv.GetImageAlias(alias)
	switch {
	case err == nil && entry.Target == want:
		h.say("image %s: already up to date (%s)", alias, short(want))
		return nil
	case err != nil && !api.StatusErrorCheck(err, 404):
		return fmt.Errorf("look up image %s: %w", alias, err)
	}
	if err := baseimage.Import(ctx, srv, alias, h.opts.BusyboxPath); err != nil {
		return fmt.Errorf("image %s: %w", alias, err)
	}
	if entry != nil {
		h.say("image %s: updated (%s, was %s)", alias, short(want), short(entry.Target))
		// The replaced base image is no one's any more: instances made from
		// it keep their own copy, and apps name the alias.
		if op, err := srv.DeleteImage(entry.Target); err == nil {
			_ = op.Wait()
		}
	} else {
		h.say("image %s: imported (%s)", alias, short(want))
	}
	return nil
}

func short(fingerprint string) string {
	if len(fingerprint) > 12 {
		return fingerprint[:12]
	}
	return fingerprint
}

// Helpers.

func haveCommand(name string) bool {
	_, err := exec.LookPath(name)
	return err == nil
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

func tail(b []byte, lines int) string {
	s := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(s) > lines {
		s = s[len(s)-lines:]
	}
	return strings.Join(s, "\n")
}

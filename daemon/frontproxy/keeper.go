package frontproxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/router"
)

// Keeper is the daemon's side of the proxy process. It finds the proxy that
// runs, starts one when none does, and starts it again when it dies, at the
// address it had, so a daemon that exits or crashes leaves traffic alone and
// a proxy that crashes is back within a fraction of a second.
type Keeper struct {
	binary string // slipway, run as `slipway proxy`
	cfg    Config // Addr may name port 0 until the first start
	spawn  bool   // false: a service manager starts the proxy; the keeper only waits for it
	log    *slog.Logger
	client *router.Client
}

// startTimeout bounds how long a proxy may take to answer once started (or,
// under a service manager, to be back).
const startTimeout = 15 * time.Second

// NewKeeper returns a keeper of the proxy cfg describes.
func NewKeeper(binary string, cfg Config, spawn bool, logger *slog.Logger) *Keeper {
	return &Keeper{binary: binary, cfg: cfg, spawn: spawn, log: logger, client: router.NewClient(PathsIn(cfg.Dir).Socket)}
}

// Client reaches the proxy's route table.
func (k *Keeper) Client() *router.Client { return k.client }

// Ensure returns the running proxy's Hello, starting the proxy first when
// none answers.
func (k *Keeper) Ensure(ctx context.Context) (router.Hello, error) {
	hello, err := k.client.Hello(ctx)
	if err == nil {
		k.adopt(hello)
		return hello, nil
	}
	if !errors.Is(err, router.ErrNoProxy) {
		return router.Hello{}, err
	}
	if !k.spawn {
		return k.await(ctx)
	}
	return k.start(ctx)
}

// adopt takes the address of a proxy that was already running, saying so
// when it is not the one asked for or runs another version.
func (k *Keeper) adopt(hello router.Hello) {
	if k.cfg.Addr != hello.Addr && !strings.HasSuffix(k.cfg.Addr, ":0") {
		k.log.Warn("The proxy already runs on another address; stop it to move it", "proxy", hello.Addr, "asked", k.cfg.Addr, "pid", hello.PID)
	}
	if hello.Version != k.cfg.Version {
		k.log.Warn("The proxy runs another version of slipway; `slipway proxy upgrade` moves it to this one without dropping a request",
			"proxy", hello.Version, "daemon", k.cfg.Version, "pid", hello.PID)
	}
	if k.cfg.HTTPSAddr != "" && hello.HTTPSAddr == "" {
		k.log.Warn("The proxy already runs without HTTPS; stop it to have it serve HTTPS", "asked", k.cfg.HTTPSAddr, "pid", hello.PID)
	}
	k.cfg.Addr = hello.Addr
	if hello.HTTPSAddr != "" {
		k.cfg.HTTPSAddr = hello.HTTPSAddr
	}
}

// start runs `slipway proxy` in a session of its own, so it outlives the
// daemon, logging to its log file (which it keeps under a size; what it
// prints otherwise, such as a panic, is appended there too), and waits
// until it answers.
func (k *Keeper) start(ctx context.Context) (router.Hello, error) {
	paths := PathsIn(k.cfg.Dir)
	if err := os.MkdirAll(k.cfg.Dir, 0o700); err != nil {
		return router.Hello{}, err
	}
	logFile, err := os.OpenFile(paths.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return router.Hello{}, err
	}
	defer logFile.Close()
	cmd := exec.Command(k.binary, k.args()...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return router.Hello{}, fmt.Errorf("start the proxy: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }() // reaped if it ends while the daemon runs
	hello, err := k.waitHello(ctx, exited)
	if err != nil {
		cmd.Process.Kill()
		return router.Hello{}, fmt.Errorf("the proxy did not start (its log: %s): %w%s", paths.Log, err, lastLine(paths.Log))
	}
	k.cfg.Addr = hello.Addr
	if hello.HTTPSAddr != "" {
		k.cfg.HTTPSAddr = hello.HTTPSAddr
	}
	k.log.Info("Started the proxy", "pid", hello.PID, "addr", hello.Addr, "https", hello.HTTPSAddr, "log", paths.Log)
	return hello, nil
}

func (k *Keeper) args() []string {
	args := []string{"proxy", "--data", filepath.Dir(k.cfg.Dir), "--proxy-addr", k.cfg.Addr, "--incus-project", k.cfg.Project,
		"--proxy-max-conns-per-ip", strconv.Itoa(k.cfg.MaxConnsPerIP), "--https-addr", k.cfg.HTTPSAddr,
		"--log", PathsIn(k.cfg.Dir).Log}
	if k.cfg.CertDir != "" {
		args = append(args, "--cert-dir", k.cfg.CertDir)
	}
	if len(k.cfg.TrustedProxies) > 0 {
		args = append(args, "--trusted-proxies", FormatPrefixes(k.cfg.TrustedProxies))
	}
	if k.cfg.AgentAddr != "" {
		args = append(args, "--agent-addr", k.cfg.AgentAddr)
	}
	if r := k.cfg.Incus; r.URL != "" {
		args = append(args, "--incus-url", r.URL, "--incus-cert", r.CertFile, "--incus-key", r.KeyFile)
		if r.ServerCert != "" {
			args = append(args, "--incus-server-cert", r.ServerCert)
		}
	}
	return args
}

// ParsePrefixes reads a comma-separated list of CIDR prefixes (an address alone
// is one address), as --trusted-proxies takes it.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR prefix such as 173.245.48.0/20", f)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// FormatPrefixes is the inverse of ParsePrefixes.
func FormatPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// waitHello asks the new proxy until it answers, it exits or time is up.
func (k *Keeper) waitHello(ctx context.Context, exited <-chan struct{}) (router.Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		hello, err := k.client.Hello(ctx)
		if err == nil {
			return hello, nil
		}
		select {
		case <-exited:
			return router.Hello{}, errors.New("it exited")
		case <-ctx.Done():
			return router.Hello{}, fmt.Errorf("no answer after %s", startTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// await waits for a proxy a service manager starts.
func (k *Keeper) await(ctx context.Context) (router.Hello, error) {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	for {
		hello, err := k.client.Hello(ctx)
		if err == nil {
			k.adopt(hello)
			return hello, nil
		}
		select {
		case <-ctx.Done():
			return router.Hello{}, fmt.Errorf("no proxy answers on %s after %s (is the slipway-proxy service running? or start slipway serve without --start-proxy=false)",
				PathsIn(k.cfg.Dir).Socket, startTimeout)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Keep watches the proxy until ctx ends. When it goes, Keep has it running
// again (a successor after an upgrade already is) and calls back, so the
// daemon can put its routes right should the state file have been lost.
func (k *Keeper) Keep(ctx context.Context, back func(context.Context, router.Hello)) {
	for ctx.Err() == nil {
		gone, hello, err := k.client.Watch(ctx)
		if err != nil {
			if hello, err = k.Ensure(ctx); err != nil {
				if ctx.Err() == nil {
					k.log.Error("The proxy is not running and could not be started; trying again", "err", err)
					sleep(ctx, time.Second)
				}
				continue
			}
			back(ctx, hello)
			continue
		}
		select {
		case <-gone:
			k.log.Warn("The proxy process went", "pid", hello.PID)
		case <-ctx.Done():
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// lastLine returns ": " and the last line of a log file, or nothing.
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if last := lines[len(lines)-1]; last != "" {
		return ": " + last
	}
	return ""
}

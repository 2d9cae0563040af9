// Command slipway-bench measures slipway against the targets in DESIGN.md and
// the README: it starts its own daemon (the real binary, its own data dir,
// Incus project and loopback ports), drives it with the real git, ssh, wrk,
// nginx and OpenSSH, prints one table of medians and ranges, writes
// .bench/latest.json, and removes everything it made, also on failure or
// Ctrl-C. `just bench` builds and runs it; it is not part of `go test` or CI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// config is the whole bench configuration, filled from flags in main.
type config struct {
	Slipway     string // the slipway binary under test
	OutDir      string // .bench: latest.json, latest.txt, logs
	Runs        int    // repeated runs of push-to-live, rollback
	Rounds      int    // interleaved rounds of the proxy, large push and parallel comparisons
	Deploys     int    // back-to-back deploys under load
	LoadRate    int    // req/s of the constant load during those deploys
	MaxParallel int    // the daemon's --max-parallel
	Examples    string // examples/apps, for the apps item
	Only        string // comma-separated items to run (default all)
	KeepTemp    bool   // leave the temp dir (repos, configs) for inspection
}

func (c config) runs(item string) bool {
	if c.Only == "" {
		return true
	}
	for _, s := range strings.Split(c.Only, ",") {
		if strings.TrimSpace(s) == item {
			return true
		}
	}
	return false
}

var items = []string{"live", "rollback", "load", "resilience", "scale", "proxy", "https", "bigpush", "parallel", "apps"}

func main() {
	if len(os.Args) == 4 && os.Args[1] == "backend" {
		// The proxy item's backend, in its own process (see startBackend).
		if err := serveBackend(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "slipway-bench backend:", err)
			os.Exit(1)
		}
		return
	}
	cfg := config{}
	flag.StringVar(&cfg.Slipway, "slipway", "bin/slipway", "slipway binary to benchmark (build it from daemon/cmd/slipway)")
	flag.StringVar(&cfg.OutDir, "out", ".bench", "directory for latest.json, latest.txt and the logs")
	flag.IntVar(&cfg.Runs, "runs", 7, "measured runs of push-to-live and of rollback")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "interleaved rounds of the proxy, large push and parallel deploy comparisons")
	flag.IntVar(&cfg.Deploys, "deploys", 20, "back-to-back deploys under constant load")
	flag.IntVar(&cfg.LoadRate, "load-rate", 100, "req/s of the constant load during the back-to-back deploys")
	flag.IntVar(&cfg.MaxParallel, "max-parallel", 10, "the bench daemon's --max-parallel (slipway's default is 4)")
	flag.StringVar(&cfg.Examples, "examples", "examples/apps", "the example apps, for the apps item")
	flag.StringVar(&cfg.Only, "only", "", "run only these items, comma-separated: "+strings.Join(items, ","))
	flag.BoolVar(&cfg.KeepTemp, "keep-temp", false, "keep the temp dir for inspection")
	flag.Parse()
	if cfg.Runs < 1 || cfg.Rounds < 1 || cfg.Deploys < 1 || cfg.LoadRate < 1 || cfg.MaxParallel < 1 {
		fmt.Fprintln(os.Stderr, "slipway-bench: --runs, --rounds, --deploys, --load-rate and --max-parallel must be at least 1")
		os.Exit(2)
	}
	for _, s := range strings.Split(cfg.Only, ",") {
		if s = strings.TrimSpace(s); s != "" && !contains(items, s) {
			fmt.Fprintf(os.Stderr, "slipway-bench: --only: unknown item %q (items: %s)\n", s, strings.Join(items, ","))
			os.Exit(2)
		}
	}
	os.Exit(run(cfg))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func run(cfg config) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "slipway-bench: run as root (it drives incusd, sshd and nginx)")
		return 1
	}
	abs, err := filepath.Abs(cfg.Slipway)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-bench:", err)
		return 1
	}
	cfg.Slipway = abs
	for _, tool := range []string{cfg.Slipway, "git", "ssh", "ssh-keygen", "wrk", "/usr/sbin/nginx", "/usr/sbin/sshd"} {
		if _, err := lookPath(tool); err != nil {
			fmt.Fprintf(os.Stderr, "slipway-bench: %s is missing (just bench installs nginx-light, wrk and openssh-server)\n", tool)
			return 1
		}
	}
	if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "slipway-bench:", err)
		return 1
	}

	// The first SIGINT/SIGTERM cancels the bench, which then cleans up; later
	// ones are reported and ignored so that the cleanup runs to its end. The
	// processes the bench starts are in their own process groups, so a Ctrl-C
	// in the terminal reaches only the bench, which stops them in order.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		first := true
		for s := range sigs {
			if first {
				fmt.Fprintf(os.Stderr, "\nslipway-bench: %s: stopping and cleaning up (the daemon, its Incus project, nginx, sshd, temp dirs)\n", s)
				cancel()
				first = false
				continue
			}
			fmt.Fprintln(os.Stderr, "slipway-bench: still cleaning up, please wait")
		}
	}()

	b, err := newBench(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "slipway-bench:", err)
		return 1
	}
	start := time.Now()
	runErr := b.runAll(ctx)
	b.cleanup()
	if errors.Is(runErr, context.Canceled) {
		fmt.Fprintln(os.Stderr, "slipway-bench: cancelled; cleaned up")
		return 130
	}
	b.report(time.Since(start), runErr)
	if runErr != nil {
		fmt.Fprintln(os.Stderr, "slipway-bench:", runErr)
		return 1
	}
	return 0
}

// bench holds what one run of the bench has made, and undoes it in cleanup.
type bench struct {
	cfg     config
	tmp     string
	log     *logFile
	results *results
	undo    []func()
	d       *daemon

	lastSlowest string // the push output of the slowest parallel deploy, for the log
	loadStart   string // load average when the bench started
}

func newBench(ctx context.Context, cfg config) (*bench, error) {
	tmp, err := os.MkdirTemp("", "slipway-bench-")
	if err != nil {
		return nil, err
	}
	lf, err := openLog(filepath.Join(cfg.OutDir, "latest.log"))
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	b := &bench{cfg: cfg, tmp: tmp, log: lf, results: newResults(), loadStart: loadAvg()}
	b.onCleanup(func() {
		if cfg.KeepTemp {
			fmt.Fprintf(os.Stderr, "slipway-bench: kept %s\n", tmp)
			return
		}
		os.RemoveAll(tmp)
	})
	b.log.Printf("slipway-bench on %d CPUs, temp dir %s, load average %s", runtime.NumCPU(), tmp, loadAvg())
	return b, nil
}

// onCleanup registers an undo step; cleanup runs them in reverse order.
func (b *bench) onCleanup(f func()) { b.undo = append(b.undo, f) }

func (b *bench) cleanup() {
	for i := len(b.undo) - 1; i >= 0; i-- {
		b.undo[i]()
	}
	b.undo = nil
	b.log.Close()
}

// runAll starts the daemon and runs each item. An item that fails is
// recorded and the others still run, so one broken part does not hide the
// figures of the rest; the first error is returned.
func (b *bench) runAll(ctx context.Context) error {
	status("starting slipway (%s) with --max-parallel %d", b.cfg.Slipway, b.cfg.MaxParallel)
	d, err := startDaemon(ctx, b)
	if err != nil {
		return err
	}
	b.d = d
	steps := []struct {
		item string
		run  func(context.Context) error
	}{
		{"live", b.pushToLive},
		{"rollback", b.rollback},
		{"load", b.failedRequests},
		{"resilience", b.resilience},
		{"scale", b.scale},
		{"parallel", b.parallel},
		// Before the proxy: its peak RSS is measured from the daemon's RSS
		// at the start of the push, which a proxy under load raises.
		{"bigpush", b.bigPush},
		{"proxy", b.proxyVsNginx},
		{"https", b.httpsVsNginx},
		{"apps", b.apps},
	}
	var first error
	for _, s := range steps {
		if !b.cfg.runs(s.item) {
			continue
		}
		if err := s.run(ctx); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			b.results.fail(s.item, err)
			b.log.Printf("%s failed: %v", s.item, err)
			status("%s FAILED: %v", s.item, err)
			if first == nil {
				first = fmt.Errorf("%s: %w", s.item, err)
			}
		}
		if !d.alive() {
			return fmt.Errorf("the daemon exited during %s; its log is in %s", s.item, filepath.Join(b.cfg.OutDir, "daemon.log"))
		}
	}
	return first
}

// status prints one progress line to stderr.
func status(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

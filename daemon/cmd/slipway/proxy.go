package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/daemon"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
	"github.com/slipway-dev/slipway/daemon/version"
)

// proxyCmd is `slipway proxy`: the front proxy alone, and its upgrade and
// status. `slipway serve` starts it when it is not running; under systemd
// its own unit does.
func proxyCmd(args []string) int {
	if len(args) > 0 && (args[0] == "upgrade" || args[0] == "status" || args[0] == "stop") {
		return proxyControl(args[0], args[1:])
	}
	defaults := daemon.Defaults()
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	ef := &envFlags{fs: fs}
	data := defaults.DataDir
	cfg := frontproxy.Config{Addr: defaults.ProxyAddr, Project: defaults.IncusProject, MaxConnsPerIP: defaults.ProxyMaxConnsPerIP,
		HTTPSAddr: defaults.HTTPSAddr, Version: version.Get().String()}
	certDir, logPath := "", ""
	ef.str(&data, "data", "slipway's data directory; the proxy's files are in its proxy/")
	ef.str(&cfg.Addr, "proxy-addr", "address apps are served on")
	ef.str(&cfg.Project, "incus-project", "Incus project of the instances it routes to")
	incusFlags(ef, &cfg.Incus)
	cfg.AgentAddr = defaults.AgentAddr
	ef.str(&cfg.AgentAddr, "agent-addr", `where this member's slipway agent listens when Incus is a cluster, or "" for none`)
	ef.int(&cfg.MaxConnsPerIP, "proxy-max-conns-per-ip", "client connections kept open from one address, or 0 for no cap")
	ef.str(&cfg.HTTPSAddr, "https-addr", `address apps are served on over HTTPS, or "" for no HTTPS`)
	ef.str(&certDir, "cert-dir", "certificate pairs NAME.crt and NAME.key (default <data>/certs)")
	ef.str(&logPath, "log", "append the log to FILE, keeping it under 10 MiB with one older file (default: stderr)")
	ef.prefixes(&cfg.TrustedProxies, "trusted-proxies", "CIDR,... of proxies in front whose X-Forwarded-For, X-Forwarded-Proto and CF-Connecting-IP are kept")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if ef.err != nil || fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "slipway proxy: %s\n", firstOf(ef.err, fs.Args()))
		return 2
	}
	cfg.Dir = frontproxy.DirIn(data)
	cfg.AgentDir = frontproxy.AgentDirIn(data)
	cfg.CertDir = certDir
	if cfg.CertDir == "" {
		cfg.CertDir = frontproxy.CertDirIn(data)
	}
	var logOut io.Writer = os.Stderr
	if logPath != "" {
		l, err := frontproxy.OpenLog(logPath, frontproxy.DefaultLogBytes)
		if err != nil {
			fmt.Fprintf(os.Stderr, "slipway proxy: --log: %s\n", err)
			return 1
		}
		defer l.Close()
		logOut = l
	}
	logger := slog.New(slog.NewTextHandler(logOut, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := frontproxy.Run(ctx, cfg, logger); err != nil {
		fmt.Fprintf(os.Stderr, "slipway proxy: %s\n", err)
		return 1
	}
	return 0
}

// proxyControl is `slipway proxy upgrade|status|stop`, said to the running proxy
// over its control socket.
func proxyControl(what string, args []string) int {
	fs := flag.NewFlagSet("proxy "+what, flag.ContinueOnError)
	ef := &envFlags{fs: fs}
	data := daemon.Defaults().DataDir
	ef.str(&data, "data", "slipway's data directory")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if ef.err != nil || fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "slipway proxy %s: %s\n", what, firstOf(ef.err, fs.Args()))
		return 2
	}
	client := router.NewClient(frontproxy.PathsIn(frontproxy.DirIn(data)).Socket)
	ctx := context.Background()
	before, err := client.Hello(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slipway proxy %s: %s\n", what, err)
		return 1
	}
	if what == "status" {
		routes, err := client.Routes(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "slipway proxy status: %s\n", err)
			return 1
		}
		https := ""
		if before.HTTPSAddr != "" {
			https = " and HTTPS on " + before.HTTPSAddr
		}
		fmt.Printf("the proxy serves on %s%s: pid %d, %s, %d hosts\n", before.Addr, https, before.PID, before.Version, len(routes))
		return 0
	}
	if what == "stop" {
		return stopProxy(client, before)
	}
	start := time.Now()
	if err := client.Upgrade(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "slipway proxy upgrade: %s\n", err)
		return 1
	}
	after, err := client.Hello(ctx)
	if err != nil {
		fmt.Fprintf(os.Stderr, "slipway proxy upgrade: the new proxy does not answer: %s\n", err)
		return 1
	}
	fmt.Printf("the proxy on %s is now pid %d (%s), in %.2f s; pid %d finishes its requests in flight and exits\n",
		after.Addr, after.PID, after.Version, time.Since(start).Seconds(), before.PID)
	return 0
}

// firstOf is the error, or the first unexpected argument.
func firstOf(err error, rest []string) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("unexpected argument %q", rest[0])
}

// stopProxy stops the proxy that said hello, by the pid it gave, and waits
// until it has finished its requests in flight and gone.
func stopProxy(client *router.Client, hello router.Hello) int {
	if err := syscall.Kill(hello.PID, syscall.SIGTERM); err != nil {
		fmt.Fprintf(os.Stderr, "slipway proxy stop: pid %d: %s\n", hello.PID, err)
		return 1
	}
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if !frontproxy.Running(hello.PID) {
			fmt.Printf("the proxy on %s (pid %d) stopped: apps are not served until slipway serve or slipway proxy starts it again\n", hello.Addr, hello.PID)
			return 0
		}
	}
	fmt.Fprintf(os.Stderr, "slipway proxy stop: pid %d still runs a minute after SIGTERM\n", hello.PID)
	return 1
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	slipwayrt "github.com/slipway-dev/slipway/channels/runtime"
)

// The front proxy against nginx, in front of one backend.
//
// The backend is a small Go HTTP server in this process, listening on two
// loopbacks at once: the host's (127.0.0.1:<port>, for nginx and for the
// "direct" baseline) and the loopback of a deployed instance's network
// namespace (127.0.0.1:5000 in there, which is where slipway's proxy dials
// the app). So all three paths end at the same server, and none goes through
// Incus's forkproxy (a proxy device would add a userspace copy to nginx's and
// direct's paths only). The instance is a normal deploy of a static app whose
// web process then steps aside: its command runs `sleep` instead of httpd
// once /tmp/bench-backend exists, and the bench kills httpd.

const (
	backendBodySize = 1024
	fixedRate       = 2000 // req/s for the p99 comparison
	wrkDuration     = 5 * time.Second
	openLoopSlices  = 8 // one-second slices of open loop per target and round
)

const edgeManifest = `image: slipway/busybox
web: "[ -e /tmp/bench-backend ] && exec sleep 2147483647; exec httpd -f -p $PORT -h /app/public"
health:
  path: /
  timeout: 10s
`

// proxyVsNginx: item 4.
func (b *bench) proxyVsNginx(ctx context.Context) error {
	status("proxy vs nginx: %d interleaved rounds (wrk -t2 -c64 -d%s; open loop at %d req/s, %d×1 s per target)", b.cfg.Rounds, wrkDuration, fixedRate, openLoopSlices)
	host, _, err := b.firstDeploy(ctx, "edge", edgeManifest, "edge\n")
	if err != nil {
		return err
	}
	st, err := b.d.status(ctx, "edge")
	if err != nil {
		return err
	}

	backend, err := startBackend(ctx, b.d, st.Instance, b.d.appPort())
	if err != nil {
		return err
	}
	defer backend.close()
	ngx, err := startNginx(ctx, filepath.Join(b.tmp, "nginx"), backend.hostAddr, nil)
	if err != nil {
		return err
	}
	defer ngx.stop()
	b.log.Printf("backend %s and %s inside %s; nginx pid %d on %s", backend.hostAddr, backend.nsAddr, st.Instance, ngx.pid, ngx.addr)

	targets := map[string]target{
		"slipway": {url: "http://" + b.d.proxy + "/", host: host},
		"nginx":   {url: "http://" + ngx.addr + "/", host: host},
		"direct":  {url: "http://" + backend.hostAddr + "/", host: host},
	}
	for _, name := range []string{"slipway", "nginx", "direct"} {
		if err := targets[name].check(ctx); err != nil {
			return fmt.Errorf("%s does not reach the backend: %w", name, err)
		}
	}
	// Warm-up: connections, the daemon's pools, nginx's workers.
	for _, name := range []string{"slipway", "nginx"} {
		if _, err := runWrk(ctx, targets[name], time.Second); err != nil {
			return err
		}
	}

	clients := map[string]*http.Client{}
	for name := range targets {
		clients[name] = newLoadClient(1000, 5*time.Second)
		defer clients[name].CloseIdleConnections()
	}
	for r := 1; r <= b.cfg.Rounds; r++ {
		order := []string{"slipway", "nginx"}
		if r%2 == 0 {
			order = []string{"nginx", "slipway"}
		}
		rps, cpu := map[string]float64{}, map[string]float64{}
		for _, name := range order {
			pid := ngx.pid
			if name == "slipway" {
				if pid, err = b.d.proxyPID(); err != nil {
					return err
				}
			}
			cpu0, err := treeCPU(pid)
			if err != nil {
				return err
			}
			r0, w0 := treeSyscalls(pid)
			res, err := runWrk(ctx, targets[name], wrkDuration)
			r1, w1 := treeSyscalls(pid)
			if err != nil {
				return err
			}
			cpu1, err := treeCPU(pid)
			if err != nil {
				return err
			}
			if res.errors > 0 {
				return fmt.Errorf("wrk through %s: %d errors or non-2xx responses of %d", name, res.errors, res.requests)
			}
			rps[name] = res.rps
			cpu[name] = float64((cpu1 - cpu0).Microseconds()) / float64(res.requests)
			b.log.Printf("round %d: %s %.0f req/s, %d requests, CPU %s (pid %d and below): %.1f µs/request, %.2f reads and %.2f writes per request", r, name, res.rps, res.requests, cpu1-cpu0, pid, cpu[name],
				float64(r1-r0)/float64(res.requests), float64(w1-w0)/float64(res.requests))
		}
		b.results.add("proxy_cpu_us_per_req", cpu["slipway"])
		b.results.add("nginx_cpu_us_per_req", cpu["nginx"])
		if cpu["nginx"] > 0 {
			b.results.add("proxy_cpu_vs_nginx", cpu["slipway"]/cpu["nginx"])
		}
		ratio := rps["slipway"] / rps["nginx"]
		b.results.add("proxy_rps_vs_nginx", ratio)
		b.results.note("proxy_rps_vs_nginx", "round %d: slipway %.0f req/s, nginx %.0f req/s", r, rps["slipway"], rps["nginx"])

		// The three targets take turns in one-second slices, so that a burst of
		// other work on the machine falls on all three alike rather than on
		// whichever ran at that moment.
		p99 := map[string]time.Duration{}
		names := []string{"direct", "slipway", "nginx"}
		all := map[string][]loadResult{}
		for slice := range openLoopSlices {
			for i := range names {
				name := names[(i+slice+r)%len(names)]
				t := targets[name]
				gen := openLoop{URL: t.url, Host: t.host, Rate: fixedRate, MaxDuration: time.Second, MaxInFlight: 1000, Timeout: 5 * time.Second, Client: clients[name]}
				all[name] = append(all[name], gen.run(ctx, nil)...)
				if ctx.Err() != nil {
					return ctx.Err()
				}
			}
		}
		for _, name := range names {
			rs := all[name]
			p, failed := percentile(rs, 99)
			p50, _ := percentile(rs, 50)
			if failed > 0 {
				var first error
				for _, r := range rs {
					if r.err != nil {
						first = r.err
						break
					}
				}
				return fmt.Errorf("open loop through %s: %d of %d requests failed; first: %v", name, failed, len(rs), first)
			}
			p99[name] = p
			b.log.Printf("round %d: %s at %d req/s: p50 %s, p99 %s over %d requests", r, name, fixedRate, p50, p, len(rs))
		}
		b.results.add("proxy_p99_vs_direct", p99["slipway"].Seconds()/p99["direct"].Seconds())
		b.results.note("proxy_p99_vs_direct", "round %d: p99 direct %s, slipway %s, nginx %s (nginx ÷ direct %.2f×)", r,
			p99["direct"].Round(time.Microsecond), p99["slipway"].Round(time.Microsecond), p99["nginx"].Round(time.Microsecond),
			p99["nginx"].Seconds()/p99["direct"].Seconds())
		if pid, err := b.d.proxyPID(); err == nil {
			if hwm, err := vmHWM(pid); err == nil {
				b.log.Printf("round %d: proxy peak RSS so far %.1f MiB", r, mib(hwm))
			}
		}
		status("  round %d: req/s slipway %.0f nginx %.0f (%.2f×); p99 direct %s slipway %s nginx %s", r, rps["slipway"], rps["nginx"], ratio,
			p99["direct"].Round(time.Microsecond), p99["slipway"].Round(time.Microsecond), p99["nginx"].Round(time.Microsecond))
	}
	return nil
}

// appPort is $PORT inside instances (slipway's default).
func (d *daemon) appPort() int { return 5000 }

type target struct {
	url, host string
	hosts     string // a hosts file wrk resolves url's host with, for HTTPS; "" for none
}

func (t target) check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url, nil)
	if err != nil {
		return err
	}
	req.Host = t.host
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || len(body) != backendBodySize || res.Header.Get("X-Bench-Backend") != "go" {
		return fmt.Errorf("got %s with %d bytes", res.Status, len(body))
	}
	return nil
}

// backend is the Go HTTP server all three paths end at. It runs in a
// process of its own (this binary's "backend" mode): sharing the load
// generator's Go runtime would couple the two (one scheduler, one GC) and
// make the direct path, generator and server in one process, cheaper than
// any path through another process.
type backend struct {
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	exited   chan struct{}
	hostAddr string
	nsAddr   string
}

func startBackend(ctx context.Context, d *daemon, instance string, port int) (*backend, error) {
	rt, err := d.runtime()
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	// The web process steps aside: the supervisor stops httpd, which leaves
	// the port free, and runs sleep in its place.
	err = rt.StartProcesses(ctx, instance, slipwayrt.Processes{List: []slipwayrt.Process{{Name: "web", Command: "exec sleep 1000000"}}, Dir: "/app"})
	if err != nil {
		return nil, fmt.Errorf("stop httpd in %s: %w", instance, err)
	}
	pid, err := rt.InitPID(instance)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	b := &backend{nsAddr: "127.0.0.1:" + strconv.Itoa(port), exited: make(chan struct{})}
	b.cmd = exec.Command(self, "backend", strconv.FormatInt(pid, 10), b.nsAddr)
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	b.cmd.Stderr = os.Stderr
	if b.stdin, err = b.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := b.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the backend: %w", err)
	}
	go func() { b.cmd.Wait(); close(b.exited) }()
	// Its first line is the host address it listens on, once it listens on both.
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case b.hostAddr = <-line:
	case <-time.After(15 * time.Second):
	}
	if b.hostAddr == "" {
		b.close()
		return nil, errors.New("the backend did not start listening")
	}
	return b, nil
}

// close ends the backend: EOF on its stdin, then SIGKILL to its process
// group if it has not exited in 5 s.
func (b *backend) close() {
	b.stdin.Close()
	select {
	case <-b.exited:
	case <-time.After(5 * time.Second):
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-b.exited
	}
}

// serveBackend is the backend process: it listens on the host's loopback
// and on nsAddr inside the network namespace of nsPID (retrying while the
// instance's httpd is still exiting), prints the host address, and serves
// until its stdin ends.
func serveBackend(nsPID, nsAddr string) error {
	pid, err := strconv.ParseInt(nsPID, 10, 64)
	if err != nil {
		return err
	}
	body := strings.Repeat("x", backendBodySize-1) + "\n"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Set("X-Bench-Backend", "go")
		io.WriteString(w, body)
	})
	hostLn, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return err
	}
	var nsLn net.Listener
	deadline := time.Now().Add(10 * time.Second)
	for {
		nsLn, err = listenInNetns(pid, nsAddr)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			return fmt.Errorf("listen on %s in the namespace of pid %d: %w", nsAddr, pid, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	for _, ln := range []net.Listener{hostLn, nsLn} {
		go srv.Serve(ln)
	}
	fmt.Println(hostLn.Addr().String())
	io.Copy(io.Discard, os.Stdin)
	return srv.Close()
}

// listenInNetns opens a TCP listener inside the network namespace of pid
// (a container's init), as the daemon dials into it: setns on a locked
// thread, listen, switch back. The socket stays in that namespace.
func listenInNetns(pid int64, addr string) (net.Listener, error) {
	type result struct {
		ln  net.Listener
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		home, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer home.Close()
		target, err := os.Open("/proc/" + strconv.FormatInt(pid, 10) + "/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			ch <- result{err: fmt.Errorf("setns: %w", err)}
			return
		}
		ln, err := net.Listen("tcp4", addr)
		if serr := unix.Setns(int(home.Fd()), unix.CLONE_NEWNET); serr != nil {
			// Stay locked: the runtime ends a thread whose goroutine exits locked.
			ch <- result{ln: ln, err: err}
			return
		}
		runtime.UnlockOSThread()
		ch <- result{ln: ln, err: err}
	}()
	r := <-ch
	return r.ln, r.err
}

// nginx is Debian's nginx-light with the bench's own prefix and config.
type nginx struct {
	cmd    *exec.Cmd
	pid    int
	addr   string
	exited chan struct{}
}

// nginxTLS has nginx serve HTTPS with a certificate (chain) and key file.
type nginxTLS struct{ cert, key string }

func startNginx(ctx context.Context, prefix, backendAddr string, withTLS *nginxTLS) (*nginx, error) {
	for _, d := range []string{"", "tmp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			return nil, err
		}
	}
	addr, err := freePort()
	if err != nil {
		return nil, err
	}
	listen := addr
	if withTLS != nil {
		// TLS 1.2 and 1.3 as Go's server has them; no session cache, as the
		// proxy keeps none (the handshake bench's clients resume nothing).
		listen = fmt.Sprintf("%s ssl;\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s;\n\t\tssl_protocols TLSv1.2 TLSv1.3", addr, withTLS.cert, withTLS.key)
	}
	// Keep-alive both ways and no per-connection request limit (Go's
	// server and transport have none), access log off, workers = CPUs.
	conf := fmt.Sprintf(`# written by slipway-bench
daemon off;
master_process on;
worker_processes auto;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	fastcgi_temp_path %[1]s/tmp/fastcgi;
	uwsgi_temp_path %[1]s/tmp/uwsgi;
	scgi_temp_path %[1]s/tmp/scgi;
	keepalive_requests 1000000;
	upstream backend {
		server %[2]s;
		keepalive 128;
		keepalive_requests 1000000;
	}
	server {
		listen %[3]s;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_set_header X-Forwarded-For $remote_addr;
			proxy_set_header X-Forwarded-Proto $scheme;
		}
	}
}
`, prefix, backendAddr, listen)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	n := &nginx{addr: addr, exited: make(chan struct{})}
	n.cmd = exec.Command("/usr/sbin/nginx", "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log"))
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out strings.Builder
	n.cmd.Stdout, n.cmd.Stderr = &out, &out
	if err := n.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start nginx: %w", err)
	}
	n.pid = n.cmd.Process.Pid
	go func() { n.cmd.Wait(); close(n.exited) }()
	if err := waitListening(ctx, addr, n.exited); err != nil {
		n.stop()
		errLog, _ := os.ReadFile(filepath.Join(prefix, "error.log"))
		return nil, fmt.Errorf("nginx: %w: %s%s", err, out.String(), errLog)
	}
	return n, nil
}

// stop ends nginx: SIGTERM to its master (our child), then SIGKILL to its
// process group (the master and its workers) if it has not exited in 10 s.
func (n *nginx) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-n.pid, syscall.SIGKILL)
		<-n.exited
	}
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}

func waitListening(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited at start")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after 10 s", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// wrkResult is what the bench reads from wrk's report.
type wrkResult struct {
	rps      float64
	requests int64
	errors   int64 // socket errors and non-2xx/3xx responses
}

var (
	wrkRPS      = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	wrkRequests = regexp.MustCompile(`(\d+) requests in`)
	wrkNon2xx   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocket   = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// runWrk runs wrk (closed loop: 2 threads, 64 connections) against t.
func runWrk(ctx context.Context, t target, d time.Duration) (wrkResult, error) {
	args := []string{"-t2", "-c64", "-d" + strconv.Itoa(int(d.Seconds())) + "s", "-H", "Host: " + t.host, t.url}
	cmd := exec.CommandContext(ctx, "wrk", args...)
	if t.hosts != "" {
		// wrk sends the URL's host as SNI, which must be the app's name: it
		// resolves it through a hosts file of its own, bound over /etc/hosts
		// in a mount namespace of its own (the host's is untouched).
		cmd = exec.CommandContext(ctx, "unshare", append([]string{"-m", "--propagation", "private", "sh", "-c",
			`mount --bind "$0" /etc/hosts && exec wrk "$@"`, t.hosts}, args...)...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return wrkResult{}, ctx.Err()
		}
		return wrkResult{}, fmt.Errorf("wrk %s: %v: %s", t.url, err, out)
	}
	var r wrkResult
	m := wrkRPS.FindSubmatch(out)
	n := wrkRequests.FindSubmatch(out)
	if m == nil || n == nil {
		return r, fmt.Errorf("cannot read wrk's report:\n%s", out)
	}
	r.rps, _ = strconv.ParseFloat(string(m[1]), 64)
	r.requests, _ = strconv.ParseInt(string(n[1]), 10, 64)
	if m := wrkNon2xx.FindSubmatch(out); m != nil {
		v, _ := strconv.ParseInt(string(m[1]), 10, 64)
		r.errors += v
	}
	if m := wrkSocket.FindSubmatch(out); m != nil {
		for _, s := range m[1:] {
			v, _ := strconv.ParseInt(string(s), 10, 64)
			r.errors += v
		}
	}
	return r, nil
}

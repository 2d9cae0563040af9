package daemon_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/daemon/daemontest"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// The front proxy runs in a process of its own: these tests kill the daemon,
// restart it with a new binary, upgrade the proxy and kill the proxy, each
// under a bounded constant load, and count the requests that failed.

// load is a client asking for one host at a steady rate over kept-alive
// connections, the way browsers and API clients do.
type load struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	failures   []time.Time
	first      string
	stop       chan struct{}
	wg         sync.WaitGroup
}

// startLoad asks host for / from workers clients, each every 10 ms.
func (d *slipwayd) startLoad(host string, workers int) *load {
	l := &load{stop: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	proxy := d.addrs["proxy"] // the proxy's address does not change while the daemon goes
	for i := 0; i < workers; i++ {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			tick := time.NewTicker(10 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-l.stop:
					return
				case <-tick.C:
				}
				l.once(client, proxy, host)
			}
		}()
	}
	d.t.Cleanup(l.end)
	return l
}

func (l *load) once(client *http.Client, proxy, host string) {
	req, _ := http.NewRequest(http.MethodGet, "http://"+proxy+"/", nil)
	req.Host = host
	resp, err := client.Do(req)
	var body []byte
	if err == nil {
		body, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %d: %q", resp.StatusCode, body)
		}
	}
	if err == nil {
		l.ok.Add(1)
		return
	}
	l.failed.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.first == "" {
		l.first = err.Error()
	}
	l.failures = append(l.failures, time.Now())
}

// end stops the load and waits for the requests in flight.
func (l *load) end() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// noneFailed ends the load and fails the test if a request failed or too
// few were made for the count to mean anything.
func (l *load) noneFailed(t *testing.T, during string) {
	t.Helper()
	l.end()
	if n := l.failed.Load(); n > 0 {
		t.Fatalf("%d of %d requests failed %s; first: %s", n, n+l.ok.Load(), during, l.first)
	}
	if l.ok.Load() < 50 {
		t.Fatalf("only %d requests made %s: the load was not constant", l.ok.Load(), during)
	}
	t.Logf("%d requests, 0 failed, %s", l.ok.Load(), during)
}

// proxyClient reaches the proxy process's control socket.
func (d *slipwayd) proxyClient() *router.Client {
	return router.NewClient(frontproxy.PathsIn(frontproxy.DirIn(d.data)).Socket)
}

func (d *slipwayd) proxyHello() router.Hello {
	d.t.Helper()
	hello, err := d.proxyClient().Hello(context.Background())
	if err != nil {
		d.t.Fatalf("the proxy does not answer: %v", err)
	}
	return hello
}

// routesTo says which instance the proxy sends each host to.
func (d *slipwayd) routesTo() map[string]string {
	d.t.Helper()
	routes, err := d.proxyClient().Routes(context.Background())
	if err != nil {
		d.t.Fatalf("proxy routes: %v", err)
	}
	m := map[string]string{}
	for _, r := range routes {
		m[r.Host] = r.Instance
	}
	return m
}

// reconciled checks the proxy and Incus agree with the store: each host routed
// once, to the instance the store says serves it, and no other instance.
func (d *slipwayd) reconciled(host string) {
	d.t.Helper()
	var st struct{ Instance, Commit string }
	d.statusJSON(&st, strings.SplitN(host, ".", 3)[0]+"/"+strings.SplitN(host, ".", 3)[1])
	eventually(d.t, 45*time.Second, "only the serving instance left", func() (bool, string) {
		names := d.instances()
		return len(names) == 1 && names[0] == st.Instance, fmt.Sprintf("instances %v, serving %s", names, st.Instance)
	})
	routes := d.routesTo()
	if len(routes) != 1 || routes[host] != st.Instance {
		d.t.Fatalf("proxy routes %v; want only %s to %s", routes, host, st.Instance)
	}
}

func TestDaemonKilledWhileIdleTrafficFlows(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, _ := d.deployed("idle", "still here\n")
	proxy := d.proxyHello()

	l := d.startLoad(host, 4)
	time.Sleep(500 * time.Millisecond)
	d.stop(syscall.SIGKILL)
	time.Sleep(2 * time.Second) // nobody restarts it yet
	if !isAlive(proxy.PID) {
		t.Fatalf("the proxy (pid %d) died with the daemon", proxy.PID)
	}
	d.start()
	time.Sleep(500 * time.Millisecond)
	l.noneFailed(t, "while the daemon was killed and started again")
	if again := d.proxyHello(); again.PID != proxy.PID || again.Addr != proxy.Addr {
		t.Fatalf("the restarted daemon did not keep the proxy: was %+v, now %+v", proxy, again)
	}
	d.reconciled(host)
}

func TestProxyServesFromItsStateFileAlone(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, _ := d.deployed("alone", "from the state file\n")
	proxy := d.proxyHello()
	d.stop(syscall.SIGTERM) // a stopped daemon leaves the proxy running
	if !isAlive(proxy.PID) {
		t.Fatalf("the proxy (pid %d) stopped with the daemon", proxy.PID)
	}
	syscall.Kill(proxy.PID, syscall.SIGKILL)
	waitGone(t, proxy.PID)

	// Started the way a service manager does, with no daemon running.
	cmd := exec.Command(slipwayBin, "proxy", "--data", d.data, "--proxy-addr", proxy.Addr, "--https-addr", proxy.HTTPSAddr, "--incus-project", d.project)
	logf, err := os.Create(filepath.Join(d.dir, "manual-proxy.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		<-exited
	})
	d.serves(host, "from the state file")

	d.start()
	if again := d.proxyHello(); again.PID != cmd.Process.Pid {
		t.Fatalf("the daemon did not adopt the running proxy (pid %d): %+v", cmd.Process.Pid, again)
	}
	d.reconciled(host)
}

func TestDaemonKilledRightAfterTheSwap(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("swap", "before\n")
	before := d.routesTo()[host]
	l := d.startLoad(host, 4)

	w.commitFile("public/index.html", "after\n", "after")
	push := exec.Command("git", "push", "deploy", "main")
	push.Dir, push.Env = w.dir, w.env
	if err := push.Start(); err != nil {
		t.Fatal(err)
	}
	// Kill the daemon the moment the proxy sends the host elsewhere.
	eventually(t, 60*time.Second, "the swap", func() (bool, string) {
		now := d.routesTo()[host]
		return now != before, now
	})
	d.stop(syscall.SIGKILL)
	push.Wait()
	time.Sleep(time.Second)
	d.start()
	d.reconciled(host)
	time.Sleep(500 * time.Millisecond)
	l.noneFailed(t, "while the daemon was killed right after a swap")

	op := d.ops("--limit", "1")[0]
	if op.Status != "succeeded" && !(op.Status == "failed" && strings.Contains(op.Reason, "interrupted")) {
		t.Fatalf("the deploy after the restart: %+v; want succeeded, or failed as interrupted", op)
	}
}

func TestUpgradesDropNoRequest(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	// The daemon runs a binary of this test's own, which the test replaces.
	bin := filepath.Join(d.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"slipway", "slipway-supervisor"} {
		copyFile(t, filepath.Join(filepath.Dir(slipwayBin), name), filepath.Join(bin, name))
	}
	d.stop(syscall.SIGTERM)
	if err := daemontest.StopProxy(d.data, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	d.bin = filepath.Join(bin, "slipway")
	d.start()
	host, _ := d.deployed("upgrade", "through upgrades\n")
	old := d.proxyHello()
	l := d.startLoad(host, 4)

	// A new release: another version, installed over the old binary.
	const next = "v99.0.0-test"
	build := exec.Command("go", "build", "-o", d.bin+".new", "-ldflags", "-X github.com/slipway-dev/slipway/daemon/version.Version="+next,
		"github.com/slipway-dev/slipway/daemon/cmd/slipway")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the new release: %v\n%s", err, out)
	}
	if err := os.Rename(d.bin+".new", d.bin); err != nil {
		t.Fatal(err)
	}
	d.stop(syscall.SIGTERM)
	d.start()
	if !strings.Contains(d.logText(), "The proxy runs another version of slipway") {
		t.Errorf("the new daemon did not say the proxy runs the old version")
	}

	out, err := exec.Command(d.bin, "proxy", "upgrade", "--data", d.data).CombinedOutput()
	if err != nil {
		t.Fatalf("slipway proxy upgrade: %v\n%s", err, out)
	}
	t.Logf("slipway proxy upgrade: %s", out)
	now := d.proxyHello()
	if now.PID == old.PID || !strings.Contains(now.Version, next) || now.Addr != old.Addr {
		t.Fatalf("after the upgrade the proxy is %+v; was %+v, want a new pid running %s at the same address", now, old, next)
	}
	waitGone(t, old.PID)
	time.Sleep(500 * time.Millisecond)
	l.noneFailed(t, "across a daemon restart with a new binary and a proxy upgrade")
	d.serves(host, "through upgrades")
}

func TestKilledProxyComesBack(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, _ := d.deployed("phoenix", "back again\n")
	old := d.proxyHello()
	l := d.startLoad(host, 4)
	time.Sleep(300 * time.Millisecond)
	syscall.Kill(old.PID, syscall.SIGKILL)
	eventually(t, 10*time.Second, "a new proxy", func() (bool, string) {
		hello, err := d.proxyClient().Hello(context.Background())
		return err == nil && hello.PID != old.PID, fmt.Sprint(hello, err)
	})
	time.Sleep(time.Second)
	l.end()
	now := d.proxyHello()
	if now.Addr != old.Addr {
		t.Fatalf("the proxy came back on %s, not %s", now.Addr, old.Addr)
	}
	d.serves(host, "back again")
	l.mu.Lock()
	defer l.mu.Unlock()
	// Timing targets live in `just bench`; here the failures must stop.
	if n := len(l.failures); n > 0 {
		gap := l.failures[n-1].Sub(l.failures[0])
		t.Logf("%d of %d requests failed over %s after kill -9 of the proxy", n, int64(n)+l.ok.Load(), gap.Round(time.Millisecond))
		if time.Since(l.failures[n-1]) < 500*time.Millisecond {
			t.Fatalf("requests still fail a second after the proxy came back")
		}
	}
	d.reconciled(host)
}

func isAlive(pid int) bool { return frontproxy.Running(pid) }

// waitGone waits for a process to exit (a zombie counts as gone).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	eventually(t, 45*time.Second, fmt.Sprintf("pid %d gone", pid), func() (bool, string) {
		return !frontproxy.Running(pid), ""
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

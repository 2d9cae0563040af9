package container_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
	"github.com/slipway-dev/slipway/channels/runtime"
)

func TestMain(m *testing.M) {
	if os.Geteuid() == 0 || os.Getenv("CI") != "" {
		// Import the base image once, before parallel tests race to.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		err := container.EnsureBaseImage(ctx, container.TestImage, baseimage.DefaultBusybox)
		cancel()
		if err != nil {
			fmt.Fprintln(os.Stderr, "base image:", err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// launch starts a labelled instance from the base image and returns its name.
func launch(t *testing.T, c *container.Incus, labels map[string]string) string {
	t.Helper()
	name := "t-" + container.RandomSuffix()
	start := time.Now()
	if err := c.Launch(context.Background(), name, container.TestImage, labels); err != nil {
		t.Fatalf("launch: %v", err)
	}
	t.Logf("launch %s: %v", name, time.Since(start))
	return name
}

func execT(t *testing.T, c *container.Incus, name string, stdin io.Reader, cmd ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code, err := c.Exec(context.Background(), name, cmd, nil, stdin, &out)
	if err != nil {
		t.Fatalf("exec %q: %v", cmd, err)
	}
	return code, out.String()
}

func TestLaunchExecDelete(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, map[string]string{"app": "hello"})

	start := time.Now()
	var out bytes.Buffer
	code, err := c.Exec(context.Background(), name, []string{"sh", "-c", `echo "out $GREETING"; echo err >&2; exit 3`},
		map[string]string{"GREETING": "hi there"}, nil, &out)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("exec: %v", time.Since(start))
	if code != 3 {
		t.Errorf("exit code %d, want 3", code)
	}
	if got := out.String(); !strings.Contains(got, "out hi there\n") || !strings.Contains(got, "err\n") {
		t.Errorf("output %q", got)
	}

	// The base image brings loopback up at boot.
	if code, out := execT(t, c, name, nil, "ip", "addr", "show", "lo"); code != 0 || !strings.Contains(out, "127.0.0.1") {
		t.Errorf("lo: exit %d: %s", code, out)
	}

	start = time.Now()
	if err := c.Delete(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	t.Logf("delete: %v", time.Since(start))
	if _, err := c.Exec(context.Background(), name, []string{"true"}, nil, nil, nil); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("exec after delete: %v, want ErrNotFound", err)
	}
	if err := c.Delete(context.Background(), name); err != nil {
		t.Errorf("deleting a missing instance: %v", err)
	}
}

func TestLaunchErrors(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	err := c.Launch(context.Background(), "t-"+container.RandomSuffix(), "slipway/no-such-image", nil)
	if !errors.Is(err, container.ErrNotFound) {
		t.Fatalf("launch from a missing image: %v, want ErrNotFound", err)
	}
	if err := c.Launch(context.Background(), "bad/name", container.TestImage, nil); !errors.Is(err, container.ErrBadName) {
		t.Fatalf("launch with a bad name: %v, want ErrBadName", err)
	}
	name := launch(t, c, map[string]string{"app": "first"})
	if err := c.Launch(context.Background(), name, container.TestImage, nil); !errors.Is(err, container.ErrExists) {
		t.Fatalf("launch over an existing instance: %v, want ErrExists", err)
	}
	// The failed launch left the existing instance alone.
	time.Sleep(200 * time.Millisecond)
	if code, _ := execT(t, c, name, nil, "true"); code != 0 {
		t.Fatal("existing instance is gone")
	}
}

func TestExecStdinTar(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, nil)

	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	for path, body := range map[string]string{"index.html": "<h1>hello</h1>\n", "sub/x.txt": "x\n"} {
		tw.WriteHeader(&tar.Header{Name: path, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()

	start := time.Now()
	code, out := execT(t, c, name, &tarball, "tar", "-x", "-C", "/app")
	t.Logf("exec untar: %v", time.Since(start))
	if code != 0 {
		t.Fatalf("tar: exit %d: %s", code, out)
	}
	if code, out := execT(t, c, name, nil, "cat", "/app/index.html", "/app/sub/x.txt"); code != 0 || out != "<h1>hello</h1>\nx\n" {
		t.Errorf("extracted files: exit %d: %q", code, out)
	}
}

func TestExecCancel(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, nil)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var out syncBuffer
	start := time.Now()
	_, err := c.Exec(ctx, name, []string{"sh", "-c", "echo started; exec sleep 30"}, nil, nil, &out)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec: %v, want context.DeadlineExceeded", err)
	}
	if took > time.Second {
		t.Errorf("cancelled exec returned after %v", took)
	}
	// The process was killed, not left running.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, ps := execT(t, c, name, nil, "ps")
		if !strings.Contains(ps, "sleep 30") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sleep still running after cancel:\n%s", ps)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Stdin that never ends does not keep a cancelled Exec waiting either.
	pr, pw := io.Pipe()
	defer pw.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	start = time.Now()
	if _, err := c.Exec(ctx2, name, []string{"cat"}, nil, pr, io.Discard); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("exec cat: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("cancelled exec with open stdin returned after %v", took)
	}
}

// tarOf is a tar of files (name -> content).
func tarOf(files map[string]string) io.Reader {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		io.WriteString(tw, body)
	}
	tw.Close()
	return &buf
}

func web(command string, env map[string]string) runtime.Processes {
	return runtime.Processes{List: []runtime.Process{{Name: "web", Command: command}}, Env: env, Dir: "/app"}
}

// The supervisor runs the app with its environment, restarts it when it
// dies, reports what it prints, and replaces it on a second start.
func TestProcessesDialRespawn(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, nil)
	ctx := context.Background()

	if err := c.Deliver(ctx, name, tarOf(map[string]string{"hello.txt": "hello from /app\n"})); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err := c.StartProcesses(ctx, name, web(`echo "web starting as $WHO"; echo $$ >/run/web.pid; exec httpd -f -p "$PORT" -h /app`,
		map[string]string{"PORT": "5000", "WHO": "it's me"}))
	if err != nil {
		t.Fatal(err)
	}
	body := waitGet(t, c, name, 5000, "/hello.txt", 5*time.Second)
	t.Logf("StartProcesses to first successful GET: %v", time.Since(start))
	if body != "hello from /app\n" {
		t.Errorf("GET /hello.txt = %q", body)
	}
	logs := make(chan runtime.LogLine, 100)
	lctx, stopLogs := context.WithCancel(ctx)
	defer stopLogs()
	go c.FollowLogs(lctx, name, "", 0, func(l runtime.LogLine) error { logs <- l; return nil })
	waitLine(t, logs, "web starting as it's me")

	// Kill the web process: the supervisor starts it again.
	_, pid := execT(t, c, name, nil, "cat", "/run/web.pid")
	pid = strings.TrimSpace(pid)
	if code, out := execT(t, c, name, nil, "kill", "-9", pid); code != 0 {
		t.Fatalf("kill %s: %s", pid, out)
	}
	start = time.Now()
	waitLine(t, logs, "killed by signal 9")
	waitLine(t, logs, "web starting as it's me")
	waitGet(t, c, name, 5000, "/hello.txt", 5*time.Second)
	t.Logf("respawn after kill: %v", time.Since(start))

	// A second start replaces the running command.
	if err := c.StartProcesses(ctx, name, web("exec httpd -f -p 5001 -h /app", nil)); err != nil {
		t.Fatal(err)
	}
	waitGet(t, c, name, 5001, "/hello.txt", 10*time.Second)
}

// waitLine waits for a log line holding want.
func waitLine(t *testing.T, logs <-chan runtime.LogLine, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l := <-logs:
			if strings.Contains(l.Line, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no log line with %q", want)
		}
	}
}

// A tree is delivered into the instance's /app, a big environment reaches
// the app, and a tree that is not a tar is a clear error.
func TestDeliverAndStart(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"small", map[string]string{"PORT": "5000"}},
		{"big", map[string]string{"PORT": "5000", "BIG": strings.Repeat("x", 100<<10)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := launch(t, c, nil)
			start := time.Now()
			if err := c.Deliver(ctx, name, tarOf(map[string]string{"public/index.html": "tree of " + tc.name + "\n"})); err != nil {
				t.Fatal(err)
			}
			if err := c.StartProcesses(ctx, name, web(`echo $$ >/run/web.pid; exec httpd -f -p "$PORT" -h /app/public`, tc.env)); err != nil {
				t.Fatal(err)
			}
			t.Logf("Deliver and StartProcesses: %v", time.Since(start))
			if body := waitGet(t, c, name, 5000, "/index.html", 5*time.Second); body != "tree of "+tc.name+"\n" {
				t.Errorf("GET /index.html = %q", body)
			}
			if _, env := execT(t, c, name, nil, "sh", "-c", "tr '\\0' '\\n' < /proc/$(cat /run/web.pid)/environ"); !strings.Contains(env, "PORT=5000\n") || len(env) < len(tc.env["BIG"]) {
				t.Errorf("web environment:\n%.300s", env)
			}
		})
	}
	name := launch(t, c, nil)
	err := c.Deliver(ctx, name, strings.NewReader("not a tar"))
	if err == nil {
		t.Error("Deliver of something that is not a tar succeeded")
	}
	t.Logf("Deliver of a broken tree: %v", err)
}

// InitPID finds init from the instance's cgroup; it must agree with Incus.
func TestInitPID(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, nil)
	pid, err := c.InitPID(name)
	if err != nil {
		t.Fatal(err)
	}
	state, _, err := c.Server().GetInstanceState(name)
	if err != nil {
		t.Fatal(err)
	}
	if pid != state.Pid {
		t.Errorf("InitPID = %d, Incus says %d", pid, state.Pid)
	}
	if err := c.Stop(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.InitPID(name); !errors.Is(err, container.ErrNotRunning) {
		t.Errorf("InitPID of a stopped instance: %v, want ErrNotRunning", err)
	}
}

// Booted returns once init runs, before Launch has returned, or with the
// error of a Launch that fails.
func TestBooted(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	ctx := context.Background()
	name := "t-" + container.RandomSuffix()
	launched := make(chan time.Time, 1)
	go func() {
		if err := c.Launch(ctx, name, container.TestImage, nil); err != nil {
			t.Error(err)
		}
		launched <- time.Now()
	}()
	// However the test ends, the launch ends first, so the project's clean-up
	// finds the instance.
	var launchedAt time.Time
	waitLaunch := func() time.Time {
		if launchedAt.IsZero() {
			launchedAt = <-launched
		}
		return launchedAt
	}
	defer waitLaunch()
	if err := c.Booted(ctx, name); err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	pid, err := c.InitPID(name)
	if err != nil || pid <= 0 {
		t.Fatalf("InitPID after Booted: %d %v", pid, err)
	}
	// The app can be delivered right away, into the instance's own root.
	if err := c.Deliver(ctx, name, tarOf(map[string]string{"index.html": "early\n"})); err != nil {
		t.Fatalf("Deliver right after Booted: %v", err)
	}
	if err := c.StartProcesses(ctx, name, web(`httpd -f -p 5000 -h /app`, nil)); err != nil {
		t.Fatalf("StartProcesses right after Booted: %v", err)
	}
	t.Logf("booted and delivered %v before Launch returned", waitLaunch().Sub(booted))
	if body := waitGet(t, c, name, 5000, "/index.html", 5*time.Second); body != "early\n" {
		t.Errorf("GET /index.html = %q", body)
	}
	if _, err := os.Stat("/app/index.html"); err == nil {
		t.Error("the delivery reached the host's /app")
	}

	bad := "t-" + container.RandomSuffix()
	failed := make(chan error, 1)
	go func() { failed <- c.Launch(ctx, bad, "no-such-image", nil) }()
	// Booted of a name nobody launches gives up after a short grace, so ask
	// only once the launch is in flight (or already over).
	var launchErr error
	for !c.Launching(bad) && launchErr == nil {
		select {
		case launchErr = <-failed:
			failed <- launchErr
		case <-time.After(time.Millisecond):
		}
	}
	defer func() { <-failed }()
	if launchErr != nil {
		t.Logf("the launch failed before Booted was asked: %v", launchErr)
	} else if err := c.Booted(ctx, bad); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("Booted of a launch that fails: %v, want ErrNotFound", err)
	}
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	name := launch(t, c, nil)
	ctx := context.Background()
	// Right after a start, init may not have brought loopback up yet.
	dialClosed := func() error {
		deadline := time.Now().Add(3 * time.Second)
		for {
			_, err := c.Dial(ctx, name, 5999)
			if err == nil || !strings.Contains(err.Error(), "network is unreachable") || time.Now().After(deadline) {
				return err
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if err := dialClosed(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dial a closed port: %v", err)
	}
	if _, err := c.Dial(ctx, "t-missing", 5000); !errors.Is(err, container.ErrNotFound) {
		t.Errorf("dial a missing instance: %v, want ErrNotFound", err)
	}
	// A restarted instance has a new init: the cached namespace is refreshed.
	if _, err := c.Dial(ctx, name, 5999); err == nil {
		t.Fatal("dial a closed port succeeded")
	}
	if err := c.Restart(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := dialClosed(); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("dial after restart: %v", err)
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	a := launch(t, c, map[string]string{"installation": "web-prod", "commit": "abc123"})
	b := launch(t, c, map[string]string{"installation": "web-staging"})
	// An instance without labels is not ours to list.
	if err := c.Launch(context.Background(), "t-unlabelled", container.TestImage, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	got, err := c.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]runtime.Instance{
		a: {Name: a, Labels: map[string]string{"installation": "web-prod", "commit": "abc123"}, Running: true},
		b: {Name: b, Labels: map[string]string{"installation": "web-staging"}, Running: false},
	}
	if len(got) != len(want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	for _, inst := range got {
		w := want[inst.Name]
		if inst.Running != w.Running || fmt.Sprint(inst.Labels) != fmt.Sprint(w.Labels) {
			t.Errorf("List: %+v, want %+v", inst, w)
		}
	}
}

// waitGet GETs path from port inside the instance through Dial until it
// answers 200 or timeout passes.
func waitGet(t *testing.T, c *container.Incus, name string, port int, path string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		body, err := get(c, name, port, path)
		if err == nil {
			return body
		}
		lastErr = err
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("GET %s on port %d: %v", path, port, lastErr)
	return ""
}

func get(c *container.Incus, name string, port int, path string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := c.Dial(ctx, name, port)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: app\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 {
		return "", fmt.Errorf("status %s: %s", resp.Status, body)
	}
	return string(body), nil
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// BenchmarkDeploySteps measures the runtime steps of one deploy, one after
// the other, and reports each step's median: launch, deliver (a small
// tree), StartProcesses to the first successful GET through Dial, delete. Run
// with
// go test -run XXX -bench DeploySteps -benchtime 10x ./channels/container/
func BenchmarkDeploySteps(b *testing.B) {
	c := container.NewTestIncus(b)
	ctx := context.Background()
	var tarball bytes.Buffer
	tw := tar.NewWriter(&tarball)
	body := "<h1>hello</h1>\n"
	tw.WriteHeader(&tar.Header{Name: "public/index.html", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()

	var launch, execT, serve, del []time.Duration
	for i := 0; i < b.N; i++ {
		name := "b-" + container.RandomSuffix()
		t0 := time.Now()
		if err := c.Launch(ctx, name, container.TestImage, map[string]string{"bench": "1"}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := c.Deliver(ctx, name, bytes.NewReader(tarball.Bytes())); err != nil {
			b.Fatalf("deliver: %v", err)
		}
		t2 := time.Now()
		if err := c.StartProcesses(ctx, name, web("httpd -f -p $PORT -h /app/public", map[string]string{"PORT": "5000"})); err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := get(c, name, 5000, "/index.html"); err == nil {
				break
			}
			if time.Since(t2) > 10*time.Second {
				b.Fatal("web never answered")
			}
			time.Sleep(2 * time.Millisecond)
		}
		t3 := time.Now()
		if err := c.Delete(ctx, name); err != nil {
			b.Fatal(err)
		}
		t4 := time.Now()
		launch = append(launch, t1.Sub(t0))
		execT = append(execT, t2.Sub(t1))
		serve = append(serve, t3.Sub(t2))
		del = append(del, t4.Sub(t3))
	}
	b.ReportMetric(median(launch), "launch-ms")
	b.ReportMetric(median(execT), "deliver-ms")
	b.ReportMetric(median(serve), "serve-ms")
	b.ReportMetric(median(del), "delete-ms")
}

// median in milliseconds.
func median(d []time.Duration) float64 {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Seconds() * 1000
}

func TestPublishSnapshotAndLaunchIt(t *testing.T) {
	c := container.NewTestIncus(t)
	ctx := context.Background()
	if err := c.Launch(ctx, "built", "slipway/busybox", map[string]string{"commit": "aaa", "installation": "1"}); err != nil {
		t.Fatal(err)
	}
	if code, err := c.Exec(ctx, "built", []string{"sh", "-c", "echo built-tree > /app/marker"}, nil, nil, io.Discard); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	if err := c.Snapshot(ctx, "built", "built"); err != nil {
		t.Fatal(err)
	}
	// Changes after the snapshot must not reach the image.
	c.Exec(ctx, "built", []string{"sh", "-c", "echo later > /app/marker"}, nil, nil, io.Discard)
	start := time.Now()
	fp, err := c.PublishSnapshot(ctx, "built", "built", map[string]string{"slipway.commit": "aaa"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("publish: %s", time.Since(start))
	start = time.Now()
	if err := c.Launch(ctx, "again", fp, map[string]string{"commit": "aaa"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("launch from the published image: %s", time.Since(start))
	var out strings.Builder
	if code, err := c.Exec(ctx, "again", []string{"cat", "/app/marker"}, nil, nil, &out); err != nil || code != 0 || out.String() != "built-tree\n" {
		t.Fatalf("launched image holds %q (%d %v), want the snapshot's tree", out.String(), code, err)
	}
	if err := c.Delete(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteImage(ctx, fp); err != nil {
		t.Fatal(err)
	}
	if err := c.Launch(ctx, "gone", fp, nil); err == nil {
		t.Fatal("launched from a deleted image")
	}
}

// An image with no init at all and no /app still runs the app: slipway's
// supervisor is the instance's init and makes /app.
func TestImageWithoutInitRunsTheApp(t *testing.T) {
	t.Parallel()
	c := container.NewTestIncus(t)
	ctx := context.Background()
	name := launch(t, c, nil)
	if _, out := execT(t, c, name, nil, "sh", "-c", "rm -rf /sbin/init /etc/inittab /app && ls /sbin/init /app 2>&1; true"); !strings.Contains(out, "No such file") {
		t.Fatalf("init still there: %s", out)
	}
	if err := c.Snapshot(ctx, name, "bare"); err != nil {
		t.Fatal(err)
	}
	fp, err := c.PublishSnapshot(ctx, name, "bare", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DeleteImage(context.Background(), fp) })
	bare := "bare-" + container.RandomSuffix()
	if err := c.Launch(ctx, bare, fp, nil); err != nil {
		t.Fatalf("launch an image without init: %v", err)
	}
	t.Cleanup(func() { c.Delete(context.Background(), bare) })
	if err := c.Deliver(ctx, bare, tarOf(map[string]string{"public/index.html": "no init needed\n"})); err != nil {
		t.Fatal(err)
	}
	if err := c.StartProcesses(ctx, bare, web(`exec httpd -f -p "$PORT" -h /app/public`, map[string]string{"PORT": "5000"})); err != nil {
		t.Fatal(err)
	}
	if body := waitGet(t, c, bare, 5000, "/index.html", 5*time.Second); body != "no init needed\n" {
		t.Errorf("GET /index.html = %q", body)
	}
}

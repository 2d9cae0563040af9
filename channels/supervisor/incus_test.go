package supervisor_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/supervisor"
)

const image = "slipway/busybox" // made by `just image` in the default project

// The supervisor as PID 1 of a real instance: boot, deliver, start, logs,
// exec, status, and a stop by Incus that reaches the app as SIGTERM.
func TestSupervisorAsInitOfAnIncusInstance(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd (set CI=true to make this a failure)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := buildSupervisor(t)
	srv := testProject(t)

	name := "sup-" + randomHex()
	begin := time.Now()
	launch(t, srv, name, dir)
	state, _, err := srv.GetInstanceState(name)
	if err != nil || state.Pid <= 0 {
		t.Fatalf("instance state: %+v, %v", state, err)
	}
	booted := time.Now()
	conn, err := supervisor.DialInstance(ctx, int(state.Pid))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	t.Logf("launched in %v, connected %v after", booted.Sub(begin), time.Since(booted))

	logs := followLogs(t, ctx, int(state.Pid))
	deliver(t, ctx, int(state.Pid))
	start := time.Now()
	err = supervisor.Start(ctx, dialT(t, ctx, state.Pid), supervisor.Spec{
		Processes: []supervisor.ProcessSpec{{Name: "web", Command: "./run.sh"}},
		Env:       map[string]string{"PORT": "8000"},
		Grace:     5,
	})
	if err != nil {
		t.Fatal(err)
	}
	logs.waitFor(t, "web", "web up on 8000")
	t.Logf("started in %v", time.Since(start))

	// lo is up and exec works: fetch the page from inside.
	body := execOut(t, ctx, state.Pid, "sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://127.0.0.1:8000/ 2>/dev/null && exit 0; sleep 0.1; done; exit 1")
	if body != "hello from the supervisor\n" {
		t.Errorf("page %q", body)
	}
	if mounts := execOut(t, ctx, state.Pid, "cat", "/proc/mounts"); !strings.Contains(mounts, " /run tmpfs ") {
		t.Errorf("no tmpfs on /run:\n%s", mounts)
	}
	st, err := supervisor.Status(ctx, dialT(t, ctx, state.Pid))
	if err != nil || len(st.Processes) != 1 || st.Processes[0].State != supervisor.StateRunning || st.Processes[0].PID <= 1 {
		t.Fatalf("status %+v, %v", st, err)
	}

	stop := time.Now()
	op, err := srv.UpdateInstanceState(name, api.InstanceStatePut{Action: "stop", Timeout: 30}, "")
	if err == nil {
		err = op.WaitContext(ctx)
	}
	if err != nil {
		t.Fatalf("stop: %v; the log:\n%s", err, logs.dump())
	}
	took := time.Since(stop)
	t.Logf("stopped in %v", took)
	if took > 10*time.Second {
		t.Errorf("stopping took %v: the supervisor did not exit on SIGPWR", took)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if rc, err := srv.GetInstanceConsoleLog(name, nil); err == nil {
				b, _ := io.ReadAll(io.LimitReader(rc, 64<<10))
				rc.Close()
				t.Logf("console:\n%s", b)
			}
		}
	})
	logs.waitFor(t, "web", "web got TERM")
	logs.waitFor(t, supervisor.EventProcess, "web stopped (status 0)")
	logs.waitFor(t, supervisor.EventProcess, "supervisor stopped")
}

func buildSupervisor(t *testing.T) string {
	dir := t.TempDir()
	// The instance's root (an unprivileged uid on the host) must read it.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "supervisor"), "github.com/slipway-dev/slipway/daemon/cmd/slipway-supervisor")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// testProject connects to incusd in a new project sharing the default
// project's images and profiles, deleted with its instances at the end.
func testProject(t *testing.T) incus.InstanceServer {
	srv, err := incus.ConnectIncusUnix("", nil)
	if err != nil {
		t.Fatalf("connect to incusd: %v", err)
	}
	project := "h-sup-" + randomHex()
	err = srv.CreateProject(api.ProjectsPost{Name: project, ProjectPut: api.ProjectPut{
		Config: map[string]string{"features.images": "false", "features.profiles": "false"},
	}})
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	p := srv.UseProject(project)
	t.Cleanup(func() {
		names, err := p.GetInstanceNames(api.InstanceTypeAny)
		if err != nil {
			t.Errorf("list instances: %v", err)
		}
		for _, n := range names {
			if op, err := p.UpdateInstanceState(n, api.InstanceStatePut{Action: "stop", Force: true, Timeout: -1}, ""); err == nil {
				_ = op.Wait()
			}
			if op, err := p.DeleteInstance(n); err != nil || op.Wait() != nil {
				t.Errorf("delete instance %s: %v", n, err)
			}
		}
		if err := srv.DeleteProject(project); err != nil {
			t.Errorf("delete project %s: %v", project, err)
		}
		srv.Disconnect()
	})
	return p
}

func launch(t *testing.T, srv incus.InstanceServer, name, dir string) {
	op, err := srv.CreateInstance(api.InstancesPost{
		Name:   name,
		Type:   api.InstanceTypeContainer,
		Source: api.InstanceSource{Type: "image", Alias: image},
		InstancePut: api.InstancePut{
			Config: map[string]string{"raw.lxc": "lxc.init.cmd = /.slipway/supervisor"},
			Devices: map[string]map[string]string{
				"sup": {"type": "disk", "source": dir, "path": "/.slipway", "readonly": "true"},
			},
		},
	})
	if err == nil {
		err = op.Wait()
	}
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	op, err = srv.UpdateInstanceState(name, api.InstanceStatePut{Action: "start", Timeout: -1}, "")
	if err == nil {
		err = op.Wait()
	}
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

func dialT(t *testing.T, ctx context.Context, pid int64) net.Conn {
	conn, err := supervisor.DialInstance(ctx, int(pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func deliver(t *testing.T, ctx context.Context, pid int) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := []struct {
		name, body string
		mode       int64
	}{
		{"run.sh", "#!/bin/sh\ntrap 'echo \"web got TERM\"; exit 0' TERM\necho \"web up on $PORT\"\nbusybox httpd -f -p 127.0.0.1:$PORT -h /app/www &\nwhile :; do sleep 1 & wait $!; done\n", 0o755},
		{"www/index.html", "hello from the supervisor\n", 0o644},
	}
	for _, f := range files {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	if err := supervisor.Deliver(ctx, dialT(t, ctx, int64(pid)), &buf); err != nil {
		t.Fatal(err)
	}
}

func execOut(t *testing.T, ctx context.Context, pid int64, argv ...string) string {
	var out bytes.Buffer
	code, err := supervisor.Exec(ctx, dialT(t, ctx, pid), supervisor.ExecRequest{Argv: argv}, &out)
	if err != nil || code != 0 {
		t.Fatalf("exec %q: exit %d, %v\n%s", argv, code, err, out.String())
	}
	return out.String()
}

// followed is a logs follow connection opened before the events it checks:
// the supervisor keeps logs in memory only, and they go with the instance.
type followed struct {
	mu   sync.Mutex
	recs []supervisor.Record
}

func followLogs(t *testing.T, ctx context.Context, pid int) *followed {
	f := &followed{}
	conn := dialT(t, ctx, int64(pid))
	go supervisor.Logs(ctx, conn, supervisor.Cursor{}, true, func(r supervisor.Record) error {
		f.mu.Lock()
		f.recs = append(f.recs, r)
		f.mu.Unlock()
		return nil
	})
	return f
}

func (f *followed) waitFor(t *testing.T, process, line string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f.mu.Lock()
		for _, r := range f.recs {
			if r.Process == process && r.Line == line {
				f.mu.Unlock()
				return
			}
		}
		f.mu.Unlock()
	}
	t.Fatalf("no %s line %q; the log:\n%s", process, line, f.dump())
}

func (f *followed) dump() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	for _, r := range f.recs {
		b.WriteString(r.Process + "/" + r.Stream + ": " + r.Line + "\n")
	}
	return b.String()
}

func randomHex() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

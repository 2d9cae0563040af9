package database

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// supervisorDir is the supervisor TestMain builds once for every test.
var supervisorDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "slipway-db-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "build", container.SupervisorBinary)
	build := exec.Command("go", "build", "-o", bin, "github.com/slipway-dev/slipway/daemon/cmd/slipway-supervisor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build the supervisor: %v\n%s", err, out)
		return 1
	}
	if supervisorDir, err = container.InstallSupervisor(bin, filepath.Join(dir, "supervisor")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// testEnv is one test's Incus project (slipway-test-db-<random>) and data
// directory, with a Manager over them; the project, with every instance
// and volume in it, is deleted when the test ends, pass or fail.
type testEnv struct {
	rt  *container.Incus
	m   *Manager
	dir string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	container.RequireIncus(t)
	requirePostgresImage(t)
	project := "slipway-test-db-" + container.RandomSuffix()
	rt, err := container.Connect(project, supervisorDir, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := rt.DeleteProject(ctx); err != nil {
			t.Errorf("delete test project %s: %v", project, err)
		}
		rt.Close()
	})
	dir := t.TempDir()
	m, err := New(rt, Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{rt: rt, m: m, dir: dir}
}

// requirePostgresImage skips without slipway/postgres, and fails under
// CI=true, where .ci/run builds it first.
func requirePostgresImage(t *testing.T) {
	t.Helper()
	srv, err := container.ConnectServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Disconnect()
	if _, _, err := srv.GetImageAlias(baseimage.PostgresAlias); err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("no %s: .ci/run builds it (slipway image build postgres)", baseimage.PostgresAlias)
	}
	t.Skipf("no %s here (slipway image build postgres makes it)", baseimage.PostgresAlias)
}

// provision provisions name and says how long it took.
func (e *testEnv) provision(t *testing.T, name string) (Database, Credentials) {
	t.Helper()
	db := Database{Name: name}
	start := time.Now()
	creds, err := e.m.Provision(context.Background(), db)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	t.Logf("provision %s: %.2f s", name, time.Since(start).Seconds())
	return db, creds
}

// app launches an app-like instance (slipway/postgres, for its psql)
// attached to db at launch, as a deploy would.
func (e *testEnv) app(t *testing.T, name string, db Database, creds Credentials) (string, Attachment) {
	t.Helper()
	att := e.m.Attach(db, creds)
	if err := e.rt.LaunchWithDevices(context.Background(), name, baseimage.PostgresAlias, map[string]string{"test": "app"}, att.Devices); err != nil {
		t.Fatalf("launch app: %v", err)
	}
	return name, att
}

// appSQL runs sql with psql in the app instance, as an unprivileged user
// (nobody), through DATABASE_URL alone, and returns its output.
func (e *testEnv) appSQL(t *testing.T, app, url, sql string) (string, error) {
	t.Helper()
	var out, errs strings.Builder
	code, err := e.rt.ExecStreams(context.Background(), app,
		[]string{"setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", url},
		nil, strings.NewReader(sql), &out, &errs)
	if err != nil {
		t.Fatal(err)
	}
	if code != 0 {
		return out.String(), fmt.Errorf("psql exited %d: %s", code, strings.TrimSpace(errs.String()))
	}
	return out.String(), nil
}

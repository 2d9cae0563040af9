package channels

import (
	"context"
	"errors"
	"github.com/slipway-dev/slipway/channels/applog"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/channels/runtime/runtimetest"
	"github.com/slipway-dev/slipway/store"
)

// fakeRuntime is the unit tests' in-memory runtime, shared with package web.
type fakeRuntime = runtimetest.Runtime

func newFakeRuntime() *fakeRuntime { return runtimetest.New() }

// testEngine is an engine over a real SQLite store, a real git repository
// and the real proxy, with the fake runtime.
type testEngine struct {
	*Engine
	t       *testing.T
	rt      *fakeRuntime
	px      *proxy.Proxy
	routes  *router.Table
	certDir string // with withHTTPS: where certificates are
	work    string
	store   *store.Store
}

const testManifest = "web: serve\nbuild: build-step\nhealth:\n  timeout: 2s\n"

func newTestEngine(t *testing.T, apps ...string) *testEngine {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("needs git")
		}
		t.Skip("needs git")
	}
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	rt := newFakeRuntime()
	t.Cleanup(rt.Close)
	px, routes := newRoutes(t, rt)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	appLogs, err := applog.Open(filepath.Join(dir, "applogs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { appLogs.Close() })
	e := NewEngine(Config{ReposDir: filepath.Join(dir, "repos"), BaseDomain: "test", MaxParallel: 2, DrainTimeout: time.Second, KeepImages: 2,
		AppLogs: appLogs}, st, rt, routes, logger)
	t.Cleanup(e.Close)
	te := &testEngine{Engine: e, t: t, rt: rt, px: px, routes: routes, work: filepath.Join(dir, "work"), store: st}
	ctx := context.Background()
	if _, err := e.CreateEnvironment(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	for _, app := range apps {
		if _, err := e.CreateApp(ctx, app); err != nil {
			t.Fatal(err)
		}
	}
	te.git("init", "-q", "-b", "main")
	return te
}

// newRoutes is the proxy the engine drives in tests, in process, reaching
// instances through rt.
func newRoutes(t *testing.T, rt Runtime) (*proxy.Proxy, *router.Table) {
	t.Helper()
	px := proxy.New(nil)
	routes, err := router.Open(px, rt.Dial, "")
	if err != nil {
		t.Fatal(err)
	}
	return px, routes
}

func (te *testEngine) git(args ...string) string {
	te.t.Helper()
	os.MkdirAll(te.work, 0o755)
	cmd := exec.Command("git", args...)
	cmd.Dir = te.work
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+te.work,
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.invalid", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.invalid")
	out, err := cmd.CombinedOutput()
	if err != nil {
		te.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes the manifest and a file, commits, pushes to app's bare
// repository and returns the commit.
func (te *testEngine) commit(app, manifest, content string) string {
	te.t.Helper()
	os.WriteFile(filepath.Join(te.work, ManifestFile), []byte(manifest), 0o644)
	os.WriteFile(filepath.Join(te.work, "index.html"), []byte(content), 0o644)
	te.git("add", "-A")
	te.git("commit", "-q", "-m", content)
	te.git("push", "-q", "-f", te.repoDir(app), "main")
	return te.git("rev-parse", "HEAD")
}

// serving returns what the proxy answers for host.
func (te *testEngine) serving(host string) (int, string) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "http://"+host+"/", nil)
	te.px.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (te *testEngine) wait(op store.Operation) store.Operation {
	te.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	final, err := te.Wait(ctx, op.ID)
	if err != nil {
		te.t.Fatalf("wait for op %d: %v", op.ID, err)
	}
	// And for its clean-up, which goes on after the operation ends.
	te.waitSettled(ctx, final.InstallationID)
	if final, err = te.store.Operation(ctx, op.ID); err != nil {
		te.t.Fatal(err)
	}
	return final
}

func (te *testEngine) log(id int64) string {
	lines, _ := te.store.Logs(context.Background(), id, 0, 0)
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

var errUnreachable = errors.New("incus is not reachable at /var/lib/incus/unix.socket: connection refused")

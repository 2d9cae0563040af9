package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/store"
)

// fakeRuntime runs each "instance" as a real HTTP server on loopback that
// answers with the instance's name, so health checks, swaps and drains run
// for real while no container is involved.
type fakeRuntime struct {
	mu         sync.Mutex
	instances  map[string]*httptest.Server
	stopped    map[string]bool
	failExec   func(cmd []string) int // exit code for a command; nil: 0
	blockExec  chan struct{}          // when set, Exec of build steps waits on it or ctx
	launchErr  error
	lateErr    error // when set, Launch makes the instance (it boots) and then fails
	launches   []string
	images     int
	published  map[string]bool // fingerprints of images that exist
	hang       chan struct{}   // when set, new instances answer only once it is closed
	holdDelete chan struct{}   // when set, Delete waits until it is closed
	deleteErr  error
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{instances: map[string]*httptest.Server{}, stopped: map[string]bool{}}
}

func (f *fakeRuntime) Launch(ctx context.Context, name, image string, labels map[string]string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.launchErr != nil {
		return f.launchErr
	}
	if len(image) == 64 && !f.published[image] {
		return fmt.Errorf("image %s not found", image)
	}
	f.launches = append(f.launches, name+" from "+image)
	hang := f.hang
	f.instances[name] = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, name)
	}))
	if f.lateErr != nil {
		// Like the Incus runtime, which deletes what a failed launch made,
		// in the background.
		time.AfterFunc(100*time.Millisecond, func() { f.Delete(context.Background(), name) })
	}
	return f.lateErr
}

func (f *fakeRuntime) Booted(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.launchErr
}

func (f *fakeRuntime) Exec(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, out io.Writer) (int, error) {
	if stdin != nil {
		io.Copy(io.Discard, stdin)
	}
	f.mu.Lock()
	block, fail := f.blockExec, f.failExec
	f.mu.Unlock()
	if block != nil && strings.Contains(strings.Join(cmd, " "), "build-step") {
		select {
		case <-block:
		case <-ctx.Done():
			return -1, ctx.Err()
		}
	}
	fmt.Fprintf(out, "ran %s\n", cmd[len(cmd)-1])
	if fail != nil {
		return fail(cmd), nil
	}
	return 0, nil
}

func (f *fakeRuntime) StartService(ctx context.Context, name, command string, env map[string]string, tree io.Reader) error {
	if tree != nil {
		io.Copy(io.Discard, tree)
	}
	return nil
}

func (f *fakeRuntime) Dial(ctx context.Context, name string, port int) (net.Conn, error) {
	f.mu.Lock()
	srv, ok := f.instances[name]
	stopped := f.stopped[name]
	f.mu.Unlock()
	if !ok || stopped {
		return nil, fmt.Errorf("instance %s is not running", name)
	}
	var d net.Dialer
	return d.DialContext(ctx, "tcp", srv.Listener.Addr().String())
}

func (f *fakeRuntime) Snapshot(ctx context.Context, name, snapshot string) error { return nil }

// PublishSnapshot makes a fake image: a fingerprint that Launch accepts.
func (f *fakeRuntime) PublishSnapshot(ctx context.Context, name, snapshot string, properties map[string]string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images++
	fp := fmt.Sprintf("%064x", f.images)
	if f.published == nil {
		f.published = map[string]bool{}
	}
	f.published[fp] = true
	return fp, nil
}

func (f *fakeRuntime) DeleteImage(ctx context.Context, fingerprint string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.published, fingerprint)
	return nil
}

func (f *fakeRuntime) Start(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.stopped, name)
	return nil
}

func (f *fakeRuntime) Stop(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped[name] = true
	return nil
}

func (f *fakeRuntime) Delete(ctx context.Context, name string) error {
	f.mu.Lock()
	hold, err := f.holdDelete, f.deleteErr
	f.mu.Unlock()
	if hold != nil {
		<-hold
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if srv, ok := f.instances[name]; ok {
		srv.CloseClientConnections()
		srv.Close()
		delete(f.instances, name)
	}
	return nil
}

func (f *fakeRuntime) List(ctx context.Context) ([]Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Instance
	for name := range f.instances {
		out = append(out, Instance{Name: name, Labels: map[string]string{LabelInstallation: "1"}, Running: !f.stopped[name]})
	}
	return out, nil
}

func (f *fakeRuntime) running() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for name := range f.instances {
		if !f.stopped[name] {
			out = append(out, name)
		}
	}
	return out
}

// testEngine is an engine over a real SQLite store, a real git repository
// and the real proxy, with the fake runtime.
type testEngine struct {
	*Engine
	t     *testing.T
	rt    *fakeRuntime
	px    *proxy.Proxy
	work  string
	store *store.Store
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
	px := proxy.New(nil)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := NewEngine(Config{ReposDir: filepath.Join(dir, "repos"), BaseDomain: "test", MaxParallel: 2, DrainTimeout: time.Second, KeepImages: 2}, st, rt, px, logger)
	t.Cleanup(e.Close)
	te := &testEngine{Engine: e, t: t, rt: rt, px: px, work: filepath.Join(dir, "work"), store: st}
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

package web

import (
	"bufio"
	"context"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/proxy"
	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/channels/runtime/runtimetest"
	"github.com/slipway-dev/slipway/store"
)

// site is the web page over real HTTP, with a real store and engine.
type site struct {
	t      *testing.T
	store  *store.Store
	engine *channels.Engine
	rt     *runtimetest.Runtime
	repos  string
	url    string
	client *http.Client
}

func newSite(t *testing.T, cfg Config) *site {
	t.Helper()
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "slipway.db"))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	repos := filepath.Join(dir, "repos")
	rt := runtimetest.New()
	t.Cleanup(rt.Close)
	engine := channels.NewEngine(channels.Config{ReposDir: repos, BaseDomain: "localhost", DrainTimeout: time.Second},
		st, rt, router.New(proxy.New(nil), rt.Dial), logger)
	if cfg.SSHAddr == "" {
		cfg.SSHAddr = "127.0.0.1:2222"
	}
	srv := httptest.NewServer(New(cfg, st, engine, logger))
	t.Cleanup(func() {
		srv.Close()
		engine.Close()
		st.Close()
	})
	return &site{t: t, store: st, engine: engine, rt: rt, repos: repos, url: srv.URL, client: &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// user adds a user.
func (s *site) user(name string, admin bool) store.User {
	s.t.Helper()
	u, err := s.store.CreateUser(context.Background(), name, admin)
	if err != nil {
		s.t.Fatal(err)
	}
	return u
}

// loginLink makes the token `ssh ... login` would print.
func (s *site) loginLink(u store.User) string {
	s.t.Helper()
	tok := store.NewSecret()
	if err := s.store.CreateLoginToken(context.Background(), u.ID, "", tok, 5*time.Minute); err != nil {
		s.t.Fatal(err)
	}
	return "/login/" + tok
}

// browser is one signed-in user agent.
type browser struct {
	cookie string
	csrf   string
}

func (s *site) signIn(u store.User) browser {
	s.t.Helper()
	resp, body := s.do("GET", s.loginLink(u), browser{}, nil)
	if resp.StatusCode != http.StatusSeeOther {
		s.t.Fatalf("sign in: %d\n%s", resp.StatusCode, body)
	}
	var b browser
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie {
			b.cookie = c.Value
		}
	}
	ws, err := s.store.WebSessionByID(context.Background(), b.cookie)
	if err != nil {
		s.t.Fatalf("session after sign in: %v", err)
	}
	b.csrf = ws.CSRFToken
	return b
}

// do sends a request as browser b; a non-nil form is POSTed.
func (s *site) do(method, path string, b browser, form url.Values) (*http.Response, string) {
	s.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, s.url+path, body)
	if err != nil {
		s.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if b.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.cookie})
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp, string(data)
}

const testManifest = "web: serve\nhealth:\n  path: /\n  timeout: 2s\n"

// installHello creates app hello with two commits on main, installs it in
// production and waits for its first deploy. It returns the commits, oldest first.
func (s *site) installHello() []string {
	s.t.Helper()
	ctx := context.Background()
	if _, err := s.engine.CreateApp(ctx, "hello"); err != nil {
		s.t.Fatal(err)
	}
	if _, err := s.engine.CreateEnvironment(ctx, "production"); err != nil {
		s.t.Fatal(err)
	}
	work := s.t.TempDir()
	git := func(args ...string) string {
		s.t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "HOME="+work, "GIT_CONFIG_NOSYSTEM=1",
			"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.invalid",
			"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.invalid")
		out, err := cmd.CombinedOutput()
		if err != nil {
			s.t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	var commits []string
	for _, v := range []string{"one", "two"} {
		os.WriteFile(filepath.Join(work, "slipway.yml"), []byte(testManifest), 0o644)
		os.WriteFile(filepath.Join(work, "index.html"), []byte("version "+v+"\n"), 0o644)
		git("add", "-A")
		git("commit", "-q", "-m", "version "+v)
		commits = append(commits, git("rev-parse", "HEAD"))
	}
	git("push", "-q", filepath.Join(s.repos, "hello.git"), "main")
	_, op, err := s.engine.Install(ctx, "hello", "production", "main", "", "admin")
	if err != nil || op == nil {
		s.t.Fatalf("install: %v %v", op, err)
	}
	s.wait(op.ID, store.StatusSucceeded)
	return commits
}

func (s *site) wait(opID int64, want string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	op, err := s.engine.Wait(ctx, opID)
	if err != nil || op.Status != want {
		s.t.Fatalf("operation %d: %s (%s) %v, want %s", opID, op.Status, op.Reason, err, want)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	id, event, data string
}

// readEvents reads events from an event stream until a "status" event or the end.
func readEvents(t *testing.T, body io.Reader) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if ev.data != "" || ev.event != "" {
				out = append(out, ev)
				if ev.event == "status" {
					return out
				}
			}
			ev = sseEvent{}
			continue
		}
		field, value, _ := strings.Cut(line, ": ")
		switch field {
		case "id":
			ev.id = value
		case "event":
			ev.event = value
		case "data":
			ev.data = value
		}
	}
	return out
}

// env adds an environment.
func (s *site) env(name string) {
	s.t.Helper()
	if _, err := s.store.CreateEnvironment(context.Background(), name); err != nil {
		s.t.Fatal(err)
	}
}

// grant gives a user a role in an environment.
func (s *site) grant(user, env, role string) {
	s.t.Helper()
	if err := s.store.SetGrant(context.Background(), user, env, role); err != nil {
		s.t.Fatalf("grant %s %s %s: %v", user, env, role, err)
	}
}

// opAt records an operation queued at the given time that ran two seconds
// and ended with status (and reason). Nothing else may use the store's clock
// meanwhile.
func (s *site) opAt(at time.Time, op store.Operation, status, reason string) store.Operation {
	s.t.Helper()
	ctx := context.Background()
	defer s.store.SetClock(time.Now)
	s.store.SetClock(func() time.Time { return at })
	op, err := s.store.CreateOperation(ctx, op)
	if err != nil {
		s.t.Fatal(err)
	}
	s.store.SetClock(func() time.Time { return at.Add(time.Second) })
	s.store.StartOperation(ctx, op.ID)
	s.store.SetClock(func() time.Time { return at.Add(3 * time.Second) })
	if err := s.store.FinishOperation(ctx, op.ID, status, reason); err != nil {
		s.t.Fatal(err)
	}
	return op
}

var listedOp = regexp.MustCompile(`<tr>\s*<td><a href="/operations/(\d+)">`)

// listedOps are the operations a list page shows, in its order.
func listedOps(body string) []int64 {
	var out []int64
	for _, m := range listedOp.FindAllStringSubmatch(body, -1) {
		id, _ := strconv.ParseInt(m[1], 10, 64)
		out = append(out, id)
	}
	return out
}

// link returns the target of the first link with the given rel or text, unescaped.
func link(body, marker string) string {
	re := regexp.MustCompile(`<a href="([^"]*)"[^>]*>` + regexp.QuoteMeta(marker))
	if m := re.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

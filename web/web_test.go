package web

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func TestSignInLinkWorksOnceAndExpires(t *testing.T) {
	s := newSite(t, Config{BaseURL: "http://127.0.0.1:8080"})
	admin := s.user("admin", true)
	link := s.loginLink(admin)

	resp, body := s.do("GET", link, browser{}, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("first use: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "slipway_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/" || cookie.Secure {
		t.Fatalf("session cookie: %+v", cookie)
	}
	if resp, body := s.do("GET", "/", browser{cookie: cookie.Value}, nil); resp.StatusCode != 200 || !strings.Contains(body, "signed in as <strong>admin</strong>") {
		t.Fatalf("front page after sign in: %d\n%s", resp.StatusCode, body)
	}

	resp, body = s.do("GET", link, browser{}, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "used up or expired") || !strings.Contains(body, "ssh -p 2222 git@127.0.0.1 login") {
		t.Fatalf("second use: %d\n%s", resp.StatusCode, body)
	}
	if len(resp.Cookies()) != 0 {
		t.Fatalf("second use set cookies: %v", resp.Cookies())
	}

	late := s.loginLink(admin)
	s.store.SetClock(func() time.Time { return time.Now().Add(5*time.Minute + time.Second) })
	if resp, body := s.do("GET", late, browser{}, nil); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "used up or expired") {
		t.Fatalf("expired link: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := s.do("GET", "/login/made-up", browser{}, nil); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("made-up link: %d", resp.StatusCode)
	}
}

func TestSessionCookieIsSecureBehindHTTPS(t *testing.T) {
	s := newSite(t, Config{BaseURL: "https://deploy.example.com", SessionTTL: time.Hour})
	resp, _ := s.do("GET", s.loginLink(s.user("admin", true)), browser{}, nil)
	cookies := resp.Cookies()
	if len(cookies) != 1 || !cookies[0].Secure || time.Until(cookies[0].Expires) > time.Hour+time.Minute {
		t.Fatalf("cookies: %+v", cookies)
	}
}

func TestPagesNeedASession(t *testing.T) {
	s := newSite(t, Config{})
	for _, b := range []browser{{}, {cookie: "made-up"}} {
		for _, path := range []string{"/", "/installations/hello/production", "/operations/1", "/operations/1/events", "/nowhere",
			"/activity", "/environments/production/reports", "/environments/production/reports/2026-W45.csv", "/installations/hello/production/backups"} {
			resp, body := s.do("GET", path, b, nil)
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "ssh -p 2222 git@127.0.0.1 login") {
				t.Errorf("GET %s with cookie %q: %d\n%s", path, b.cookie, resp.StatusCode, body)
			}
		}
		resp, _ := s.do("POST", "/installations/hello/production/pin", b, url.Values{"commit": {"abc"}})
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("POST pin with cookie %q: %d", b.cookie, resp.StatusCode)
		}
	}
	resp, _ := s.do("GET", "/", browser{}, nil)
	for header, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	} {
		if got := resp.Header.Get(header); got != want {
			t.Errorf("%s: %q, want %q", header, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy: %q", csp)
	}
	if resp, _ := s.do("GET", "/static/style.css", browser{}, nil); resp.StatusCode != 200 {
		t.Errorf("stylesheet without a session: %d", resp.StatusCode)
	}
	for _, dir := range []string{"/static/", "/static/./", "/static/x/.."} {
		if resp, _ := s.do("GET", dir, browser{}, nil); resp.StatusCode != 404 && resp.StatusCode/100 != 3 {
			t.Errorf("GET %s: %d, want no listing", dir, resp.StatusCode)
		} else if body, _ := io.ReadAll(resp.Body); strings.Contains(string(body), "style.css") {
			t.Errorf("GET %s lists the files:\n%s", dir, body)
		}
	}
}

func TestFormsNeedTheirToken(t *testing.T) {
	s := newSite(t, Config{})
	commits := s.installHello()
	b := s.signIn(s.user("admin", true))
	ctx := context.Background()
	before, _ := s.store.Operations(ctx, store.OperationFilter{})

	for _, token := range []string{"", "wrong", b.csrf[:len(b.csrf)-1]} {
		form := url.Values{"commit": {commits[0]}}
		if token != "" {
			form.Set("csrf", token)
		}
		resp, body := s.do("POST", "/installations/hello/production/pin", b, form)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Missing or wrong form token; reload the page") {
			t.Errorf("pin with token %q: %d\n%s", token, resp.StatusCode, body)
		}
		if resp, _ := s.do("POST", "/logout", b, url.Values{"csrf": {token}}); resp.StatusCode != http.StatusForbidden {
			t.Errorf("logout with token %q: %d", token, resp.StatusCode)
		}
	}
	after, _ := s.store.Operations(ctx, store.OperationFilter{})
	inst, _ := s.store.InstallationByName(ctx, "hello", "production")
	if len(after) != len(before) || inst.Channel() != "branch main" {
		t.Fatalf("refused forms changed something: %d operations (was %d), channel %s", len(after), len(before), inst.Channel())
	}

	// The right token signs out, and the session is gone.
	if resp, _ := s.do("POST", "/logout", b, url.Values{"csrf": {b.csrf}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %d", resp.StatusCode)
	}
	if resp, _ := s.do("GET", "/", b, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %d", resp.StatusCode)
	}
}

func TestUserWithoutAccessSeesNothing(t *testing.T) {
	s := newSite(t, Config{})
	s.installHello()
	ops, _ := s.store.Operations(context.Background(), store.OperationFilter{})
	b := s.signIn(s.user("guest", false))

	resp, body := s.do("GET", "/", b, nil)
	if resp.StatusCode != 200 || strings.Contains(body, "hello/production") {
		t.Fatalf("front page lists what the user may not see: %d\n%s", resp.StatusCode, body)
	}
	_, missing := s.do("GET", "/installations/nope/production", b, nil)
	resp, hidden := s.do("GET", "/installations/hello/production", b, nil)
	if resp.StatusCode != http.StatusNotFound || strings.ReplaceAll(hidden, "hello", "nope") != missing {
		t.Fatalf("hidden installation: %d\n%s\nunlike a missing one:\n%s", resp.StatusCode, hidden, missing)
	}
	for _, path := range []string{fmt.Sprintf("/operations/%d", ops[0].ID), fmt.Sprintf("/operations/%d/events", ops[0].ID)} {
		if resp, _ := s.do("GET", path, b, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	for _, path := range []string{"/installations/hello/production/pin", fmt.Sprintf("/operations/%d/cancel", ops[0].ID)} {
		if resp, _ := s.do("POST", path, b, url.Values{"csrf": {b.csrf}, "commit": {"main"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("POST %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestEventsStreamTheLogAndTheStatus(t *testing.T) {
	s := newSite(t, Config{})
	b := s.signIn(s.user("admin", true))
	ctx := context.Background()
	op, err := s.store.CreateOperation(ctx, store.Operation{Type: "deploy", App: "hello", Environment: "production", User: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	s.store.StartOperation(ctx, op.ID)
	s.store.AppendLogs(ctx, op.ID, "-----> one")
	s.store.AppendLogs(ctx, op.ID, "       two")
	go func() {
		time.Sleep(200 * time.Millisecond)
		s.store.AppendLogs(ctx, op.ID, "three <b>")
		s.store.FinishOperation(ctx, op.ID, store.StatusFailed, "build step exited with status 3")
	}()

	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/operations/%d/events", s.url, op.ID), nil)
	req.AddCookie(&http.Cookie{Name: sessionCookie, Value: b.cookie})
	resp, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	got := readEvents(t, resp.Body)
	want := []sseEvent{
		{id: "1", data: "-----> one"}, {id: "2", data: "       two"}, {id: "3", data: "three <b>"},
		{event: "reason", data: "build step exited with status 3"},
		{event: "finished"}, {event: "status", data: "failed"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %+v, want %+v", got, want)
	}
	for i := range want {
		if want[i].event == "finished" {
			if got[i].event != "finished" || !strings.Contains(got[i].data, " UTC, after ") {
				t.Errorf("event %d: %+v, want the finish time", i, got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	// A browser that reconnects resumes after the last line it got.
	req.Header.Set("Last-Event-ID", "2")
	resp2, err := s.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	got = readEvents(t, resp2.Body)
	if len(got) != 4 || got[0] != (sseEvent{id: "3", data: "three <b>"}) || got[3] != (sseEvent{event: "status", data: "failed"}) {
		t.Fatalf("resumed events: %+v", got)
	}
}

func TestPinAndTrackFromThePage(t *testing.T) {
	s := newSite(t, Config{})
	commits := s.installHello()
	b := s.signIn(s.user("admin", true))

	resp, body := s.do("GET", "/installations/hello/production", b, nil)
	for _, want := range []string{
		`value="` + commits[0] + `"`, `value="` + commits[1] + `"`,
		`<span class="badge served">serving</span>`,
		`<option value="main" selected>main</option>`,
		`name="csrf" value="` + b.csrf + `"`,
		`action="/installations/hello/production/pin"`, `action="/installations/hello/production/track"`,
	} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("installation page (%d) lacks %q:\n%s", resp.StatusCode, want, body)
		}
	}

	resp, body = s.do("POST", "/installations/hello/production/pin", b, url.Values{"csrf": {b.csrf}, "commit": {commits[0]}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/operations/") {
		t.Fatalf("pin: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var opID int64
	fmt.Sscanf(resp.Header.Get("Location"), "/operations/%d", &opID)
	s.wait(opID, store.StatusSucceeded)
	inst, _ := s.store.InstallationByName(context.Background(), "hello", "production")
	if inst.Channel() != "commit "+commits[0] || inst.Commit != commits[0] {
		t.Fatalf("after pin: %+v", inst)
	}
	resp, body = s.do("GET", resp.Header.Get("Location"), b, nil)
	for _, want := range []string{`id="status" class="status" data-status="succeeded"`, `href="/installations/hello/production"`, "now follows pinned commit"} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("operation page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, `id="cancel"`) || strings.Contains(body, "data-events") {
		t.Fatalf("a finished operation offers a cancel or a live log:\n%s", body)
	}
	resp, body = s.do("POST", fmt.Sprintf("/operations/%d/cancel", opID), b, url.Values{"csrf": {b.csrf}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "not queued or running") {
		t.Fatalf("cancel of a finished operation: %d\n%s", resp.StatusCode, body)
	}

	// Bad input comes back as one line on the page, with nothing changed.
	for _, tc := range []struct {
		action string
		form   url.Values
		status int
		want   string
	}{
		{"pin", url.Values{"commit": {"deadbeef"}}, 400, `hello has no commit, tag or branch &#34;deadbeef&#34;`},
		{"pin", url.Values{}, 400, "Choose a commit to serve"},
		{"track", url.Values{"branch": {"nope"}}, 400, `hello has no branch &#34;nope&#34;: push it first`},
		{"track", url.Values{"branch": {"../x"}}, 400, `&#34;../x&#34; is not a valid branch name`},
	} {
		tc.form.Set("csrf", b.csrf)
		resp, body := s.do("POST", "/installations/hello/production/"+tc.action, b, tc.form)
		if resp.StatusCode != tc.status || !strings.Contains(body, `<p class="error" role="alert">`) || !strings.Contains(body, tc.want) {
			t.Errorf("%s %v: %d, want %d and %q\n%s", tc.action, tc.form, resp.StatusCode, tc.status, tc.want, body)
		}
	}
	if resp, _ := s.do("POST", "/installations/hello/nowhere/pin", b, url.Values{"csrf": {b.csrf}, "commit": {commits[0]}}); resp.StatusCode != 404 {
		t.Errorf("pin of an unknown installation: %d", resp.StatusCode)
	}

	resp, _ = s.do("POST", "/installations/hello/production/track", b, url.Values{"csrf": {b.csrf}, "branch": {"main"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("track: %d", resp.StatusCode)
	}
	fmt.Sscanf(resp.Header.Get("Location"), "/operations/%d", &opID)
	s.wait(opID, store.StatusSucceeded)
	if inst, _ := s.store.InstallationByName(context.Background(), "hello", "production"); inst.Channel() != "branch main" || inst.Commit != commits[1] {
		t.Fatalf("after track: %+v", inst)
	}
}

func TestCancelARunningOperation(t *testing.T) {
	s := newSite(t, Config{})
	commits := s.installHello()
	b := s.signIn(s.user("admin", true))
	release := s.rt.HoldLaunches()
	defer release()

	resp, _ := s.do("POST", "/installations/hello/production/pin", b, url.Values{"csrf": {b.csrf}, "commit": {commits[0]}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("pin: %d", resp.StatusCode)
	}
	page := resp.Header.Get("Location")
	resp, body := s.do("GET", page, b, nil)
	for _, want := range []string{`id="cancel"`, `action="` + page + `/cancel"`, `data-events="` + page + `/events?after=`, `<script src="/static/operation.js" defer></script>`} {
		if !strings.Contains(body, want) {
			t.Fatalf("page of a running operation lacks %q:\n%s", want, body)
		}
	}
	resp, body = s.do("POST", page+"/cancel", b, url.Values{"csrf": {b.csrf}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("cancel: %d %q\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	var opID int64
	fmt.Sscanf(page, "/operations/%d", &opID)
	s.wait(opID, store.StatusCancelled)
	if inst, _ := s.store.InstallationByName(context.Background(), "hello", "production"); inst.Channel() != "branch main" || inst.Commit != commits[1] {
		t.Fatalf("a cancelled pin changed the installation: %+v", inst)
	}
	if _, body := s.do("GET", page, b, nil); !strings.Contains(body, `data-status="cancelled"`) || !strings.Contains(body, "cancelled by admin") {
		t.Fatalf("page of the cancelled operation:\n%s", body)
	}
}

func TestTheInstallationPageListsItsDomains(t *testing.T) {
	s := newSite(t, Config{})
	s.installHello()
	op, err := s.engine.AddDomain(context.Background(), "hello", "production", "www.hello.example", "admin")
	if err != nil {
		t.Fatal(err)
	}
	s.wait(op.ID, store.StatusSucceeded)
	b := s.signIn(s.user("admin", true))
	resp, body := s.do("GET", "/installations/hello/production", b, nil)
	for _, want := range []string{`<span class="host">hello.production.localhost</span>`, `<span class="host">www.hello.example</span>`, "HTTPS off"} {
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Fatalf("installation page (%d) lacks %q:\n%s", resp.StatusCode, want, body)
		}
	}
}

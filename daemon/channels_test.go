package daemon_test

import (
	"strings"
	"testing"
)

func TestPinTrackAndPushWhilePinned(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host := d.setupApp("news")
	w := d.newApp("news", "static")
	w.commitFile("slipway.yml", staticManifest, "manifest")
	v1 := w.commitFile("public/index.html", "version one\n", "v1")
	w.git("tag", "release-1")
	if out, code := w.push("deploy", "main", "--tags"); code != 0 {
		t.Fatalf("push v1 exited %d:\n%s", code, out)
	}
	v2 := w.commitFile("public/index.html", "version two\n", "v2")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push v2 exited %d:\n%s", code, out)
	}
	d.serves(host, "version two")

	// Roll back by pinning the tag: it resolves to v1's commit once.
	out := d.mustSSH("pin", "news/production", "release-1")
	if !strings.Contains(out, "now follows pinned commit "+v1[:12]) || !strings.Contains(out, "started from the image of commit "+v1[:12]) {
		t.Fatalf("pin output:\n%s", out)
	}
	d.serves(host, "version one")
	var st struct{ Channel, Commit string }
	d.statusJSON(&st, "news/production")
	if st.Channel != "commit "+v1 || st.Commit != v1 {
		t.Fatalf("status after pin: %+v", st)
	}

	// A push while pinned is stored, not deployed.
	v3 := w.commitFile("public/index.html", "version three\n", "v3")
	out, code := w.push("deploy", "main")
	if code != 0 || !strings.Contains(out, "nothing was deployed") {
		t.Fatalf("push while pinned: exit %d\n%s", code, out)
	}
	d.serves(host, "version one")

	var h []struct {
		ID               string
		Served, Deployed bool
	}
	d.sshJSON(&h, "history", "news/production", "--json")
	if len(h) < 3 || h[0].ID != v3 || h[0].Deployed || h[1].ID != v2 || !h[1].Deployed || h[2].ID != v1 || !h[2].Served {
		t.Fatalf("history while pinned: %+v", h)
	}

	// Track the branch again: its head (v3) is deployed.
	out = d.mustSSH("track", "news/production", "main")
	if !strings.Contains(out, "now follows branch main") {
		t.Fatalf("track output:\n%s", out)
	}
	d.serves(host, "version three")
	d.statusJSON(&st, "news/production")
	if st.Channel != "branch main" || st.Commit != v3 {
		t.Fatalf("status after track: %+v", st)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"pin", "news/production", "no-such-tag"}, `news has no commit, tag or branch "no-such-tag"`},
		{[]string{"track", "news/production", "nope"}, `news has no branch "nope"`},
		{[]string{"pin", "news/staging", v1}, "unknown installation news/staging"},
	} {
		if _, errOut, code := d.ssh(tc.args...); code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("ssh %v: exit %d, stderr %q, want %q", tc.args, code, errOut, tc.want)
		}
	}
	d.serves(host, "version three")
	if got := d.settledInstances(); len(got) != 1 {
		t.Fatalf("instances at the end: %v", got)
	}
}

func TestForcePushAndBranchDeleteOfTrackedBranch(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	host, w := d.deployed("docs", "original\n")
	kept := w.head()
	w.commitFile("public/index.html", "second\n", "second")
	if out, code := w.push("deploy", "main"); code != 0 {
		t.Fatalf("push: %d\n%s", code, out)
	}
	// Rewrite history: drop "second", commit something else instead.
	w.git("reset", "-q", "--hard", kept)
	rewritten := w.commitFile("public/index.html", "rewritten\n", "rewritten")
	out, code := w.push("--force", "deploy", "main")
	if code == 0 || !strings.Contains(out, "refusing to force-push (rewrite) branch main: docs/production follows it") {
		t.Fatalf("force push: exit %d\n%s", code, out)
	}
	d.serves(host, "second")
	out, code = w.push("--force", "-o", "force-deploy", "deploy", "main")
	if code != 0 || !strings.Contains(out, "now serves commit "+rewritten[:12]) {
		t.Fatalf("force push with force-deploy: exit %d\n%s", code, out)
	}
	d.serves(host, "rewritten")

	out, code = w.push("deploy", ":main")
	if code == 0 || !strings.Contains(out, "refusing to delete branch main") {
		t.Fatalf("branch delete: exit %d\n%s", code, out)
	}
	// Another branch nobody follows may be pushed and deleted freely.
	w.git("branch", "scratch")
	if out, code := w.push("deploy", "scratch"); code != 0 {
		t.Fatalf("push scratch: %d\n%s", code, out)
	}
	if out, code := w.push("deploy", ":scratch"); code != 0 {
		t.Fatalf("delete scratch: %d\n%s", code, out)
	}
	d.serves(host, "rewritten")
}

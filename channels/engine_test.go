package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/store"
)

func (te *testEngine) install(app string) store.Installation {
	te.t.Helper()
	inst, _, err := te.Install(context.Background(), app, "prod", "main", "", "alice")
	if err != nil {
		te.t.Fatal(err)
	}
	return inst
}

func (te *testEngine) push(app, commit string) store.Operation {
	te.t.Helper()
	ops, _, err := te.Pushed(context.Background(), app, "alice", []RefUpdate{{Name: "refs/heads/main", Old: zeroID, New: commit}}, nil)
	if err != nil || len(ops) != 1 {
		te.t.Fatalf("pushed: %v %v", ops, err)
	}
	return ops[0]
}

func TestDeploySwapsAndRollsBackFromAnImage(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	if code, _ := te.serving(inst.Host); code != 503 {
		t.Fatalf("before any deploy: %d, want 503", code)
	}
	c1 := te.commit("web", testManifest, "one")
	op := te.wait(te.push("web", c1))
	if op.Status != store.StatusSucceeded {
		t.Fatalf("deploy: %+v\n%s", op, te.log(op.ID))
	}
	if code, body := te.serving(inst.Host); code != 200 || body != "web-prod-1" {
		t.Fatalf("after deploy: %d %q", code, body)
	}
	c2 := te.commit("web", testManifest, "two")
	op = te.wait(te.push("web", c2))
	if code, body := te.serving(inst.Host); op.Status != store.StatusSucceeded || code != 200 || body != "web-prod-2" {
		t.Fatalf("after second deploy: %s %d %q", op.Status, code, body)
	}
	if got := te.rt.Running(); len(got) != 1 || got[0] != "web-prod-2" {
		t.Fatalf("running after second deploy: %v", got)
	}
	kept, _ := te.store.KeptImages(context.Background(), inst.ID)
	if len(kept) != 2 || kept[1].Commit != c1 || kept[0].Commit != c2 {
		t.Fatalf("kept images: %+v", kept)
	}
	// Pinning the first commit launches its image: no tree, no build.
	op, err := te.Pin(context.Background(), "web", "prod", c1[:8], "alice")
	if err != nil {
		t.Fatal(err)
	}
	op = te.wait(op)
	if code, body := te.serving(inst.Host); op.Status != store.StatusSucceeded || body != "web-prod-3" || code != 200 {
		t.Fatalf("after pin: %s %d %q\n%s", op.Status, code, body, te.log(op.ID))
	}
	if last := te.rt.Launches[len(te.rt.Launches)-1]; last != "web-prod-3 from "+kept[1].Fingerprint || strings.Contains(te.log(op.ID), "build-step") {
		t.Fatalf("pin to a kept commit: launch %q\n%s", last, te.log(op.ID))
	}
	now, _ := te.store.InstallationByID(context.Background(), inst.ID)
	if now.Following.Kind != store.ChannelCommit || now.Following.Ref != c1 || now.Commit != c1 {
		t.Fatalf("installation after pin: %+v", now)
	}
	// A push while pinned deploys nothing.
	c3 := te.commit("web", testManifest, "three")
	ops, _, _ := te.Pushed(context.Background(), "web", "alice", []RefUpdate{{Name: "refs/heads/main", Old: c2, New: c3}}, nil)
	if len(ops) != 0 {
		t.Fatalf("push while pinned queued %v", ops)
	}
}

func TestFailedBuildRollsBack(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "good")))
	te.rt.FailExec = func(cmd []string) int {
		if strings.Contains(strings.Join(cmd, " "), "build-step") {
			return 2
		}
		return 0
	}
	op := te.wait(te.push("web", te.commit("web", testManifest, "bad")))
	if op.Status != store.StatusFailed || !strings.Contains(op.Reason, `build step "build-step" exited with status 2`) {
		t.Fatalf("failed build: %+v", op)
	}
	log := te.log(op.ID)
	if !strings.Contains(log, "Deleted new instance web-prod-2") || !strings.Contains(log, "Rollback succeeded") {
		t.Fatalf("log:\n%s", log)
	}
	if _, body := te.serving(inst.Host); body != "web-prod-1" {
		t.Fatalf("serving %q after a failed build", body)
	}
}

func TestIncusUnreachableFailsClearly(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "good")))
	te.rt.LaunchErr = errUnreachable
	op := te.wait(te.push("web", te.commit("web", testManifest, "next")))
	if op.Status != store.StatusFailed || op.Reason != "create instance: "+errUnreachable.Error() {
		t.Fatalf("op: %+v", op)
	}
	if _, body := te.serving(inst.Host); body != "web-prod-1" {
		t.Fatalf("serving %q while incus is away", body)
	}
}

func TestCancelRunningAndQueued(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "good")))
	te.rt.BlockExec = make(chan struct{})
	running := te.push("web", te.commit("web", testManifest, "slow"))
	queued := te.push("web", te.commit("web", testManifest, "after"))
	te.untilBuilding(running.ID)
	if q, _ := te.store.Operation(context.Background(), queued.ID); q.Status != store.StatusQueued {
		t.Fatalf("second op on the same installation is %s, want queued", q.Status)
	}
	if err := te.Cancel(queued.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	if err := te.Cancel(running.ID, "bob"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{running.ID, queued.ID} {
		op := te.wait(store.Operation{ID: id})
		if op.Status != store.StatusCancelled || op.Reason != "cancelled by bob" {
			t.Fatalf("op %d: %+v\n%s", id, op, te.log(id))
		}
	}
	if !strings.Contains(te.log(running.ID), "Rollback succeeded") {
		t.Fatalf("cancelled op log:\n%s", te.log(running.ID))
	}
	if _, body := te.serving(inst.Host); body != "web-prod-1" {
		t.Fatalf("serving %q after cancel", body)
	}
	if err := te.Cancel(running.ID, "bob"); err != ErrNotRunning {
		t.Fatalf("second cancel: %v", err)
	}
}

func TestHangingHealthCheckTimesOut(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "good")))
	te.rt.Hang = make(chan struct{})
	defer close(te.rt.Hang)
	start := time.Now()
	op := te.wait(te.push("web", te.commit("web", testManifest, "hangs")))
	if op.Status != store.StatusFailed || !strings.Contains(op.Reason, "app never became healthy: GET / did not answer 2xx/3xx within 2s (last: no answer within") {
		t.Fatalf("op: %+v", op)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a hanging app held the deploy for %s", took)
	}
	if _, body := te.serving(inst.Host); body != "web-prod-1" {
		t.Fatalf("serving %q", body)
	}
}

// An instance used before Incus ended its launch (a pushed app delivered to
// the instance started while the push arrived, a kept image health-checked as
// it boots) must not serve if that launch then fails.
func TestLaunchFailingAfterBootNeverServes(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	const together = "web: serve\nhealth:\n  timeout: 2s\n" // no build steps: tree and web in one go
	c1 := te.commit("web", together, "one")
	if op := te.wait(te.push("web", c1)); op.Status != store.StatusSucceeded {
		t.Fatalf("first deploy: %+v\n%s", op, te.log(op.ID))
	}
	c2 := te.commit("web", together, "two")
	if op := te.wait(te.push("web", c2)); op.Status != store.StatusSucceeded {
		t.Fatalf("second deploy: %+v\n%s", op, te.log(op.ID))
	}
	_, before := te.serving(inst.Host)

	te.rt.Mu.Lock()
	te.rt.LateErr = errors.New("incus: start bookkeeping failed")
	te.rt.Mu.Unlock()

	// A push whose instance was started ahead.
	c3 := te.commit("web", together, "three")
	release := te.Prewarm(context.Background(), "web", []string{"main"}, func(string) bool { return true })
	op := te.wait(te.push("web", c3))
	release()
	if op.Status != store.StatusFailed || !strings.Contains(te.log(op.ID), "start bookkeeping failed") {
		t.Fatalf("push with a launch failing late: %s\n%s", op.Status, te.log(op.ID))
	}
	if _, now := te.serving(inst.Host); now != before {
		t.Fatalf("serving %q after the failed push, want %q", now, before)
	}

	// A rollback to a kept image.
	op, err := te.Pin(context.Background(), "web", "prod", c1, "alice")
	if err != nil {
		t.Fatal(err)
	}
	op = te.wait(op)
	if op.Status != store.StatusFailed || !strings.Contains(te.log(op.ID), "start bookkeeping failed") {
		t.Fatalf("rollback with a launch failing late: %s\n%s", op.Status, te.log(op.ID))
	}
	if _, now := te.serving(inst.Host); now != before {
		t.Fatalf("serving %q after the failed rollback, want %q", now, before)
	}
	deadline := time.Now().Add(2 * time.Second)
	for got := te.rt.Running(); len(got) != 1 || got[0] != before; got = te.rt.Running() {
		if time.Now().After(deadline) {
			t.Fatalf("running: %v, want only %s", got, before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Clean-up after a swap waits while other deploys are under way, and not
// longer than that.
func TestCleanupYieldsToUrgentWork(t *testing.T) {
	var u urgency
	u.waitIdle(context.Background()) // nothing urgent: at once
	end := u.begin()
	var ended atomic.Bool
	afterEnd := make(chan bool, 1)
	go func() {
		u.waitIdle(context.Background())
		afterEnd <- ended.Load()
	}()
	select {
	case <-afterEnd:
		t.Fatal("clean-up went ahead while urgent work ran")
	case <-time.After(100 * time.Millisecond):
	}
	ended.Store(true)
	end()
	end() // twice is once
	select {
	case ok := <-afterEnd:
		if !ok {
			t.Error("clean-up went ahead before the urgent work ended")
		}
	case <-time.After(time.Second):
		t.Fatal("clean-up still waiting after the urgent work ended")
	}
	if u.n != 0 {
		t.Errorf("urgent count %d after end", u.n)
	}
}

// untilBuilding waits until operation id runs its build step.
func (te *testEngine) untilBuilding(id int64) {
	te.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		op, _ := te.store.Operation(context.Background(), id)
		if op.Status == store.StatusRunning && strings.Contains(te.log(id), "build: build-step") {
			return
		}
		if time.Now().After(deadline) {
			te.t.Fatalf("never reached the build: %+v", op)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRestartQueuedBehindADeployRestartsTheNewCommit(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "old")))
	te.rt.BlockExec = make(chan struct{})
	c2 := te.commit("web", testManifest, "new")
	deploy := te.push("web", c2)
	te.untilBuilding(deploy.ID)
	restart, err := te.Restart(context.Background(), "web", "prod", "bob")
	if err != nil {
		t.Fatal(err)
	}
	close(te.rt.BlockExec)
	if op := te.wait(deploy); op.Status != store.StatusSucceeded {
		t.Fatalf("deploy: %+v\n%s", op, te.log(deploy.ID))
	}
	op := te.wait(restart)
	if op.Status != store.StatusSucceeded || op.Commit != c2 {
		t.Fatalf("restart: %+v, want commit %s\n%s", op, c2, te.log(restart.ID))
	}
	now, _ := te.store.InstallationByID(context.Background(), inst.ID)
	if now.Commit != c2 || now.Instance != fmt.Sprintf("web-prod-%d", restart.ID) {
		t.Fatalf("after the restart the installation serves %s from %s, want %s", now.Commit, now.Instance, c2)
	}
}

func TestTrackQueuedBehindADeployTakesTheHeadWhenItStarts(t *testing.T) {
	te := newTestEngine(t, "web")
	te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	te.rt.BlockExec = make(chan struct{})
	deploy := te.push("web", te.commit("web", testManifest, "two"))
	te.untilBuilding(deploy.ID)
	sw, err := te.Track(context.Background(), "web", "prod", "main", "bob")
	if err != nil {
		t.Fatal(err)
	}
	c3 := te.commit("web", testManifest, "three") // stored while the switch waits
	close(te.rt.BlockExec)
	if op := te.wait(sw); op.Status != store.StatusSucceeded || op.Commit != c3 {
		t.Fatalf("switch: %+v, want commit %s\n%s", op, c3, te.log(sw.ID))
	}
}

func TestMaintenanceMessageIsChecked(t *testing.T) {
	te := newTestEngine(t, "web")
	te.install("web")
	for _, m := range []string{strings.Repeat("x", 501), "line one\nline two", "bell\a", "\xff\xfe"} {
		if _, err := te.Maintenance(context.Background(), "web", "prod", true, m, "alice"); !errors.Is(err, ErrInvalidName) {
			t.Errorf("message %q: %v", m, err)
		}
	}
	op, err := te.Maintenance(context.Background(), "web", "prod", true, "Back at noon — sorry!", "alice")
	if err != nil || te.wait(op).Status != store.StatusSucceeded {
		t.Fatalf("a good message: %v", err)
	}
}

func TestConfigValueWithNULIsRefused(t *testing.T) {
	te := newTestEngine(t, "web")
	te.install("web")
	_, err := te.Configure(context.Background(), "web", "prod", map[string]string{"A": "x\x00y"}, false, nil, "alice")
	if !errors.Is(err, ErrInvalidName) || !strings.Contains(err.Error(), "NUL") {
		t.Fatalf("NUL in a value: %v", err)
	}
}

func TestDeleteAppAndEnvironmentOnlyWhenNothingIsInstalled(t *testing.T) {
	te := newTestEngine(t, "web")
	ctx := context.Background()
	te.install("web")
	if err := te.DeleteApp(ctx, "web"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "deprovision web/prod first") {
		t.Fatalf("delete an installed app: %v", err)
	}
	if err := te.DeleteEnvironment(ctx, "prod"); !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "holds web/prod") {
		t.Fatalf("delete an environment with an installation: %v", err)
	}
	op, _ := te.Deprovision(ctx, "web", "prod", "alice")
	te.wait(op)
	if err := te.DeleteApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(te.repoDir("web")); !os.IsNotExist(err) {
		t.Fatalf("the repository is still there: %v", err)
	}
	if err := te.DeleteEnvironment(ctx, "prod"); err != nil {
		t.Fatal(err)
	}
	if ops, _ := te.store.Operations(ctx, store.OperationFilter{Environment: "prod"}); len(ops) == 0 {
		t.Fatal("the environment's operations went with it")
	}
	if err := te.DeleteApp(ctx, "web"); !errors.Is(err, ErrUnknownApp) {
		t.Fatalf("delete twice: %v", err)
	}
	// The name can be used again.
	if _, err := te.CreateApp(ctx, "web"); err != nil {
		t.Fatal(err)
	}
}

// TestCrashAroundTheSwapLeavesAConsistentInstallation stops an engine dead at
// each side of the swap's store write and recovers with a new one over the
// same store and runtime, as a restarted daemon does.
func TestCrashAroundTheSwapLeavesAConsistentInstallation(t *testing.T) {
	for _, point := range []string{"before the swap is recorded", "after the swap is recorded"} {
		t.Run(point, func(t *testing.T) {
			te := newTestEngine(t, "web")
			inst := te.install("web")
			c1 := te.commit("web", testManifest, "one")
			te.wait(te.push("web", c1))
			c2 := te.commit("web", testManifest, "two")
			te.wait(te.push("web", c2))
			reached, release := make(chan struct{}), make(chan struct{})
			t.Cleanup(func() { close(release) })
			te.crashAt = func(p string) {
				if p == point {
					close(reached)
					<-release // the engine is "dead" from here on
				}
			}
			pin, err := te.Pin(context.Background(), "web", "prod", c1, "alice")
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-reached:
			case <-time.After(10 * time.Second):
				t.Fatalf("the switch never reached %q:\n%s", point, te.log(pin.ID))
			}

			px, routes := newRoutes(t, te.rt)
			again := NewEngine(te.cfg, te.store, te.rt, routes, slog.New(slog.NewTextHandler(io.Discard, nil)))
			t.Cleanup(again.Close)
			if err := again.Recover(context.Background()); err != nil {
				t.Fatal(err)
			}
			now, _ := te.store.InstallationByID(context.Background(), inst.ID)
			want := struct{ kind, ref, commit, instance string }{store.ChannelBranch, "main", c2, "web-prod-2"}
			if point == "after the swap is recorded" {
				want = struct{ kind, ref, commit, instance string }{store.ChannelCommit, c1, c1, fmt.Sprintf("web-prod-%d", pin.ID)}
			}
			if now.Following.Kind != want.kind || now.Following.Ref != want.ref || now.Commit != want.commit || now.Instance != want.instance {
				t.Fatalf("after recovery: %s %s serving %s from %s, want %+v", now.Following.Kind, now.Following.Ref, now.Commit, now.Instance, want)
			}
			rec := httptest.NewRecorder()
			px.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+inst.Host+"/", nil))
			if rec.Code != 200 || rec.Body.String() != want.instance {
				t.Fatalf("after recovery the proxy answers %d %q, want %s", rec.Code, rec.Body.String(), want.instance)
			}
			if running := te.rt.Running(); len(running) != 1 || running[0] != want.instance {
				t.Fatalf("instances after recovery: %v, want only %s", running, want.instance)
			}
			if op, _ := te.store.Operation(context.Background(), pin.ID); op.Status != store.StatusFailed || !strings.Contains(op.Reason, "interrupted") {
				t.Fatalf("the switch after recovery: %+v", op)
			}
		})
	}
}

func TestOperationEndsWhenTheNewCommitServesAndCleansUpAfter(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	te.rt.Mu.Lock()
	te.rt.HoldDelete = make(chan struct{})
	te.rt.Mu.Unlock()
	op := te.push("web", te.commit("web", testManifest, "two"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	final, err := te.Wait(ctx, op.ID) // the operation alone, not its clean-up
	if err != nil || final.Status != store.StatusSucceeded {
		t.Fatalf("deploy: %+v %v", final, err)
	}
	if _, body := te.serving(inst.Host); body != "web-prod-2" {
		t.Fatalf("serving %q when the deploy ended", body)
	}
	if got := te.Retiring(inst.ID); len(got) != 1 || got[0] != "web-prod-1" {
		t.Fatalf("retiring while the old instance is being deleted: %v", got)
	}
	if now, _ := te.store.Operation(ctx, op.ID); now.Cleanup != store.CleanupPending {
		t.Fatalf("clean-up while it runs: %q", now.Cleanup)
	}
	te.rt.Mu.Lock()
	close(te.rt.HoldDelete)
	te.rt.HoldDelete = nil
	te.rt.Mu.Unlock()
	te.waitSettled(ctx, inst.ID)
	if got := te.Retiring(inst.ID); len(got) != 0 {
		t.Fatalf("retiring after the clean-up: %v", got)
	}
	if now, _ := te.store.Operation(ctx, op.ID); now.Cleanup != store.CleanupDone || !strings.Contains(te.log(op.ID), "Old instance web-prod-1 deleted") {
		t.Fatalf("clean-up %q, log:\n%s", now.Cleanup, te.log(op.ID))
	}
}

func TestAFailedDeletionAfterTheSwapIsVisibleAndRetried(t *testing.T) {
	te := newTestEngine(t, "web")
	te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "one")))
	te.rt.Mu.Lock()
	te.rt.DeleteErr = errUnreachable
	te.rt.Mu.Unlock()
	op := te.wait(te.push("web", te.commit("web", testManifest, "two")))
	if op.Status != store.StatusSucceeded || !strings.HasPrefix(op.Cleanup, store.CleanupFailed) || !strings.Contains(op.Cleanup, "web-prod-1") {
		t.Fatalf("deploy whose old instance could not be deleted: %s, clean-up %q", op.Status, op.Cleanup)
	}
	ctx := context.Background()
	if left, _ := te.DeleteLeftovers(ctx); left != 1 {
		t.Fatalf("%d leftovers while Incus is away, want 1", left)
	}
	te.rt.Mu.Lock()
	te.rt.DeleteErr = nil
	te.rt.Mu.Unlock()
	if left, _ := te.DeleteLeftovers(ctx); left != 0 {
		t.Fatalf("%d leftovers once Incus is back", left)
	}
	if got := te.rt.Running(); len(got) != 1 || got[0] != "web-prod-2" || !strings.Contains(te.log(op.ID), "web-prod-1 deleted by housekeeping") {
		t.Fatalf("instances %v, log:\n%s", got, te.log(op.ID))
	}
}

func TestAKeptImageIsRecordedAsTheCommitItWasBuiltFrom(t *testing.T) {
	te := newTestEngine(t, "web")
	inst := te.install("web")
	te.wait(te.push("web", te.commit("web", testManifest, "zero")))
	te.rt.Mu.Lock()
	te.rt.HoldDelete = make(chan struct{}) // c1's clean-up waits until c2 serves
	te.rt.Mu.Unlock()
	c1 := te.commit("web", testManifest, "one")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if op, err := te.Wait(ctx, te.push("web", c1).ID); err != nil || op.Status != store.StatusSucceeded {
		t.Fatalf("deploy c1: %+v %v", op, err)
	}
	c2 := te.commit("web", testManifest, "two")
	if op, err := te.Wait(ctx, te.push("web", c2).ID); err != nil || op.Status != store.StatusSucceeded {
		t.Fatalf("deploy c2: %+v %v", op, err)
	}
	te.rt.Mu.Lock()
	close(te.rt.HoldDelete)
	te.rt.HoldDelete = nil
	te.rt.Mu.Unlock()
	te.waitSettled(ctx, inst.ID)
	kept, _ := te.store.KeptImages(ctx, inst.ID)
	byCommit := map[string]int{}
	for _, k := range kept {
		byCommit[k.Commit]++
	}
	if len(kept) != 2 || byCommit[c1] != 1 || byCommit[c2] != 1 {
		t.Fatalf("kept images %+v: want one of %s and one of %s", kept, shortID(c1), shortID(c2))
	}
}

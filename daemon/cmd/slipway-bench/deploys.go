package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// pushTimes are the times from the start of a `git push` to the front proxy
// serving the new content and to the push returning.
type pushTimes struct{ served, returned time.Duration }

// deploy commits content as public/index.html and pushes it. poll is the
// proxy's polling interval.
func (b *bench) deploy(ctx context.Context, w *workTree, host, content string, poll time.Duration) (pushTimes, string, error) {
	if err := w.commitIndex(ctx, content); err != nil {
		return pushTimes{}, "", err
	}
	start := time.Now()
	p, err := w.startPush(ctx)
	if err != nil {
		return pushTimes{}, "", err
	}
	served, werr := b.d.waitServedEvery(ctx, host, content, 60*time.Second, poll, p.out.swappedChan())
	perr := p.wait()
	returned := time.Since(start)
	if perr != nil {
		return pushTimes{}, p.out.String(), perr
	}
	if werr != nil {
		return pushTimes{}, p.out.String(), werr
	}
	return pushTimes{served.Sub(start), returned}, p.out.String(), nil
}

// pollEvery is how often the bench asks the front proxy whether a new
// commit is served, besides asking at once when the deploy log says the swap
// happened (see waitServedEvery). Busybox httpd forks for every connection
// and serves only ~200 req/s on this kind of machine: polling every 10 ms
// slowed the very launch being measured by a tenth of a second.
const pollEvery = 50 * time.Millisecond

// phase is one step of a deploy as its log shows it: the line that ends it.
type phase struct {
	name string
	mark string // substrings (any, separated by |) of the line that ends the phase; "" = served
}

var livePhases = []phase{
	{"git push → deploy queued", "remote: slipway: operation"},
	{"launch instance", "started from image"},
	{"tree + build", "-----> Starting web|-----> Copying commit"},
	{"(copy tree +) start web + health check", "Healthy:"},
	{"swap → seen served", ""},
}

var rollbackPhases = []phase{
	{"ssh pin → switch started", "-----> Switching"},
	{"start the earlier build", "Started kept instance|started from the image of commit"},
	{"start web + health check", "Healthy:"},
	{"swap → seen served", ""},
}

// phaseTimes splits a run that took total into phases, from the timeline's
// line times (seconds since the command started, see timedWriter). A phase
// whose line is missing gets 0 and its time goes to the next one.
func phaseTimes(timeline string, phases []phase, total float64) []float64 {
	out := make([]float64, len(phases))
	prev := 0.0
	for i, ph := range phases {
		at := total
		if ph.mark != "" {
			at = -1
		lines:
			for _, line := range strings.Split(timeline, "\n") {
				for _, m := range strings.Split(ph.mark, "|") {
					if strings.Contains(line, m) {
						fmt.Sscanf(strings.TrimSpace(line), "%f", &at)
						break lines
					}
				}
			}
			if at < 0 {
				continue
			}
		}
		out[i] = max(at-prev, 0)
		prev = at
	}
	return out
}

// notePhases adds a note with each phase's median over the runs.
func (b *bench) notePhases(key string, phases []phase, runs [][]float64) {
	if len(runs) == 0 {
		return
	}
	var parts []string
	for i, ph := range phases {
		vs := make([]float64, len(runs))
		for j, r := range runs {
			vs[j] = r[i]
		}
		parts = append(parts, fmt.Sprintf("%s %.2f s", ph.name, summarize(vs).Median))
	}
	b.results.note(key, "where the time goes (medians): %s", strings.Join(parts, ", "))
}

// firstDeploy makes app, its work tree with manifest and body, and pushes
// that first commit (not measured: it has nothing to replace).
func (b *bench) firstDeploy(ctx context.Context, app, manifest, body string) (string, *workTree, error) {
	host, err := b.d.newApp(ctx, app)
	if err != nil {
		return "", nil, err
	}
	w, err := b.newWorkTree(ctx, app, manifest, body)
	if err != nil {
		return "", nil, err
	}
	p, err := w.startPush(ctx)
	if err != nil {
		return "", nil, err
	}
	return host, w, p.wait()
}

// pushToLive: item 1.
func (b *bench) pushToLive(ctx context.Context) error {
	status("push to live: %d pushes of examples/apps/static", b.cfg.Runs)
	// The first push of an app is not measured: it deploys the commit made
	// by newWorkTree, with nothing to replace.
	host, w, err := b.firstDeploy(ctx, "live", staticManifest, "live 0\n")
	if err != nil {
		return err
	}
	var phases [][]float64
	for i := 1; i <= b.cfg.Runs; i++ {
		pt, out, err := b.deploy(ctx, w, host, fmt.Sprintf("live %d %s\n", i, randomHex(4)), pollEvery)
		if err != nil {
			return err
		}
		d := pt.served
		phases = append(phases, phaseTimes(out, livePhases, d.Seconds()))
		b.results.add("push_to_live_s", d.Seconds())
		b.results.add("push_returns_s", pt.returned.Seconds())
		b.results.add("push_returns_after_live_s", (pt.returned - pt.served).Seconds())
		b.log.Printf("push-to-live run %d: %.3f s, git push returned at %.3f s\n%s", i, d.Seconds(), pt.returned.Seconds(), out)
		status("  run %d: %.3f s (push returned at %.3f s)", i, d.Seconds(), pt.returned.Seconds())
	}
	b.notePhases("push_to_live_s", livePhases, phases)
	return b.probeFloors(ctx)
}

// rollback: item 2. Two commits are deployed, then the installation is
// pinned to each in turn: every pin is a rollback to a commit deployed
// before, whose build slipway kept as an image.
func (b *bench) rollback(ctx context.Context) error {
	status("rollback: %d pins to a commit deployed before", b.cfg.Runs)
	contents := []string{"back A\n", "back B\n"}
	host, w, err := b.firstDeploy(ctx, "back", staticManifest, contents[0])
	if err != nil {
		return err
	}
	commitA, err := w.git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	if _, _, err := b.deploy(ctx, w, host, contents[1], pollEvery); err != nil {
		return err
	}
	commitB, err := w.git(ctx, "rev-parse", "HEAD")
	if err != nil {
		return err
	}
	commits := []string{commitA, commitB}
	built := 0
	var phases [][]float64
	for i := 1; i <= b.cfg.Runs; i++ {
		target := (i + 1) % 2 // A, B, A, ...: each was served before the previous pin
		out := &timedWriter{start: time.Now()}
		swapped := out.swappedChan()
		done := make(chan error, 1)
		go func() { done <- b.d.sshTo(ctx, out, "pin", "back/production", commits[target]) }()
		served, werr := b.d.waitServed(ctx, host, contents[target], swapped)
		if err := <-done; err != nil {
			return err
		}
		returned := time.Since(out.start)
		if werr != nil {
			return werr
		}
		text := out.String()
		if !strings.Contains(text, "Started kept instance") && !strings.Contains(text, "started from the image of commit") {
			built++
		}
		d := served.Sub(out.start)
		phases = append(phases, phaseTimes(text, rollbackPhases, d.Seconds()))
		b.results.add("rollback_s", d.Seconds())
		b.results.add("pin_returns_after_live_s", (returned - d).Seconds())
		b.log.Printf("rollback run %d to %.12s: %.3f s\n%s", i, commits[target], d.Seconds(), text)
		status("  run %d: %.3f s", i, d.Seconds())
	}
	b.notePhases("rollback_s", rollbackPhases, phases)
	if built > 0 {
		b.results.note("rollback_s", "%d of %d pins found no earlier build (kept instance or image) and built the commit again", built, b.cfg.Runs)
	}
	return nil
}

// probeFloors measures, outside slipway, the two fixed costs a push to live
// is made of: one SSH command to the daemon (connection, key check, command),
// and Incus creating and starting a busybox instance.
func (b *bench) probeFloors(ctx context.Context) error {
	var sshTimes, launchTimes []float64
	for range 3 {
		start := time.Now()
		if _, err := b.d.sshCmd(ctx, "help"); err != nil {
			return err
		}
		sshTimes = append(sshTimes, time.Since(start).Seconds())
	}
	rt, err := b.d.runtime()
	if err != nil {
		return err
	}
	defer rt.Close()
	for i := range 3 {
		name := fmt.Sprintf("bench-probe-%d", i)
		start := time.Now()
		if err := rt.Launch(ctx, name, "slipway/busybox", nil); err != nil {
			return err
		}
		launchTimes = append(launchTimes, time.Since(start).Seconds())
		if err := rt.Delete(ctx, name); err != nil {
			return err
		}
	}
	// A push that deploys nothing: SSH, receive-pack and the git hooks alone.
	if _, err := b.d.sshCmd(ctx, "app", "create", "probe"); err != nil {
		return err
	}
	w, err := b.newWorkTree(ctx, "probe", staticManifest, "probe 0\n")
	if err != nil {
		return err
	}
	var pushTimes []float64
	for i := range 3 {
		if err := w.commitIndex(ctx, fmt.Sprintf("probe %d\n", i+1)); err != nil {
			return err
		}
		p, err := w.startPush(ctx)
		if err != nil {
			return err
		}
		if err := p.wait(); err != nil {
			return err
		}
		pushTimes = append(pushTimes, time.Since(p.out.start).Seconds())
	}
	b.results.note("push_to_live_s", "floors (medians of 3): `ssh daemon help` %.2f s; `git push` of a small commit that deploys nothing %.2f s; Incus create+start of slipway/busybox, outside slipway, %.2f s",
		summarize(sshTimes).Median, summarize(pushTimes).Median, summarize(launchTimes).Median)
	return nil
}

// failedRequests: item 3. A constant stream of requests, checked for status
// and body, runs through the front proxy while Deploys pushes deploy one
// after another; each request is counted against the deploy it overlapped.
func (b *bench) failedRequests(ctx context.Context) error {
	rate := b.cfg.LoadRate
	status("failed requests: %d back-to-back deploys under %d req/s", b.cfg.Deploys, rate)
	host, w, err := b.firstDeploy(ctx, "busy", staticManifest, "busy 0\n")
	if err != nil {
		return err
	}
	if _, err := b.d.waitServed(ctx, host, "busy 0\n", nil); err != nil {
		return err
	}

	stop := make(chan struct{})
	// Bounds: 20 deploys take well under a minute here.
	gen := b.appLoad(host, "busy ", float64(rate), 5*time.Minute, 2000)
	var results []loadResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		results = gen.run(ctx, stop)
	}()
	time.Sleep(500 * time.Millisecond) // the load is on before the first deploy
	windows := make([]time.Time, 0, b.cfg.Deploys+1)
	var deployErr error
	for i := 1; i <= b.cfg.Deploys; i++ {
		windows = append(windows, time.Now())
		content := fmt.Sprintf("busy %d\n", i)
		if _, _, err := b.deploy(ctx, w, host, content, 50*time.Millisecond); err != nil {
			deployErr = err
			break
		}
	}
	time.Sleep(500 * time.Millisecond)
	windows = append(windows, time.Now())
	close(stop)
	wg.Wait()
	if deployErr != nil {
		return deployErr
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	perDeploy := make([]int, b.cfg.Deploys)
	total, failed := 0, 0
	var firsts []string
	for _, r := range results {
		total++
		if r.err == nil {
			continue
		}
		failed++
		if len(firsts) < 3 {
			firsts = append(firsts, r.err.Error())
		}
		// The last window also takes failures after the last deploy.
		i := 0
		for i+1 < len(windows)-1 && !r.start.Before(windows[i+1]) {
			i++
		}
		perDeploy[i]++
	}
	for _, n := range perDeploy {
		b.results.add("failed_requests", float64(n))
	}
	elapsed := windows[len(windows)-1].Sub(windows[0])
	b.results.note("failed_requests", "%d of %d requests failed across %d deploys in %.1f s at %d req/s", failed, total, b.cfg.Deploys, elapsed.Seconds(), rate)
	b.log.Printf("failed requests: %d of %d, per deploy %v; first failures: %v", failed, total, perDeploy, firsts)
	status("  %d of %d requests failed across %d deploys", failed, total, b.cfg.Deploys)
	return nil
}

// parallel: item 6. Ten apps, each installed in production, are pushed at
// once; the time until all ten serve their new commit is compared with one
// app's push to live in the same round.
func (b *bench) parallel(ctx context.Context) error {
	const n = 10
	status("parallel: %d apps pushed at once, %d rounds", n, b.cfg.Rounds)
	hosts := make([]string, n)
	trees := make([]*workTree, n)
	for i := range n {
		app := fmt.Sprintf("par%d", i)
		host, err := b.d.newApp(ctx, app)
		if err != nil {
			return err
		}
		w, err := b.newWorkTree(ctx, app, staticManifest, app+" 0\n")
		if err != nil {
			return err
		}
		hosts[i], trees[i] = host, w
	}
	// First deploys, all at once, not measured.
	if _, err := b.deployAll(ctx, hosts, trees, "init"); err != nil {
		return err
	}
	var alls []time.Duration
	for r := 1; r <= b.cfg.Rounds; r++ {
		// The one deploy is timed by the same poller as the ten.
		one, err := b.deployAll(ctx, hosts[:1], trees[:1], fmt.Sprint("one ", r))
		if err != nil {
			return err
		}
		all, err := b.deployAll(ctx, hosts, trees, fmt.Sprint("all ", r))
		if err != nil {
			return err
		}
		ratio := all.Seconds() / one.Seconds()
		alls = append(alls, all)
		b.results.add("parallel10_ratio", ratio)
		b.log.Printf("parallel round %d: one deploy %.3f s, %d at once %.3f s: %.2f×", r, one.Seconds(), n, all.Seconds(), ratio)
		b.results.note("parallel10_ratio", "round %d: one deploy %.2f s, 10 at once %.2f s, all 10 served their commit", r, one.Seconds(), all.Seconds())
		b.log.Printf("parallel round %d, slowest of the ten:\n%s", r, b.lastSlowest)
		status("  round %d: one %.3f s, ten %.3f s (%.2f×)", r, one.Seconds(), all.Seconds(), ratio)
	}
	floor, err := b.parallelFloor(ctx, n)
	if err != nil {
		return err
	}
	for _, all := range alls {
		b.results.add("parallel10_vs_incus", all.Seconds()/floor.Seconds())
	}
	return nil
}

// parallelFloor measures what Incus alone needs for n instances at once,
// outside slipway: n create+start requests in parallel against one, and then
// the n deletes. Every deploy makes one instance and deletes one, so this
// bounds parallel10_ratio from below on this machine.
func (b *bench) parallelFloor(ctx context.Context, n int) (time.Duration, error) {
	one, all, err := b.incusFloor(ctx, n)
	if err != nil {
		return 0, err
	}
	b.results.note("parallel10_ratio", "floor: Incus alone, outside slipway: %d create+start at once %.2f s, one %.2f s (%.1f×)", n, all.Seconds(), one.Seconds(), all.Seconds()/one.Seconds())
	return all, nil
}

// incusFloor times Incus alone creating and starting one busybox instance,
// then n at once.
func (b *bench) incusFloor(ctx context.Context, n int) (one, all time.Duration, err error) {
	rt, err := b.d.runtime()
	if err != nil {
		return 0, 0, err
	}
	defer rt.Close()
	batch := func(tag string, k int) (time.Duration, error) {
		start := time.Now()
		errs := make(chan error, k)
		for i := range k {
			go func() { errs <- rt.Launch(ctx, fmt.Sprintf("bench-floor-%s-%d", tag, i), "slipway/busybox", nil) }()
		}
		var first error
		for range k {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		took := time.Since(start)
		for i := range k {
			go func() { errs <- rt.Delete(ctx, fmt.Sprintf("bench-floor-%s-%d", tag, i)) }()
		}
		for range k {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return took, first
	}
	if one, err = batch("one", 1); err != nil {
		return 0, 0, err
	}
	all, err = batch("all", n)
	return one, all, err
}

// deployAll commits to every tree and pushes them all at once; it returns
// the time from the first push's start until the last host serves its new
// content, and fails unless every push succeeded and every host serves its
// own commit afterwards.
func (b *bench) deployAll(ctx context.Context, hosts []string, trees []*workTree, tag string) (time.Duration, error) {
	contents := make([]string, len(trees))
	for i, w := range trees {
		contents[i] = fmt.Sprintf("par%d %s\n", i, tag)
		if err := w.commitIndex(ctx, contents[i]); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	pushes := make([]*push, len(trees))
	for i, w := range trees {
		p, err := w.startPush(ctx)
		if err != nil {
			return 0, err
		}
		pushes[i] = p
	}
	served, errs := b.d.waitAllServed(ctx, hosts, contents, 120*time.Second)
	var last time.Time
	var lost []string
	for i, p := range pushes {
		if !served[i].IsZero() && served[i].After(last) {
			b.lastSlowest = p.out.String()
		}
		if err := p.wait(); err != nil {
			lost = append(lost, fmt.Sprintf("par%d: %s", i, firstLine(err.Error())))
			continue
		}
		if errs[i] != nil {
			lost = append(lost, fmt.Sprintf("par%d: %s", i, errs[i]))
			continue
		}
		if served[i].After(last) {
			last = served[i]
		}
	}
	// None lost: each still serves its own commit once every push is done.
	for i, host := range hosts {
		if code, body, err := b.d.get(ctx, host); err != nil || code != 200 || body != contents[i] {
			lost = append(lost, fmt.Sprintf("par%d serves %d %q %v, want %q", i, code, truncate(body, 40), err, contents[i]))
		}
	}
	if len(lost) > 0 {
		return 0, fmt.Errorf("%d of %d parallel deploys lost: %s", len(lost), len(trees), strings.Join(lost, "; "))
	}
	return last.Sub(start), nil
}

// appLoad is an open loop through the proxy to host whose answers must be
// 200 with a body starting with prefix.
func (b *bench) appLoad(host, prefix string, rate float64, maxDuration time.Duration, maxInFlight int) openLoop {
	return openLoop{
		URL: "http://" + b.d.proxy + "/", Host: host, Rate: rate,
		MaxDuration: maxDuration, MaxInFlight: maxInFlight, Timeout: 10 * time.Second,
		Check: func(res *http.Response, body []byte) error {
			if res.StatusCode != 200 || !strings.HasPrefix(string(body), prefix) {
				return fmt.Errorf("%d %q", res.StatusCode, truncate(string(body), 60))
			}
			return nil
		},
	}
}

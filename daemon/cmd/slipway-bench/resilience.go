package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipway-dev/slipway/channels/router"
	"github.com/slipway-dev/slipway/daemon/frontproxy"
)

// resilience: the daemon and the proxy go away under a constant load. Each
// round kills the daemon while idle and right after a swap, restarts it,
// upgrades the proxy and kills the proxy; every event has its own window of
// the load, and its failed requests are counted against it. The gap after
// the proxy's kill is from the kill to the last request that failed.
func (b *bench) resilience(ctx context.Context) error {
	const rate = 100 // busybox httpd forks per connection: well below its ceiling
	status("resilience: %d rounds of daemon kills, restart, proxy upgrade and proxy kill under %d req/s", b.cfg.Rounds, rate)
	host, w, err := b.firstDeploy(ctx, "steady", staticManifest, "steady 0\n")
	if err != nil {
		return err
	}
	stop := make(chan struct{})
	gen := b.appLoad(host, "steady ", rate, 10*time.Minute, 500)
	var results []loadResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		results = gen.run(ctx, stop)
	}()
	var events []event
	var runErr error
	for r := 1; r <= b.cfg.Rounds && runErr == nil; r++ {
		events, runErr = b.resilienceRound(ctx, r, w, host, events)
	}
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	if runErr != nil {
		return runErr
	}
	b.countEvents(events, results)
	return nil
}

// event is one window of the load: what happened, from when to when.
type event struct {
	what       string
	start, end time.Time
	proxyKill  bool
}

func (b *bench) resilienceRound(ctx context.Context, round int, w *workTree, host string, events []event) ([]event, error) {
	steps := []struct {
		what string
		run  func() error
	}{
		{"daemon killed while idle", func() error { return b.d.restart(ctx, syscall.SIGKILL) }},
		{"daemon killed right after a swap", func() error { return b.killAfterSwap(ctx, w, host, round) }},
		{"daemon restarted", func() error { return b.d.restart(ctx, syscall.SIGTERM) }},
		{"proxy upgraded", func() error { return b.upgradeProxy(ctx) }},
		{"proxy killed", func() error { return b.killProxy(ctx) }},
	}
	for _, s := range steps {
		time.Sleep(500 * time.Millisecond) // a quiet stretch between windows
		ev := event{what: s.what, start: time.Now(), proxyKill: s.what == "proxy killed"}
		if err := s.run(); err != nil {
			return events, fmt.Errorf("round %d, %s: %w", round, s.what, err)
		}
		time.Sleep(time.Second) // the load goes on after it
		ev.end = time.Now()
		events = append(events, ev)
		b.log.Printf("resilience round %d: %s in %s", round, s.what, ev.end.Sub(ev.start).Round(time.Millisecond))
	}
	return events, nil
}

// killAfterSwap pushes a new commit and kills the daemon the moment its log
// says the proxy took the new route, then starts it again.
func (b *bench) killAfterSwap(ctx context.Context, w *workTree, host string, round int) error {
	if err := w.commitIndex(ctx, fmt.Sprintf("steady %d\n", round)); err != nil {
		return err
	}
	p, err := w.startPush(ctx)
	if err != nil {
		return err
	}
	select {
	case <-p.out.swappedChan():
	case <-time.After(60 * time.Second):
		p.wait()
		return fmt.Errorf("no swap within 60 s:\n%s", p.out.String())
	}
	err = b.d.restart(ctx, syscall.SIGKILL)
	p.wait() // it fails: its daemon was killed
	return err
}

func (b *bench) upgradeProxy(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, b.cfg.Slipway, "proxy", "upgrade", "--data", b.d.data).CombinedOutput()
	if err != nil {
		return fmt.Errorf("slipway proxy upgrade: %v: %s", err, out)
	}
	b.log.Printf("slipway proxy upgrade: %s", strings.TrimSpace(string(out)))
	return nil
}

// killProxy kills the proxy process and waits until a new one answers.
func (b *bench) killProxy(ctx context.Context) error {
	pid, err := b.d.proxyPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	client := router.NewClient(frontproxy.PathsIn(frontproxy.DirIn(b.d.data)).Socket)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if hello, err := client.Hello(ctx); err == nil && hello.PID != pid {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	return fmt.Errorf("no new proxy 10 s after kill -9 of pid %d", pid)
}

// countEvents adds each event's failed requests, and the gaps after proxy
// kills, to the results.
func (b *bench) countEvents(events []event, results []loadResult) {
	for _, ev := range events {
		failed, total := 0, 0
		var last time.Time
		for _, r := range results {
			if r.start.Before(ev.start) || !r.start.Before(ev.end) {
				continue
			}
			total++
			if r.err != nil {
				failed++
				last = r.start
			}
		}
		if ev.proxyKill {
			gap := 0.0
			if failed > 0 {
				gap = last.Sub(ev.start).Seconds() + 1.0/100
			}
			b.results.add("proxy_kill_gap_s", gap)
			b.results.note("proxy_kill_gap_s", "%d of %d requests failed after kill -9 of the proxy, over %.3f s", failed, total, gap)
		} else {
			b.results.add("resilience_failed_requests", float64(failed))
		}
		b.log.Printf("resilience: %s: %d of %d requests failed", ev.what, failed, total)
	}
	status("  resilience: %d events measured", len(events))
}

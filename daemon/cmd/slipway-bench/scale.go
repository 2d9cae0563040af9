package main

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// scale: three web instances of one installation. Rounds alternate a push
// to an installation of one instance and to one scaled to three (their
// ratio is the promise: ≤ 1.5×), under a constant load on the three whose
// failed requests are counted; then the same with --surge 1, a rolling
// deploy one instance at a time.
func (b *bench) scale(ctx context.Context) error {
	rounds := max(b.cfg.Runs/2, 3)
	status("scale: %d rounds of a deploy of one instance against three, under %d req/s on the three", rounds, b.cfg.LoadRate)
	oneHost, one, err := b.firstDeploy(ctx, "solo", staticManifest, "solo 0\n")
	if err != nil {
		return err
	}
	trioHost, trio, err := b.firstDeploy(ctx, "trio", staticManifest, "trio 0\n")
	if err != nil {
		return err
	}
	if out, err := b.d.sshCmd(ctx, "scale", "trio/production", "web=3"); err != nil {
		return fmt.Errorf("scale to three: %w: %s", err, out)
	}
	if _, err := b.d.waitServed(ctx, trioHost, "trio 0\n", nil); err != nil {
		return err
	}
	failed, total, err := b.underLoad(ctx, trioHost, "trio ", func() error {
		for i := 1; i <= rounds; i++ {
			pt1, _, err := b.deploy(ctx, one, oneHost, fmt.Sprintf("solo %d %s\n", i, randomHex(4)), pollEvery)
			if err != nil {
				return err
			}
			pt3, out, err := b.deploy(ctx, trio, trioHost, fmt.Sprintf("trio %d %s\n", i, randomHex(4)), pollEvery)
			if err != nil {
				return err
			}
			b.results.add("deploy_1_instance_s", pt1.served.Seconds())
			b.results.add("deploy_3_instances_s", pt3.served.Seconds())
			b.results.add("deploy_3_vs_1", pt3.served.Seconds()/pt1.served.Seconds())
			b.log.Printf("scale round %d: one %.3f s, three %.3f s\n%s", i, pt1.served.Seconds(), pt3.served.Seconds(), out)
			status("  round %d: one instance %.3f s, three %.3f s", i, pt1.served.Seconds(), pt3.served.Seconds())
		}
		return nil
	})
	if err != nil {
		return err
	}
	for range 3 { // the floor: Incus alone starting three at once ÷ one
		one, all, err := b.incusFloor(ctx, 3)
		if err != nil {
			return err
		}
		b.results.add("incus_3_vs_1", all.Seconds()/one.Seconds())
	}
	b.results.add("failed_requests_deploy_3", float64(failed))
	b.results.note("failed_requests_deploy_3", "%d of %d requests failed across %d deploys of three instances", failed, total, rounds)
	return b.rolling(ctx, trio, trioHost, rounds)
}

// rolling deploys the three with --surge 1 under load.
func (b *bench) rolling(ctx context.Context, trio *workTree, host string, rounds int) error {
	if out, err := b.d.sshCmd(ctx, "scale", "trio/production", "--surge", "1"); err != nil {
		return fmt.Errorf("surge 1: %w: %s", err, out)
	}
	failed, total, err := b.underLoad(ctx, host, "trio ", func() error {
		for i := 1; i <= rounds; i++ {
			pt, out, err := b.deploy(ctx, trio, host, fmt.Sprintf("trio rolling %d %s\n", i, randomHex(4)), pollEvery)
			if err != nil {
				return err
			}
			b.results.add("rolling_deploy_3_s", pt.returned.Seconds())
			b.log.Printf("rolling round %d: %.3f s\n%s", i, pt.returned.Seconds(), out)
		}
		return nil
	})
	if err != nil {
		return err
	}
	b.results.add("failed_requests_rolling_3", float64(failed))
	b.results.note("failed_requests_rolling_3", "%d of %d requests failed across %d rolling deploys (--surge 1) of three instances", failed, total, rounds)
	status("  rolling: %d of %d requests failed", failed, total)
	return nil
}

// underLoad runs work while an open loop asks host at the bench's load rate,
// and counts the requests that failed.
func (b *bench) underLoad(ctx context.Context, host, prefix string, work func() error) (failed, total int, err error) {
	stop := make(chan struct{})
	gen := b.appLoad(host, prefix, float64(b.cfg.LoadRate), 10*time.Minute, 2000)
	var results []loadResult
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		results = gen.run(ctx, stop)
	}()
	time.Sleep(300 * time.Millisecond) // the load is on before the first deploy
	err = work()
	time.Sleep(300 * time.Millisecond)
	close(stop)
	wg.Wait()
	for _, r := range results {
		total++
		if r.err != nil {
			failed++
			if failed <= 3 {
				b.log.Printf("failed request to %s: %v", host, r.err)
			}
		}
	}
	return failed, total, err
}

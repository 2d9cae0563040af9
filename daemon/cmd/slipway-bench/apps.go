package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// apps: item 7, real apps on slipway/debian. The Python example's push to
// live (detection, virtualenv, its release step, a volume), and the Go
// example's build with an emptied cache (rebuild) against a warm one (a
// push of a changed main.go).
func (b *bench) apps(ctx context.Context) error {
	if err := exec.CommandContext(ctx, "incus", "image", "info", "slipway/debian").Run(); err != nil {
		return fmt.Errorf("slipway/debian is not imported (just image-debian makes it)")
	}
	if err := b.pythonToLive(ctx); err != nil {
		return err
	}
	return b.goBuildCache(ctx)
}

// exampleTree copies examples/apps/NAME into a work tree pushing to app.
func (b *bench) exampleTree(ctx context.Context, app, example string) (*workTree, error) {
	dir := filepath.Join(b.tmp, "src", app)
	if err := copyTree(filepath.Join(b.cfg.Examples, example), dir); err != nil {
		return nil, fmt.Errorf("copy the %s example: %w", example, err)
	}
	home := filepath.Join(b.tmp, "home")
	os.MkdirAll(home, 0o700)
	w := &workTree{dir: dir, env: gitEnv(home, "ssh "+strings.Join(b.d.sshOptions(), " "))}
	return w, w.initRepo(ctx, b.d.ssh, app)
}

// edit rewrites file in the work tree with old replaced by new, and commits.
func (w *workTree) edit(ctx context.Context, file, old, new string) error {
	path := filepath.Join(w.dir, file)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !strings.Contains(string(data), old) {
		return fmt.Errorf("%s holds no %q", file, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(data), old, new, 1)), 0o644); err != nil {
		return err
	}
	_, err = w.git(ctx, "commit", "-q", "-a", "-m", "bench: "+new)
	return err
}

// pushUntil pushes the work tree's HEAD and returns when host serves a body
// starting with prefix, with the push's timeline.
func (b *bench) pushUntil(ctx context.Context, w *workTree, host, prefix string) (time.Duration, string, error) {
	start := time.Now()
	p, err := w.startPush(ctx)
	if err != nil {
		return 0, "", err
	}
	match := func(body string) bool { return strings.HasPrefix(body, prefix) }
	served, werr := b.d.waitServedMatch(ctx, host, prefix+"…", match, 120*time.Second, pollEvery, p.out.swappedChan())
	if err := p.wait(); err != nil {
		return 0, p.out.String(), err
	}
	if werr != nil {
		return 0, p.out.String(), werr
	}
	return served.Sub(start), p.out.String(), nil
}

func (b *bench) pythonToLive(ctx context.Context) error {
	status("python to live: %d pushes of examples/apps/python on slipway/debian", b.cfg.Runs)
	host, err := b.d.newApp(ctx, "py")
	if err != nil {
		return err
	}
	w, err := b.exampleTree(ctx, "py", "python")
	if err != nil {
		return err
	}
	if _, out, err := b.pushUntil(ctx, w, host, "Hello from slipway: "); err != nil {
		return fmt.Errorf("first deploy: %w\n%s", err, out)
	}
	greeting := "Hello from slipway"
	for i := 1; i <= b.cfg.Runs; i++ {
		next := fmt.Sprintf("Hello from slipway %d %s", i, randomHex(3))
		if err := w.edit(ctx, "app.py", greeting, next); err != nil {
			return err
		}
		greeting = next
		d, out, err := b.pushUntil(ctx, w, host, next+": ")
		if err != nil {
			return fmt.Errorf("%w\n%s", err, out)
		}
		b.results.add("python_push_to_live_s", d.Seconds())
		b.log.Printf("python push-to-live run %d: %.3f s\n%s", i, d.Seconds(), out)
		status("  run %d: %.3f s", i, d.Seconds())
	}
	return nil
}

// goBuildRounds is how many cold and warm Go builds are measured: a cold
// one takes seconds.
const goBuildRounds = 3

func (b *bench) goBuildCache(ctx context.Context) error {
	status("go build cache: %d rebuilds (cold cache) and %d pushes (warm) of examples/apps/go", goBuildRounds, goBuildRounds)
	host, err := b.d.newApp(ctx, "gobuild")
	if err != nil {
		return err
	}
	w, err := b.exampleTree(ctx, "gobuild", "go")
	if err != nil {
		return err
	}
	if _, out, err := b.pushUntil(ctx, w, host, "Hello from slipway"); err != nil {
		return fmt.Errorf("first deploy: %w\n%s", err, out)
	}
	greeting := "Hello from slipway"
	for i := 1; i <= goBuildRounds; i++ {
		out := &timedWriter{start: time.Now()}
		if err := b.d.sshTo(ctx, out, "rebuild", "gobuild/production"); err != nil {
			return fmt.Errorf("%w\n%s", err, out.String())
		}
		cold, err := stepTime(out.String(), "Building with go build")
		if err != nil {
			return err
		}
		next := fmt.Sprintf("Hello from slipway %d", i)
		if err := w.edit(ctx, "main.go", greeting, next); err != nil {
			return err
		}
		greeting = next
		_, text, err := b.pushUntil(ctx, w, host, next)
		if err != nil {
			return fmt.Errorf("%w\n%s", err, text)
		}
		warm, err := stepTime(text, "Building with go build")
		if err != nil {
			return err
		}
		b.results.add("go_build_cold_s", cold.Seconds())
		b.results.add("go_build_warm_s", warm.Seconds())
		b.results.add("go_build_warm_vs_cold", warm.Seconds()/cold.Seconds())
		b.log.Printf("go build round %d: cold %.3f s, warm %.3f s\n%s\n%s", i, cold.Seconds(), warm.Seconds(), out.String(), text)
		status("  round %d: cold %.2f s, warm %.2f s", i, cold.Seconds(), warm.Seconds())
	}
	return nil
}

// stepTime reads how long a named build step took from a deploy log: the
// "done in D" line after the step's "-----> NAME".
func stepTime(log, name string) (time.Duration, error) {
	_, after, ok := strings.Cut(log, "-----> "+name)
	if !ok {
		return 0, fmt.Errorf("the deploy log has no step %q:\n%s", name, log)
	}
	_, rest, ok := strings.Cut(after, "done in ")
	if !ok {
		return 0, fmt.Errorf("step %q did not finish:\n%s", name, log)
	}
	field, _, _ := strings.Cut(rest, "\n")
	return time.ParseDuration(strings.Fields(field)[0])
}

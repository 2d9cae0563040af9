package channels

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/detect"
	"github.com/slipway-dev/slipway/channels/repo"
	"github.com/slipway-dev/slipway/store"
)

// CacheMount is where build steps find the installation's build cache
// ($SLIPWAY_CACHE): pip's, npm's, Go's and bundler's downloads and builds,
// kept across deploys in a volume of its own. Not under /tmp, which an
// image's own boot may empty.
const CacheMount = "/var/cache/slipway"

// loadAppAt resolves what commit runs: its slipway.yml, its Procfile and, for
// what they leave open, the language detected from its files.
func loadAppAt(r *repo.Repo, commit string) (*App, error) {
	tree, err := r.Tree(commit)
	if err != nil {
		return nil, err
	}
	return LoadApp(tree)
}

// build runs the app's build steps, each named in the log, with the build
// cache mounted when a step uses it.
func (d *deployment) build(ctx context.Context) error {
	if len(d.app.Build) == 0 {
		return nil
	}
	env := under(d.app.BuildEnv, d.env)
	if usesCache(d.app.Build) {
		if err := d.mountCache(ctx); err != nil {
			return err
		}
		env["SLIPWAY_CACHE"] = CacheMount
	}
	for _, step := range d.app.Build {
		if err := d.e.runNamedStep(ctx, d.l, d.name, step, env); err != nil {
			return err
		}
	}
	return nil
}

// usesCache: a step names $SLIPWAY_CACHE. Mounting a volume costs a
// hot-plug, so builds without a cache go without.
func usesCache(steps []detect.Step) bool {
	for _, s := range steps {
		if strings.Contains(s.Command, "SLIPWAY_CACHE") {
			return true
		}
	}
	return false
}

// cacheVolume names an installation's build cache volume. User volumes are
// APP_ENV_NAME with NAME starting with a letter, so the double underscore
// never meets one.
func cacheVolume(inst store.Installation) string {
	return inst.App + "_" + inst.Environment + "__build-cache"
}

// mountCache mounts the installation's build cache into the new instance,
// making it first; a rebuild starts with an empty one.
func (d *deployment) mountCache(ctx context.Context) error {
	vr, ok := d.e.rt.(VolumeRuntime)
	if !ok {
		d.l.Logf("       No build cache: the runtime has no volumes")
		return nil
	}
	step := time.Now()
	vol := cacheVolume(d.inst)
	if err := vr.CreateVolume(ctx, vol); err != nil {
		return d.e.stepError(ctx, "make the build cache", err)
	}
	if err := vr.AttachVolumes(ctx, d.name, map[string]string{vol: CacheMount}); err != nil {
		return d.e.stepError(ctx, "mount the build cache", err)
	}
	d.l.Logf("       Build cache mounted at %s (%s)", CacheMount, time.Since(step).Round(time.Millisecond))
	if d.opType == store.OpRebuild {
		return d.emptyCache(ctx)
	}
	return nil
}

// emptyCache deletes what the build cache holds, from inside the new
// instance: the serving instance still has the volume mounted (it was built
// with it), so the volume itself cannot be deleted.
func (d *deployment) emptyCache(ctx context.Context) error {
	var out strings.Builder
	code, err := d.e.rt.Run(ctx, d.name, []string{"find", CacheMount, "-mindepth", "1", "-delete"}, nil, &out)
	if err != nil {
		return d.e.stepError(ctx, "empty the build cache", err)
	}
	if code != 0 {
		return fmt.Errorf("empty the build cache: find exited with status %d: %s", code, strings.TrimSpace(out.String()))
	}
	d.l.Logf("       Build cache emptied: a rebuild starts from scratch")
	return nil
}

// runNamedStep runs one build step under its name.
func (e *Engine) runNamedStep(ctx context.Context, l *opLog, name string, step detect.Step, env map[string]string) error {
	l.Logf("-----> %s", step.Name)
	start := time.Now()
	code, err := e.rt.Run(ctx, name, []string{"/bin/sh", "-c", "cd /app && " + step.Command}, env, l)
	l.Flush()
	if err != nil {
		return e.stepError(ctx, "build step "+step.Name, err)
	}
	if code != 0 {
		return fmt.Errorf("build step %q exited with status %d", step.Command, code)
	}
	l.Logf("       done in %s", time.Since(start).Round(time.Millisecond))
	return nil
}

// under returns base with top's entries over it (top wins), as a new map.
func under(base, top map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(top))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range top {
		out[k] = v
	}
	return out
}

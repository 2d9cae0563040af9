package setup

import (
	"context"
	"fmt"
	"io"
	"os"

	incus "github.com/lxc/incus/v6/client"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// Debian configures the rich Debian image step (`slipway image build
// debian`, `slipway setup --debian`).
type Debian struct {
	Build    bool     // setup: build it too (`slipway image build debian` always does)
	Alias    string   // default slipway/debian
	Include  []string // packages beyond baseimage.DebianPackages
	CacheDir string   // finished tarballs (default /var/cache/slipway/images)
	Fresh    bool     // rebuild even when the cache or Incus has this recipe
	AptDir   string   // where the host's mirror is read from (default /etc/apt)
}

func (d *Debian) defaults() {
	if d.Alias == "" {
		d.Alias = baseimage.DebianAlias
	}
	if d.CacheDir == "" {
		d.CacheDir = baseimage.DefaultCacheDir
	}
	if d.AptDir == "" {
		d.AptDir = "/etc/apt"
	}
}

// DebianImage builds (or takes from the cache) the Debian image and imports
// it, starting incusd if it is installed but not running: `slipway image
// build debian` on a host that is set up already.
func DebianImage(ctx context.Context, opts Options, out io.Writer) error {
	return withIncus(ctx, opts, out, (*host).ensureDebian)
}

// withIncus runs one image step on a host that is set up already, starting
// incusd if it is installed but not running.
func withIncus(ctx context.Context, opts Options, out io.Writer, step func(*host, context.Context, incus.InstanceServer) error) error {
	opts.defaults()
	// Said first: as anyone else, incusd's socket refuses the connection,
	// and that message would send the user to the wrong place.
	if os.Geteuid() != 0 {
		return baseimage.ErrNeedRoot
	}
	h := host{opts: opts, out: out, log: opts.Logger}
	incusd := findIncusd()
	if incusd == "" {
		return fmt.Errorf("incus is not installed: run `slipway setup`")
	}
	srv, err := h.ensureDaemon(ctx, incusd)
	if err != nil {
		return err
	}
	defer srv.Disconnect()
	return step(&h, ctx, srv)
}

// offerDebian is setup's line about the Debian image when it was not asked
// to build it: what it would take, or that it is there.
func (h *host) offerDebian(srv incus.InstanceServer) {
	alias := h.opts.Debian.Alias
	if entry, _, err := srv.GetImageAlias(alias); err == nil {
		h.say("image %s: already there (%s); `slipway image build debian` refreshes it", alias, short(entry.Target))
		return
	}
	h.say("image %s: not built; `slipway image build debian` makes %s for Python, Node, Ruby and Go apps: about 2 minutes and 300 MB from the Debian mirror", alias, alias)
}

func (h *host) ensureDebian(ctx context.Context, srv incus.InstanceServer) error {
	d := h.opts.Debian
	mirror := baseimage.HostMirror(baseimage.ReadAptSources(d.AptDir), baseimage.DebianSuite)
	return h.ensureRecipe(ctx, srv, d, baseimage.NewDebianRecipe(mirror, d.Include))
}

// ensureRecipe builds (or imports from the cache) one Debian-based image:
// the rich one or the Postgres one, which differ only in their recipe.
func (h *host) ensureRecipe(ctx context.Context, srv incus.InstanceServer, d Debian, recipe baseimage.DebianRecipe) error {
	fp, err := baseimage.EnsureDebian(ctx, srv, baseimage.DebianOptions{
		Recipe:      recipe,
		Alias:       d.Alias,
		CacheDir:    d.CacheDir,
		Fresh:       d.Fresh,
		Out:         h.out,
		BeforeBuild: h.ensureMmdebstrap,
	})
	if err != nil {
		return err
	}
	h.log.Info("setup: image ready", "alias", d.Alias, "image", short(fp))
	return nil
}

// ensureMmdebstrap installs mmdebstrap with apt when a build needs it and
// it is missing; only root on a Debian host can.
func (h *host) ensureMmdebstrap(ctx context.Context) error {
	if haveCommand("mmdebstrap") {
		return nil
	}
	if os.Geteuid() != 0 || !haveCommand("apt-get") {
		return baseimage.ErrNoMmdebstrap
	}
	if err := aptInstall(ctx, "mmdebstrap"); err != nil {
		return err
	}
	h.say("mmdebstrap: installed (apt-get install mmdebstrap)")
	return nil
}

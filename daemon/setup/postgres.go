package setup

import (
	"context"
	"io"

	incus "github.com/lxc/incus/v6/client"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// defaultsPostgres is Debian's defaults for the Postgres image: its own
// alias, the same cache and mirror. Include is not used: the recipe is
// fixed, so every host's slipway/postgres is the same image.
func (d *Debian) defaultsPostgres() {
	if d.Alias == "" {
		d.Alias = baseimage.PostgresAlias
	}
	d.defaults()
}

// PostgresImage builds (or takes from the cache) the Postgres image and
// imports it: `slipway image build postgres` on a host that is set up.
func PostgresImage(ctx context.Context, opts Options, out io.Writer) error {
	return withIncus(ctx, opts, out, (*host).ensurePostgres)
}

func (h *host) ensurePostgres(ctx context.Context, srv incus.InstanceServer) error {
	d := h.opts.Postgres
	mirror := baseimage.HostMirror(baseimage.ReadAptSources(d.AptDir), baseimage.DebianSuite)
	return h.ensureRecipe(ctx, srv, d, baseimage.NewPostgresRecipe(mirror))
}

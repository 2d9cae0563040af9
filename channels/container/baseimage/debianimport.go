package baseimage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// DefaultCacheDir keeps finished Debian image tarballs between builds.
const DefaultCacheDir = "/var/cache/slipway/images"

// DebianOptions configure EnsureDebian. Zero values mean the defaults.
type DebianOptions struct {
	Recipe   DebianRecipe
	Alias    string    // default DebianAlias
	CacheDir string    // default DefaultCacheDir
	Fresh    bool      // build again even when the cache or Incus has this recipe
	Out      io.Writer // progress, one line per step plus mmdebstrap's

	// BeforeBuild, when set, runs only when a build is needed: setup
	// installs mmdebstrap there, so a cached or current image needs none.
	BeforeBuild func(context.Context) error
}

// EnsureDebian makes alias name an image of o.Recipe, doing as little as it
// can: nothing when the image under alias already carries the recipe's key;
// an import when the cache holds its tarball; a build otherwise. A fresh
// image is unpacked into the storage pool before the alias moves to it, and
// the image the alias named before is deleted, as `slipway image` does for
// busybox. It returns the image's fingerprint.
func EnsureDebian(ctx context.Context, srv incus.InstanceServer, o DebianOptions) (string, error) {
	o.defaults()
	key := o.Recipe.Key()
	old := ""
	if entry, _, err := srv.GetImageAlias(o.Alias); err == nil {
		old = entry.Target
	} else if !api.StatusErrorCheck(err, 404) {
		return "", fmt.Errorf("look up image %s: %w", o.Alias, err)
	}
	if old != "" && !o.Fresh && imageRecipe(srv, old) == key {
		fmt.Fprintf(o.Out, "image %s: already up to date (%.12s, recipe %s)\n", o.Alias, old, key)
		return old, nil
	}
	fp, err := o.importTarball(ctx, srv, key)
	if err != nil {
		return "", err
	}
	warmImage(ctx, srv, fp, o.Out, o.Alias)
	if err := pointAlias(srv, o.Alias, fp, o.Recipe.description()); err != nil {
		// Nothing names the new image: do not leave 1 GB behind.
		if fp != old {
			if op, derr := srv.DeleteImage(fp); derr == nil {
				_ = op.Wait()
			}
		}
		return "", err
	}
	o.retire(srv, old, fp)
	return fp, nil
}

func (o *DebianOptions) defaults() {
	o.Recipe = o.Recipe.normal()
	if o.Alias == "" {
		o.Alias = DebianAlias
	}
	if o.CacheDir == "" {
		o.CacheDir = DefaultCacheDir
	}
	if abs, err := filepath.Abs(o.CacheDir); err == nil {
		o.CacheDir = abs
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
}

// importTarball imports the recipe's tarball, from the cache when it is
// there. A cached tarball Incus refuses (a disk error, an Incus that changed
// its mind) is deleted and built again: the cache saves time, it must never
// be what a build depends on.
func (o *DebianOptions) importTarball(ctx context.Context, srv incus.InstanceServer, key string) (string, error) {
	tarball, built, err := o.tarball(ctx, key)
	if err != nil {
		return "", err
	}
	fp, err := importFile(ctx, srv, tarball, o.Out, o.Alias)
	if err == nil || built || ctx.Err() != nil {
		return fp, err
	}
	fmt.Fprintf(o.Out, "image %s: the cached build did not import (%v); building it again\n", o.Alias, err)
	_ = os.Remove(tarball)
	o.Fresh = true
	if tarball, _, err = o.tarball(ctx, key); err != nil {
		return "", err
	}
	return importFile(ctx, srv, tarball, o.Out, o.Alias)
}

// tarball is the cached tarball of the recipe, built first (built is then
// true) when there is none or Fresh asks for a new one.
func (o *DebianOptions) tarball(ctx context.Context, key string) (path string, built bool, err error) {
	path = o.Recipe.CachePath(o.CacheDir)
	if st, err := os.Stat(path); err == nil && !o.Fresh {
		fmt.Fprintf(o.Out, "image %s: using the cached build (%s, %s)\n", o.Alias, path, mb(st.Size()))
		return path, false, nil
	}
	fmt.Fprintf(o.Out, "image %s: building Debian %s from %s with mmdebstrap (recipe %s; about 2 minutes)\n",
		o.Alias, o.Recipe.Suite, o.Recipe.Mirror, key)
	if o.BeforeBuild != nil {
		if err := o.BeforeBuild(ctx); err != nil {
			return "", false, fmt.Errorf("image %s: %w", o.Alias, err)
		}
	}
	if path, err = BuildDebian(ctx, o.Recipe, o.CacheDir, o.Out); err != nil {
		return "", false, fmt.Errorf("image %s: %w", o.Alias, err)
	}
	return path, true, nil
}

// retire deletes the image alias pointed at before: nothing names it any
// more (instances made from it keep their own copy, apps name the alias).
func (o *DebianOptions) retire(srv incus.InstanceServer, old, fp string) {
	switch {
	case old == "":
		fmt.Fprintf(o.Out, "image %s: imported (%.12s)\n", o.Alias, fp)
	case old == fp:
		fmt.Fprintf(o.Out, "image %s: imported (%.12s, already there)\n", o.Alias, fp)
	default:
		if op, err := srv.DeleteImage(old); err == nil {
			_ = op.Wait()
		}
		fmt.Fprintf(o.Out, "image %s: updated (%.12s, was %.12s)\n", o.Alias, fp, old)
	}
}

// imageRecipe is the recipe key recorded in an image, "" when it has none.
func imageRecipe(srv incus.InstanceServer, fingerprint string) string {
	img, _, err := srv.GetImage(fingerprint)
	if err != nil {
		return ""
	}
	return img.Properties[RecipeProperty]
}

// importFile imports a tarball from disk. Its sha256 is the image's
// fingerprint, so an image already in Incus is found without an upload.
func importFile(ctx context.Context, srv incus.InstanceServer, path string, out io.Writer, alias string) (string, error) {
	start := time.Now()
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", alias, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("image %s: read %s: %w", alias, path, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	fp, err := importTarball(ctx, srv, f, filepath.Base(path), hex.EncodeToString(h.Sum(nil)))
	if err != nil {
		return "", fmt.Errorf("image %s: %w", alias, err)
	}
	fmt.Fprintf(out, "  imported into Incus in %.1f s\n", time.Since(start).Seconds())
	return fp, nil
}

// warmImage unpacks a new image into the storage pool now, by creating
// (not starting) one throwaway instance of it and deleting it: on btrfs the
// first instance of an image unpacks it (about 15 s for the standard
// image), every later one is a snapshot clone (half a second), and that
// first one should not be someone's deploy. Creating is enough; booting
// would add nothing, since slipway's own supervisor is what instances run.
// A failure here costs only speed, so it is reported, not returned.
func warmImage(ctx context.Context, srv incus.InstanceServer, fingerprint string, out io.Writer, alias string) {
	start := time.Now()
	name := "slipway-warm-" + fingerprint[:12]
	op, err := srv.CreateInstance(api.InstancesPost{
		Name: name, Type: api.InstanceTypeContainer,
		Source: api.InstanceSource{Type: "image", Fingerprint: fingerprint},
	})
	if err == nil {
		_, err = wait(ctx, srv, op)
	}
	if op, derr := srv.DeleteInstance(name); derr == nil {
		_, _ = wait(context.Background(), srv, op)
	}
	if err != nil {
		fmt.Fprintf(out, "image %s: could not unpack it into the storage pool ahead of time (%v); the first deploy will\n", alias, err)
		return
	}
	fmt.Fprintf(out, "  unpacked into the storage pool in %.1f s\n", time.Since(start).Seconds())
}

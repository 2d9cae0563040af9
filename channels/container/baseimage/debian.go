package baseimage

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// DebianAlias is the alias `slipway image build debian` imports, and what a
// manifest names in `image:` for Python, Node, Ruby and Go apps.
const DebianAlias = "slipway/debian"

// DebianBuilderVersion is part of every recipe key: change it whenever the
// build steps below change what lands in the image, so cached tarballs and
// imported images made by the old steps are rebuilt.
const DebianBuilderVersion = "1"

// RecipeProperty is the image property holding the recipe key, so a rerun
// can tell from Incus alone that the image under the alias is current.
const RecipeProperty = "slipway.recipe"

// DebianSuite is the release the image is made of: Debian 12, the release
// slipway's hosts run.
const DebianSuite = "bookworm"

// DebianPackages are what the image holds beyond mmdebstrap's apt variant:
// the runtimes and tools of the common app stacks, and systemd-sysv so that
// it is a standard systemd Debian image (slipway runs its own supervisor as
// init, so nothing here is started at boot). debootstrap cannot make this
// set (npm's dependency cycles fail while configuring); mmdebstrap can.
var DebianPackages = []string{
	"systemd-sysv", "python3", "python3-venv", "python3-pip", "nodejs", "npm",
	"ruby", "ruby-bundler", "golang-go", "git", "ca-certificates",
	// What an app needs for a database slipway attaches: psql, and the
	// Postgres driver of Python (Node's and Go's come with the app).
	"postgresql-client", "python3-psycopg2",
}

// DebianRecipe is everything that decides what the image holds. Its Key
// names the cached tarball and is recorded in the image.
type DebianRecipe struct {
	Suite    string   // Debian release (default bookworm)
	Mirror   string   // archive URI (default: the host's, see HostMirror)
	Variant  string   // mmdebstrap --variant (default apt)
	Packages []string // --include; NewDebianRecipe starts from DebianPackages

	// Name tells images of other recipes apart in the cache and in `incus
	// image list` ("postgres"); empty is the standard Debian image.
	Name string
	// Remove are paths (relative to the rootfs) deleted after the build:
	// what the packages' maintainer scripts made that the image must not hold.
	Remove []string
}

// NewDebianRecipe is the standard image from mirror plus the user's extra
// packages.
func NewDebianRecipe(mirror string, include []string) DebianRecipe {
	return DebianRecipe{Mirror: mirror, Packages: append(append([]string{}, DebianPackages...), include...)}.normal()
}

// normal fills in defaults and sorts and deduplicates the packages, so the
// same image asked for in different words has one key.
func (r DebianRecipe) normal() DebianRecipe {
	if r.Suite == "" {
		r.Suite = DebianSuite
	}
	if r.Mirror == "" {
		r.Mirror = DefaultMirror
	}
	r.Mirror = strings.TrimSuffix(r.Mirror, "/")
	if r.Variant == "" {
		r.Variant = "apt"
	}
	seen := map[string]bool{}
	var pkgs []string
	for _, p := range r.Packages {
		for _, p := range strings.Split(p, ",") {
			if p = strings.TrimSpace(p); p != "" && !seen[p] {
				seen[p] = true
				pkgs = append(pkgs, p)
			}
		}
	}
	sort.Strings(pkgs)
	r.Packages = pkgs
	r.Remove = append([]string{}, r.Remove...)
	sort.Strings(r.Remove)
	return r
}

// Key is a hash of the recipe and the builder version: equal keys make
// images with the same contents (up to the mirror's updates).
func (r DebianRecipe) Key() string {
	r = r.normal()
	h := sha256.New()
	fmt.Fprintf(h, "slipway-debian %s\nsuite %s\nmirror %s\nvariant %s\narch %s\npackages %s\n",
		DebianBuilderVersion, r.Suite, r.Mirror, r.Variant, arch(), strings.Join(r.Packages, ","))
	// Only named recipes add lines, so the standard image keeps the key
	// (and the cached tarball) it had before recipes had names.
	if r.Name != "" {
		fmt.Fprintf(h, "name %s\nremove %s\n", r.Name, strings.Join(r.Remove, ","))
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

// mmdebstrapArgs is the command line that makes the rootfs in dir.
func (r DebianRecipe) mmdebstrapArgs(dir string) []string {
	r = r.normal()
	args := []string{"--variant=" + r.Variant}
	if len(r.Packages) > 0 {
		args = append(args, "--include="+strings.Join(r.Packages, ","))
	}
	return append(args, r.Suite, dir, r.Mirror)
}

// description names what the image is for, for `incus image list`.
func (r DebianRecipe) description() string {
	r = r.normal()
	d := fmt.Sprintf("slipway Debian %s base image (%s)", r.Suite, r.Variant)
	if r.Name != "" {
		d = fmt.Sprintf("slipway %s image (Debian %s, %s)", r.Name, r.Suite, r.Variant)
	}
	if len(r.Packages) > 0 {
		d += ": " + strings.Join(r.Packages, " ")
	}
	return d
}

// debianMetadata is the image's metadata.yaml. Incus copies its properties
// into the image's, which is how the recipe key reaches `incus image show`.
func debianMetadata(r DebianRecipe, created time.Time) string {
	r = r.normal()
	return fmt.Sprintf("architecture: %s\ncreation_date: %d\nproperties:\n  architecture: %s\n  description: %q\n  os: debian\n  release: %s\n  variant: %s\n  %s: %s\n",
		arch(), created.Unix(), arch(), r.description(), r.Suite, r.Variant, RecipeProperty, r.Key())
}

// CachePath is where the finished tarball of r is kept under cacheDir.
func (r DebianRecipe) CachePath(cacheDir string) string {
	r = r.normal()
	name := "debian"
	if r.Name != "" {
		name = r.Name
	}
	return filepath.Join(cacheDir, name+"-"+r.Suite+"-"+r.Key()+".tar.gz")
}

// rootfsFixes make mmdebstrap's tree a slipway image: /app is where the
// runtime puts the commit's tree (tar fails without it); the host's
// hostname and resolver, which mmdebstrap copies in for the build, are
// the host's business, not the image's; apps listening on "localhost"
// need /etc/hosts, which mmdebstrap does not write; and apt's lists and
// caches are 100 MB nobody deploying needs (`apt-get update` fetches them).
func rootfsFixes(rootfs string, remove []string) error {
	if err := os.MkdirAll(filepath.Join(rootfs, "app"), 0o755); err != nil {
		return err
	}
	if err := os.Chmod(filepath.Join(rootfs, "app"), 0o755); err != nil {
		return err
	}
	for _, f := range files {
		if f.name == "etc/hosts" || f.name == "etc/resolv.conf" {
			if err := replaceFile(filepath.Join(rootfs, f.name), f.content); err != nil {
				return err
			}
		}
	}
	if err := replaceFile(filepath.Join(rootfs, "etc/hostname"), "localhost\n"); err != nil {
		return err
	}
	for _, rel := range remove {
		if err := removeInside(rootfs, rel); err != nil {
			return err
		}
	}
	for _, glob := range []string{"var/lib/apt/lists/*", "var/cache/apt/*.bin", "var/cache/apt/archives/*.deb", "var/cache/apt/archives/partial/*"} {
		matches, _ := filepath.Glob(filepath.Join(rootfs, glob))
		for _, m := range matches {
			if filepath.Base(m) == "lock" || filepath.Base(m) == "partial" {
				continue
			}
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// removeInside deletes rel below rootfs, refusing a path that would leave it.
func removeInside(rootfs, rel string) error {
	clean := filepath.Clean("/" + rel)
	if clean == "/" {
		return fmt.Errorf("remove %q: not a path inside the image", rel)
	}
	return os.RemoveAll(filepath.Join(rootfs, clean))
}

// replaceFile writes content to p as a plain 0644 file, replacing whatever
// (a symlink to the host's resolver, say) was there.
func replaceFile(p, content string) error {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.WriteFile(p, []byte(content), 0o644)
}

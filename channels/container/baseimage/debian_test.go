package baseimage

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"
)

func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The host of these machines: a deb822 debian.sources, a one-line
// backports list, a disabled third-party list.
func TestHostMirrorDeb822(t *testing.T) {
	apt := writeTree(t, map[string]string{
		"sources.list.d/debian.sources":                      "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://mirror.example/debian/\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\nComponents: main\n",
		"sources.list.d/bookworm-backports.list":             "deb http://other.example/debian bookworm-backports main\n",
		"sources.list.d/nodesource.sources.disabled-by-farm": "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: bookworm\nComponents: main\n",
	})
	if got := HostMirror(ReadAptSources(apt), "bookworm"); got != "http://mirror.example/debian" {
		t.Errorf("mirror %q", got)
	}
}

func TestHostMirrorOneLine(t *testing.T) {
	apt := writeTree(t, map[string]string{
		"sources.list": "# deb http://commented.example/debian bookworm main\n" +
			"deb-src http://src.example/debian bookworm main\n" +
			"deb http://contrib.example/debian bookworm contrib non-free\n" +
			"deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://local.example/debian bookworm main contrib # ours\n" +
			"deb http://later.example/debian bookworm main\n",
	})
	if got := HostMirror(ReadAptSources(apt), "bookworm"); got != "http://local.example/debian" {
		t.Errorf("mirror %q", got)
	}
}

func TestHostMirrorSkipsDisabledAndOtherSuites(t *testing.T) {
	apt := writeTree(t, map[string]string{
		"sources.list":                 "deb http://deb.example/debian trixie main\n",
		"sources.list.d/off.sources":   "Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nComponents: main\nEnabled: no\n",
		"sources.list.d/src.sources":   "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\nComponents: main\n",
		"sources.list.d/old.list.save": "deb http://save.example/debian bookworm main\n",
		// A blank line holding spaces still ends a stanza.
		"sources.list.d/two.sources": "Types: deb\nURIs: http://sec.example/debian-security\nSuites: bookworm-security\n  \nTypes: deb\nURIs: http://two.example/debian\nSuites: bookworm\n",
	})
	if got := HostMirror(ReadAptSources(apt), "bookworm"); got != "http://two.example/debian" {
		t.Errorf("mirror %q", got)
	}
	if got := HostMirror(ReadAptSources(t.TempDir()), "bookworm"); got != DefaultMirror {
		t.Errorf("no sources: mirror %q, want %s", got, DefaultMirror)
	}
}

func TestRecipeKey(t *testing.T) {
	base := NewDebianRecipe("http://deb.debian.org/debian", nil)
	if base.Suite != "bookworm" || base.Variant != "apt" || len(base.Packages) != len(DebianPackages) {
		t.Fatalf("recipe %+v", base)
	}
	same := []DebianRecipe{
		NewDebianRecipe("http://deb.debian.org/debian/", nil),
		NewDebianRecipe("http://deb.debian.org/debian", []string{"git", "python3,nodejs"}),
		{Suite: "bookworm", Mirror: "http://deb.debian.org/debian", Variant: "apt", Packages: append([]string{" ca-certificates "}, DebianPackages...)},
	}
	for _, r := range same {
		if r.Key() != base.Key() {
			t.Errorf("%+v: key %s, want %s (the same image in other words)", r, r.Key(), base.Key())
		}
	}
	differ := []DebianRecipe{
		NewDebianRecipe("http://mirror.example/debian", nil),
		NewDebianRecipe("http://deb.debian.org/debian", []string{"sqlite3"}),
		{Suite: "trixie", Mirror: base.Mirror, Packages: base.Packages},
		{Mirror: base.Mirror, Variant: "minbase", Packages: base.Packages},
	}
	seen := map[string]bool{base.Key(): true}
	for _, r := range differ {
		if seen[r.Key()] {
			t.Errorf("%+v: key %s collides", r, r.Key())
		}
		seen[r.Key()] = true
	}
	if p := base.CachePath("/c"); p != "/c/debian-bookworm-"+base.Key()+".tar.gz" {
		t.Errorf("cache path %s", p)
	}
}

func TestMmdebstrapArgs(t *testing.T) {
	r := NewDebianRecipe("http://deb.debian.org/debian", []string{"jq"})
	got := strings.Join(r.mmdebstrapArgs("/x/rootfs"), " ")
	want := "--variant=apt --include=ca-certificates,git,golang-go,jq,nodejs,npm,postgresql-client,python3,python3-pip,python3-psycopg2,python3-venv,ruby,ruby-bundler,systemd-sysv bookworm /x/rootfs http://deb.debian.org/debian"
	if got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
	if got := strings.Join(DebianRecipe{Variant: "minbase"}.mmdebstrapArgs("/r"), " "); got != "--variant=minbase bookworm /r "+DefaultMirror {
		t.Errorf("minbase args %s", got)
	}
}

func TestDebianMetadata(t *testing.T) {
	r := NewDebianRecipe("http://deb.debian.org/debian", nil)
	created := time.Unix(1764650000, 0)
	var meta struct {
		Architecture string            `yaml:"architecture"`
		CreationDate int64             `yaml:"creation_date"`
		Properties   map[string]string `yaml:"properties"`
	}
	if err := yaml.Unmarshal([]byte(debianMetadata(r, created)), &meta); err != nil {
		t.Fatalf("metadata.yaml does not parse: %v\n%s", err, debianMetadata(r, created))
	}
	if meta.Architecture != arch() || meta.CreationDate != created.Unix() {
		t.Errorf("metadata %+v", meta)
	}
	p := meta.Properties
	if p["os"] != "debian" || p["release"] != "bookworm" || p[RecipeProperty] != r.Key() || !strings.Contains(p["description"], "python3") {
		t.Errorf("properties %v", p)
	}
}

func TestMmdebstrapError(t *testing.T) {
	unreachable := mmdebstrapError(errors.New("exit status 1"), []string{
		"I: running apt-get update...",
		"E: Failed to fetch http://192.0.2.1/debian/dists/bookworm/InRelease  Could not connect to 192.0.2.1:80",
		"E: apt-get update --error-on=any -oAPT::Status-Fd=<$fd> -oDpkg::Use-Pty=false failed",
	}, "http://192.0.2.1/debian")
	if !errors.Is(unreachable, ErrMirrorUnreachable) || strings.Contains(unreachable.Error(), "\n") {
		t.Errorf("unreachable mirror: %v", unreachable)
	}
	badPkg := mmdebstrapError(errors.New("exit status 1"), []string{"E: Unable to locate package no-such-package", "E: apt-get failed"}, DefaultMirror)
	if errors.Is(badPkg, ErrMirrorUnreachable) || !strings.Contains(badPkg.Error(), "no-such-package") {
		t.Errorf("unknown package: %v", badPkg)
	}
}

func TestCheckMirrorUnreachable(t *testing.T) {
	// Port 1 on loopback: nothing listens, the refusal is immediate.
	err := checkMirror(t.Context(), "http://127.0.0.1:1/debian")
	if !errors.Is(err, ErrMirrorUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("err %v", err)
	}
}

// packTree keeps what a root filesystem needs: modes, numeric owners,
// symlinks, hard links as links, and extended attributes.
func TestPackTree(t *testing.T) {
	dir := writeTree(t, map[string]string{"usr/bin/tool": "#!/bin/sh\n", "etc/motd": "hi\n", "var/lib/apt/lists/deb.debian.org_Packages": "x"})
	if err := rootfsFixes(dir, nil); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o755)
	os.Symlink("tool", filepath.Join(dir, "usr/bin/alias"))
	os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool2"))
	// A filesystem without user xattrs (some tmpfs) skips that check.
	xattr := unix.Lsetxattr(filepath.Join(dir, "etc/motd"), "user.slipway", []byte("yes"), 0) == nil

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := packTree(tw, dir, "rootfs/"); err != nil {
		t.Fatal(err)
	}
	tw.Close()
	got := map[string]*tar.Header{}
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got[h.Name] = h
	}
	if h := got["rootfs/app/"]; h == nil || h.Mode&0o7777 != 0o755 {
		t.Errorf("/app: %+v", h)
	}
	if h := got["rootfs/usr/bin/tool"]; h == nil || h.Mode&0o777 != 0o755 || h.Uname != "" {
		t.Errorf("tool: %+v", h)
	}
	if h := got["rootfs/usr/bin/alias"]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("alias: %+v", h)
	}
	one, two := got["rootfs/usr/bin/tool"], got["rootfs/usr/bin/tool2"]
	if one == nil || two == nil || (one.Typeflag != tar.TypeLink && two.Typeflag != tar.TypeLink) {
		t.Errorf("hard link not kept as a link: %+v %+v", one, two)
	}
	if h := got["rootfs/etc/hosts"]; h == nil || h.Size == 0 {
		t.Errorf("/etc/hosts: %+v", h)
	}
	if _, ok := got["rootfs/var/lib/apt/lists/deb.debian.org_Packages"]; ok {
		t.Errorf("apt lists were packed")
	}
	if xattr {
		if h := got["rootfs/etc/motd"]; h == nil || h.PAXRecords["SCHILY.xattr.user.slipway"] != "yes" {
			t.Errorf("xattr lost: %+v", h)
		}
	}
}

// The reasons a build cannot start are named before minutes are spent.
func TestCheckBuildHost(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := checkBuildHost(t.Context(), DefaultMirror)
	want := ErrNoMmdebstrap
	if os.Geteuid() != 0 {
		want = ErrNeedRoot
	}
	if !errors.Is(err, want) {
		t.Errorf("err %v, want %v", err, want)
	}
	if !strings.Contains(ErrNoMmdebstrap.Error(), "apt-get install mmdebstrap") {
		t.Errorf("the error does not say how to get mmdebstrap: %v", ErrNoMmdebstrap)
	}
}

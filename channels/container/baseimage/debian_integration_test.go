package baseimage_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// requireDebianBuild skips unless this host can build a Debian image (root,
// mmdebstrap, incusd); under CI=true, where .ci/run installs all of it, it
// fails instead.
func requireDebianBuild(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root"
	} else if _, err := exec.LookPath("mmdebstrap"); err != nil {
		why = "needs mmdebstrap (apt-get install mmdebstrap)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why + " (set CI=true to make this a failure)")
}

// testProject makes a throwaway project h-img-<random> and deletes it, with
// its instances and the images in it, when the test ends, pass or fail.
// ownImages gives it its own images (features.images=true), so nothing the
// test imports can touch the host's; without, it sees the default project's.
func testProject(t *testing.T, ownImages bool) incus.InstanceServer {
	t.Helper()
	root, err := incus.ConnectIncusUnix("", nil)
	if err != nil {
		t.Fatalf("incus: %v", err)
	}
	name := "h-img-" + container.RandomSuffix()
	if err := root.CreateProject(api.ProjectsPost{Name: name, ProjectPut: api.ProjectPut{
		Config: map[string]string{"features.images": map[bool]string{true: "true", false: "false"}[ownImages], "features.profiles": "false"},
	}}); err != nil {
		t.Fatal(err)
	}
	srv := root.UseProject(name)
	t.Cleanup(func() {
		if insts, err := srv.GetInstanceNames(api.InstanceTypeAny); err == nil {
			for _, n := range insts {
				deleteInstance(srv, n)
			}
		}
		if ownImages {
			if fps, err := srv.GetImageFingerprints(); err == nil {
				for _, fp := range fps {
					if op, err := srv.DeleteImage(fp); err == nil {
						op.Wait()
					}
				}
			}
		}
		if err := root.DeleteProject(name); err != nil {
			t.Errorf("delete project %s: %v", name, err)
		}
	})
	return srv
}

func deleteInstance(srv incus.InstanceServer, name string) {
	if op, err := srv.UpdateInstanceState(name, api.InstanceStatePut{Action: "stop", Force: true}, ""); err == nil {
		op.Wait()
	}
	if op, err := srv.DeleteInstance(name); err == nil {
		op.Wait()
	}
}

// run starts an instance of image under a stand-in init (slipway's own
// supervisor is bind-mounted by the runtime, not here), runs script in it,
// and returns its output; it also returns how long the launch took.
func run(t *testing.T, srv incus.InstanceServer, image, script string) (string, time.Duration) {
	t.Helper()
	name := "t-" + container.RandomSuffix()
	start := time.Now()
	op, err := srv.CreateInstance(api.InstancesPost{
		Name: name, Type: api.InstanceTypeContainer, Start: true,
		Source:      api.InstanceSource{Type: "image", Alias: image},
		InstancePut: api.InstancePut{Config: map[string]string{"raw.lxc": "lxc.init.cmd = /bin/sleep infinity"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	defer deleteInstance(srv, name)
	var out lockedBuffer
	dataDone := make(chan bool)
	exec, err := srv.ExecInstance(name, api.InstanceExecPost{Command: []string{"sh", "-c", script}, WaitForWS: true},
		&incus.InstanceExecArgs{Stdout: &out, Stderr: &out, DataDone: dataDone})
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Wait(); err != nil {
		t.Fatal(err)
	}
	<-dataDone
	if rc, _ := exec.Get().Metadata["return"].(float64); rc != 0 {
		t.Errorf("%s exited %v:\n%s", script, rc, out.String())
	}
	return out.String(), took
}

// TestDebianImageBuildCacheAndReplace goes through `slipway image build
// debian`'s code path with a small recipe (minbase, no extra packages: the
// full image is what .ci/run builds): a damaged cached tarball is built
// again; a build replaces what the alias named and deletes it; a rerun does nothing; with the image gone, the cached
// tarball is imported without a build; and the image boots with /app and
// without apt's lists.
func TestDebianImageBuildCacheAndReplace(t *testing.T) {
	requireDebianBuild(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	srv := testProject(t, true)
	const alias = "slipway/debian-test"
	if err := baseimage.Import(ctx, srv, alias, baseimage.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	before, _, err := srv.GetImageAlias(alias)
	if err != nil {
		t.Fatal(err)
	}
	mirror := baseimage.HostMirror(baseimage.ReadAptSources("/etc/apt"), baseimage.DebianSuite)
	recipe := baseimage.DebianRecipe{Mirror: mirror, Variant: "minbase"}
	cache := t.TempDir()
	ensure := func(what string) (string, string) {
		t.Helper()
		var out bytes.Buffer
		start := time.Now()
		fp, err := baseimage.EnsureDebian(ctx, srv, baseimage.DebianOptions{Recipe: recipe, Alias: alias, CacheDir: cache, Out: &out})
		if err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out.String())
		}
		t.Logf("%s: %.1f s", what, time.Since(start).Seconds())
		return fp, out.String()
	}

	// A damaged cached tarball is built again, not trusted.
	if err := os.WriteFile(recipe.CachePath(cache), []byte("not a tarball"), 0o644); err != nil {
		t.Fatal(err)
	}
	fp, out := ensure("build")
	if !strings.Contains(out, "did not import") || !strings.Contains(out, "building Debian bookworm") || !strings.Contains(out, "| I: ") || !strings.Contains(out, "updated") {
		t.Errorf("build said:\n%s", out)
	}
	if _, err := os.Stat(recipe.CachePath(cache)); err != nil {
		t.Errorf("no cached tarball: %v", err)
	}
	if _, _, err := srv.GetImage(before.Target); !api.StatusErrorCheck(err, 404) {
		t.Errorf("the image the alias named before is still there: %v", err)
	}
	img, _, err := srv.GetImage(fp)
	if err != nil {
		t.Fatal(err)
	}
	if img.Properties[baseimage.RecipeProperty] != recipe.Key() || img.Properties["os"] != "debian" || img.Properties["release"] != "bookworm" {
		t.Errorf("image properties %v", img.Properties)
	}

	if again, out := ensure("rerun"); again != fp || !strings.Contains(out, "already up to date") || strings.Contains(out, "building") {
		t.Errorf("rerun made %s (had %s):\n%s", again, fp, out)
	}

	if err := srv.DeleteImageAlias(alias); err != nil {
		t.Fatal(err)
	}
	if op, err := srv.DeleteImage(fp); err != nil || op.Wait() != nil {
		t.Fatalf("delete image: %v", err)
	}
	if cached, out := ensure("from the cache"); cached != fp || !strings.Contains(out, "using the cached build") || strings.Contains(out, "mmdebstrap") {
		t.Errorf("cached import made %s (built %s):\n%s", cached, fp, out)
	}

	got, _ := run(t, srv, alias, "stat -c %a /app; ls /var/lib/apt/lists; grep -c localhost /etc/hosts; . /etc/os-release; echo $VERSION_CODENAME")
	if f := strings.Fields(got); len(f) < 4 || f[0] != "755" || f[len(f)-1] != "bookworm" || strings.Contains(got, "Packages") {
		t.Errorf("instance: %q", got)
	}
}

// TestDebianImageRuntimes checks the full slipway/debian, when this host
// has it (.ci/run builds it before the tests): the runtimes it promises run.
func TestDebianImageRuntimes(t *testing.T) {
	container.RequireIncus(t)
	srv := testProject(t, false)
	if _, _, err := srv.GetImageAlias(baseimage.DebianAlias); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not there: .ci/run builds it before the tests", baseimage.DebianAlias)
		}
		t.Skipf("no %s here (slipway image build debian makes it)", baseimage.DebianAlias)
	}
	got, took := run(t, srv, baseimage.DebianAlias, "python3 --version; python3 -m venv --help >/dev/null && echo venv; node --version; npm --version; ruby --version; bundle --version; go version; git --version; stat -c %a /app")
	t.Logf("launch: %.2f s\n%s", took.Seconds(), got)
	for _, want := range []string{"Python 3.11", "venv", "v18.", "ruby 3.1", "Bundler", "go1.19", "git version", "755"} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
}

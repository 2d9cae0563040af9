package baseimage_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

func requireBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(baseimage.DefaultBusybox); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("busybox-static is not installed: %v", err)
		}
		t.Skip("needs busybox-static (/bin/busybox)")
	}
}

func TestBuildBusybox(t *testing.T) {
	requireBusybox(t)
	var a, b bytes.Buffer
	if err := baseimage.BuildBusybox(&a, baseimage.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	if err := baseimage.BuildBusybox(&b, baseimage.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two builds from the same busybox differ")
	}

	gz, err := gzip.NewReader(&a)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	entries := map[string]*tar.Header{}
	contents := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		entries[h.Name] = h
		if h.Typeflag == tar.TypeReg && h.Size < 4096 {
			body, _ := io.ReadAll(tr)
			contents[h.Name] = string(body)
		}
	}
	if m := contents["metadata.yaml"]; !strings.Contains(m, "architecture: x86_64") || !strings.Contains(m, "creation_date: ") || !strings.Contains(m, "os: busybox") {
		t.Errorf("metadata.yaml:\n%s", m)
	}
	for _, name := range []string{"rootfs/bin/busybox", "rootfs/etc/passwd", "rootfs/etc/group", "rootfs/etc/hosts", "rootfs/etc/inittab", "rootfs/etc/slipway/run", "rootfs/etc/slipway/receive"} {
		if entries[name] == nil {
			t.Errorf("missing %s", name)
		}
	}
	for _, dir := range []string{"dev", "proc", "sys", "tmp", "run", "root", "app", "etc/slipway", "var"} {
		if h := entries["rootfs/"+dir+"/"]; h == nil || h.Typeflag != tar.TypeDir {
			t.Errorf("missing directory /%s", dir)
		}
	}
	if h := entries["rootfs/tmp/"]; h != nil && h.Mode != 0o1777 {
		t.Errorf("/tmp mode %o, want 1777", h.Mode)
	}
	for _, link := range []string{"rootfs/sbin/init", "rootfs/bin/sh", "rootfs/usr/sbin/httpd", "rootfs/sbin/ip"} {
		if h := entries[link]; h == nil || h.Typeflag != tar.TypeSymlink || h.Linkname != "/bin/busybox" {
			t.Errorf("%s is not a symlink to /bin/busybox: %+v", link, h)
		}
	}
	if !strings.Contains(contents["rootfs/etc/inittab"], "::sysinit:/sbin/ip link set lo up") {
		t.Errorf("inittab does not bring lo up:\n%s", contents["rootfs/etc/inittab"])
	}
	if !strings.Contains(contents["rootfs/etc/inittab"], "::respawn:/etc/slipway/run") {
		t.Errorf("inittab does not run the app runner:\n%s", contents["rootfs/etc/inittab"])
	}
	if !strings.Contains(contents["rootfs/etc/slipway/run"], "/etc/slipway/receive &") {
		t.Errorf("the runner does not start the app receiver:\n%s", contents["rootfs/etc/slipway/run"])
	}
	if !strings.Contains(contents["rootfs/etc/hosts"], "127.0.0.1\tlocalhost") {
		t.Errorf("hosts:\n%s", contents["rootfs/etc/hosts"])
	}
	if !strings.Contains(contents["rootfs/etc/passwd"], "nobody:") || !strings.HasPrefix(contents["rootfs/etc/passwd"], "root:x:0:0:") {
		t.Errorf("passwd:\n%s", contents["rootfs/etc/passwd"])
	}
}

// TestImport imports the image twice into a throwaway project that keeps its
// own images, under a test alias, and launches it.
func TestImport(t *testing.T) {
	requireBusybox(t)
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root, err := incus.ConnectIncusUnix("", nil)
	if err != nil {
		t.Fatalf("incus: %v", err)
	}
	var b [4]byte
	rand.Read(b[:])
	project := "slipway-test-" + hex.EncodeToString(b[:])
	if err := root.CreateProject(api.ProjectsPost{Name: project, ProjectPut: api.ProjectPut{
		Config: map[string]string{"features.images": "true", "features.profiles": "false"},
	}}); err != nil {
		t.Fatal(err)
	}
	srv := root.UseProject(project)
	t.Cleanup(func() {
		if insts, err := srv.GetInstanceNames(api.InstanceTypeAny); err == nil {
			for _, name := range insts {
				if op, err := srv.UpdateInstanceState(name, api.InstanceStatePut{Action: "stop", Force: true}, ""); err == nil {
					op.Wait()
				}
				if op, err := srv.DeleteInstance(name); err == nil {
					op.Wait()
				}
			}
		}
		if fps, err := srv.GetImageFingerprints(); err == nil {
			for _, fp := range fps {
				if op, err := srv.DeleteImage(fp); err == nil {
					op.Wait()
				}
			}
		}
		if err := root.DeleteProject(project); err != nil {
			t.Errorf("delete project %s: %v", project, err)
		}
	})

	const alias = "slipway/busybox-test"
	start := time.Now()
	if err := baseimage.Import(ctx, srv, alias, baseimage.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	t.Logf("import: %v", time.Since(start))
	entry, _, err := srv.GetImageAlias(alias)
	if err != nil {
		t.Fatal(err)
	}
	// Importing again changes nothing.
	if err := baseimage.Import(ctx, srv, alias, baseimage.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	fps, _ := srv.GetImageFingerprints()
	if again, _, _ := srv.GetImageAlias(alias); len(fps) != 1 || again.Target != entry.Target {
		t.Errorf("second import: images %v, alias -> %s (was %s)", fps, again.Target, entry.Target)
	}

	op, err := srv.CreateInstance(api.InstancesPost{
		Name: "t-boot", Type: api.InstanceTypeContainer, Start: true,
		Source: api.InstanceSource{Type: "image", Alias: alias},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.Wait(); err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	dataDone := make(chan bool)
	exec, err := srv.ExecInstance("t-boot", api.InstanceExecPost{Command: []string{"sh", "-c", "ip -o addr show lo; ls -ld /tmp; cat /etc/hostname 2>/dev/null; ps"}, WaitForWS: true},
		&incus.InstanceExecArgs{Stdout: &out, Stderr: &out, DataDone: dataDone})
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Wait(); err != nil {
		t.Fatal(err)
	}
	<-dataDone
	if s := out.String(); !strings.Contains(s, "inet 127.0.0.1/8") || !strings.Contains(s, "drwxrwxrwt") || !strings.Contains(s, "/etc/slipway/run") {
		t.Errorf("booted image: %q (exit %v)", s, exec.Get().Metadata["return"])
	}
}

// lockedBuffer is safe for the Incus client's separate stdout and stderr
// copiers (a shared bytes.Buffer is not: both call its ReadFrom at once).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

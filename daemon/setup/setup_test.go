package setup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

func writeFiles(t *testing.T, files map[string]string) string {
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

const debianSources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
`

func TestInstallPlanAddsBackportsFromTheHostsMirror(t *testing.T) {
	apt := writeFiles(t, map[string]string{"sources.list.d/debian.sources": debianSources})
	p := installPlan(map[string]string{"VERSION_CODENAME": "bookworm"}, apt)
	if p.suite != "bookworm-backports" {
		t.Errorf("suite %q", p.suite)
	}
	if want := filepath.Join(apt, "sources.list.d", "bookworm-backports.list"); p.sourcesFile != want {
		t.Errorf("sources file %q, want %q", p.sourcesFile, want)
	}
	if !strings.Contains(p.sourcesLine, "\ndeb http://mirror.example/debian bookworm-backports main\n") {
		t.Errorf("sources line %q", p.sourcesLine)
	}
	script := p.script()
	for _, want := range []string{
		"echo 'deb http://mirror.example/debian bookworm-backports main' > " + p.sourcesFile,
		"apt-get update",
		"DEBIAN_FRONTEND=noninteractive apt-get install -y -t bookworm-backports --no-install-recommends incus-base btrfs-progs busybox-static",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
}

func TestInstallPlanKeepsExistingBackports(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"one-line": {"sources.list": "deb http://deb.debian.org/debian bookworm main\n", "sources.list.d/backports.list": "deb http://deb.debian.org/debian bookworm-backports main\n"},
		"options":  {"sources.list": "deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm-backports main contrib\n"},
		"deb822":   {"sources.list.d/debian.sources": debianSources + "\nTypes: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm-backports\nComponents: main\n"},
	} {
		t.Run(name, func(t *testing.T) {
			p := installPlan(map[string]string{"VERSION_CODENAME": "bookworm"}, writeFiles(t, files))
			if p.suite != "bookworm-backports" || p.sourcesFile != "" {
				t.Errorf("plan %+v, want backports without a new sources file", p)
			}
		})
	}
}

func TestInstallPlanIgnoresDisabledSources(t *testing.T) {
	apt := writeFiles(t, map[string]string{
		"sources.list":                           "# deb http://deb.debian.org/debian bookworm-backports main\n",
		"sources.list.d/old.list.disabled":       "deb http://deb.debian.org/debian bookworm-backports main\n",
		"sources.list.d/off.sources":             "Types: deb\nURIs: http://x/debian\nSuites: bookworm-backports\nEnabled: no\n",
		"sources.list.d/src.sources":             "Types: deb-src\nURIs: http://x/debian\nSuites: bookworm-backports\n",
		"sources.list.d/nothing-to-see-here.txt": "deb http://deb.debian.org/debian bookworm-backports main\n",
	})
	p := installPlan(map[string]string{"VERSION_CODENAME": "bookworm"}, apt)
	if p.sourcesFile == "" {
		t.Fatal("treated a disabled or commented-out backports entry as configured")
	}
	if !strings.Contains(p.sourcesLine, "deb http://deb.debian.org/debian bookworm-backports main") {
		t.Errorf("without a bookworm source, use Debian's own mirror: %q", p.sourcesLine)
	}
}

func TestInstallPlanLaterDebianUsesMain(t *testing.T) {
	p := installPlan(map[string]string{"VERSION_CODENAME": "trixie"}, t.TempDir())
	if p.suite != "" || p.sourcesFile != "" {
		t.Errorf("plan %+v", p)
	}
	if got := strings.Join(p.install(), " "); got != "apt-get install -y --no-install-recommends incus-base btrfs-progs busybox-static" {
		t.Errorf("install: %s", got)
	}
}

func TestReadOSRelease(t *testing.T) {
	dir := writeFiles(t, map[string]string{"os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n"})
	got := readOSRelease(filepath.Join(dir, "os-release"))
	if got["VERSION_CODENAME"] != "bookworm" || got["PRETTY_NAME"] != "Debian GNU/Linux 12 (bookworm)" {
		t.Errorf("%v", got)
	}
}

func TestPoolDriver(t *testing.T) {
	withBtrfs := "nodev\tsysfs\nnodev\ttmpfs\n\text4\n\tbtrfs\n"
	if d, _ := poolDriver(withBtrfs, true); d != "btrfs" {
		t.Errorf("kernel btrfs + mkfs.btrfs: %s", d)
	}
	if d, why := poolDriver(withBtrfs, false); d != "dir" || !strings.Contains(why, "btrfs-progs") {
		t.Errorf("no mkfs.btrfs: %s (%s)", d, why)
	}
	if d, why := poolDriver("nodev\tsysfs\n\text4\n", true); d != "dir" || !strings.Contains(why, "kernel") {
		t.Errorf("no kernel btrfs: %s (%s)", d, why)
	}
}

func TestRootDisk(t *testing.T) {
	name, pool := rootDisk(map[string]map[string]string{
		"eth0": {"type": "nic"},
		"data": {"type": "disk", "path": "/data", "pool": "x"},
		"root": {"type": "disk", "path": "/", "pool": "slipway"},
	})
	if name != "root" || pool != "slipway" {
		t.Errorf("rootDisk = %q, %q", name, pool)
	}
	if name, _ := rootDisk(map[string]map[string]string{"eth0": {"type": "nic"}}); name != "" {
		t.Errorf("found a root disk in a profile without one: %q", name)
	}
}

// TestRunIsIdempotent runs setup against the live incusd twice: after the
// first run every step is in place, so the second reports only "already"
// (the last line, about the Debian image setup was not asked to build,
// either says it is there or offers it).
func TestRunIsIdempotent(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd (set CI=true to make this a failure)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var systemctl []string
	opts := Options{DataDir: t.TempDir(), Systemd: fakeSystemd(t, true, &systemctl)}
	var first, second bytes.Buffer
	if err := Run(ctx, opts, &first); err != nil {
		t.Fatalf("first run: %v\n%s", err, first.String())
	}
	t.Logf("first run:\n%s", first.String())
	if err := Run(ctx, opts, &second); err != nil {
		t.Fatalf("second run: %v\n%s", err, second.String())
	}
	t.Logf("second run:\n%s", second.String())
	lines := strings.Split(strings.TrimSpace(second.String()), "\n")
	if len(lines) != 6 {
		t.Errorf("second run printed %d lines, want 6 (incus, incusd, profile, image, systemd units, Debian image)", len(lines))
	}
	for i, line := range lines {
		offer := i == 5 && strings.Contains(line, "`slipway image build debian` makes slipway/debian for Python, Node, Ruby and Go apps")
		if !strings.Contains(line, ": already ") && !offer {
			t.Errorf("second run changed something: %q", line)
		}
	}
	for i, prefix := range []string{"incus: ", "incusd: ", "profile default: ", "image slipway/busybox: ", "systemd units: ", "image slipway/debian: "} {
		if i < len(lines) && !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], prefix)
		}
	}
}

// TestRootDiskOnNewPool runs the storage step against a project with its own
// default profile (no root disk) and a throwaway pool, then launches an
// instance on it.
func TestRootDiskOnNewPool(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd (set CI=true to make this a failure)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := container.EnsureBaseImage(ctx, container.TestImage, baseimage.DefaultBusybox); err != nil {
		t.Fatal(err)
	}
	// The client keeps the context it was made with for every request,
	// including the clean-up's after ctx is cancelled.
	root, err := container.ConnectServer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	name := "slipway-test-" + container.RandomSuffix()
	if err := root.CreateProject(api.ProjectsPost{Name: name, ProjectPut: api.ProjectPut{
		Config: map[string]string{"features.images": "false", "features.profiles": "true"},
	}}); err != nil {
		t.Fatal(err)
	}
	var rt *container.Incus
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if rt != nil {
			if err := rt.DeleteProject(ctx); err != nil {
				t.Errorf("delete project: %v", err)
			}
			rt.Close()
		} else if err := root.DeleteProject(name); err != nil {
			t.Errorf("delete project: %v", err)
		}
		// Launching cached the image on the pool: remove that first.
		if vols, err := root.GetStoragePoolVolumes(name); err == nil {
			for _, v := range vols {
				if v.Type == "image" {
					if err := root.DeleteStoragePoolVolume(name, v.Type, v.Name); err != nil {
						t.Errorf("delete image volume %s: %v", v.Name, err)
					}
				}
			}
		}
		if err := root.DeleteStoragePool(name); err != nil && !api.StatusErrorCheck(err, 404) {
			t.Errorf("delete pool %s: %v", name, err)
		}
		root.Disconnect()
	})

	if rt, err = container.Connect(name, container.SupervisorForTest(t), nil); err != nil {
		t.Fatal(err)
	}

	opts := Options{Pool: name, PoolSize: "1GiB"}
	opts.defaults()
	var out bytes.Buffer
	h := host{opts: opts, out: &out, log: opts.Logger}
	srv := root.UseProject(name)
	if err := h.ensureRootDisk(srv); err != nil {
		t.Fatal(err)
	}
	driver, _ := poolDriver(readFile("/proc/filesystems"), haveCommand("mkfs.btrfs"))
	want := "storage pool " + name + ": " + driver
	if !strings.HasPrefix(out.String(), want) || !strings.Contains(out.String(), "profile default: root disk on pool "+name+"\n") {
		t.Errorf("output:\n%s\nwant a line starting %q", out.String(), want)
	}
	out.Reset()
	if err := h.ensureRootDisk(srv); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "profile default: already has a root disk (pool "+name+")\n" {
		t.Errorf("second run: %q", got)
	}
	if err := rt.Launch(ctx, "t-pool", container.TestImage, nil); err != nil {
		t.Fatalf("launch on the new pool: %v", err)
	}
	inst, _, err := srv.GetInstance("t-pool")
	if err != nil {
		t.Fatal(err)
	}
	if pool := inst.ExpandedDevices["root"]["pool"]; pool != name {
		t.Errorf("instance root disk on pool %q, want %q", pool, name)
	}
}

func TestStartDetached(t *testing.T) {
	log := filepath.Join(t.TempDir(), "d", "daemon.log")
	pid, err := startDetached(log, "/bin/sh", "-c", "echo started; exec sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	deadline := time.Now().Add(5 * time.Second)
	for readFile(log) != "started\n" {
		if time.Now().After(deadline) {
			t.Fatalf("log %q", readFile(log))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Its own session: field 6 of /proc/PID/stat is the session id.
	stat := strings.Fields(readFile(fmt.Sprintf("/proc/%d/stat", pid)))
	if len(stat) < 6 || stat[5] != fmt.Sprint(pid) {
		t.Errorf("session of %d: %v", pid, stat)
	}
}

func TestWaitReady(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd (set CI=true to make this a failure)")
	}
	srv, err := waitReady(context.Background(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Disconnect()
	// The connection must outlive the wait: setup goes on using it.
	if _, _, err := srv.GetProfile("default"); err != nil {
		t.Fatalf("request after waitReady: %v", err)
	}
}

// A new base image replaces the old one (`slipway image` after an upgrade):
// the alias moves and the old image is deleted, so updates do not pile
// images up.
func TestUpdatedImageReplacesTheOld(t *testing.T) {
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd (set CI=true to make this a failure)")
	}
	ctx := context.Background()
	srv, err := waitReady(ctx, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Disconnect()
	// Two busybox copies that differ only in mtime make two images.
	dir := t.TempDir()
	bin, err := os.ReadFile(baseimage.DefaultBusybox)
	if err != nil {
		t.Fatal(err)
	}
	copyAt := func(name string, mtime time.Time) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, bin, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtime, mtime)
		return p
	}
	alias := "slipway-test/" + container.RandomSuffix()
	var fingerprints []string
	t.Cleanup(func() {
		srv.DeleteImageAlias(alias)
		for _, fp := range fingerprints {
			if op, err := srv.DeleteImage(fp); err == nil {
				op.Wait()
			}
		}
	})
	for i, mtime := range []time.Time{time.Unix(1e9, 0), time.Unix(1e9+60, 0)} {
		opts := Options{DataDir: dir, Image: alias, BusyboxPath: copyAt(fmt.Sprint("busybox", i), mtime)}
		var out bytes.Buffer
		if err := Image(ctx, opts, &out); err != nil { // what `slipway image` runs
			t.Fatal(err)
		}
		if want := []string{"imported", "updated"}[i]; !strings.Contains(out.String(), "image "+alias+": "+want) {
			t.Errorf("slipway image said %q, want %q", out.String(), want)
		}
		fp, err := baseimage.Fingerprint(opts.BusyboxPath)
		if err != nil {
			t.Fatal(err)
		}
		fingerprints = append(fingerprints, fp)
	}
	if fingerprints[0] == fingerprints[1] {
		t.Fatal("the two busybox copies made the same image")
	}
	if entry, _, err := srv.GetImageAlias(alias); err != nil || entry.Target != fingerprints[1] {
		t.Fatalf("alias: %+v %v, want %s", entry, err, fingerprints[1])
	}
	if _, _, err := srv.GetImage(fingerprints[0]); !api.StatusErrorCheck(err, 404) {
		t.Errorf("the replaced image is still there: %v", err)
	}
}

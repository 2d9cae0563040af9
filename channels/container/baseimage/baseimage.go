// Package baseimage builds slipway's smallest base image: a busybox-static
// rootfs booted by busybox init, packed as an Incus unified image tarball, and
// imports it into an Incus server with the Go client.
//
// No image server is reachable from the machines slipway targets, so the base
// image is made locally from Debian's busybox-static (a 2 MB binary). The
// resulting container boots in about a quarter of a second. It lives beside
// the runtime (package container) because its runner and receiver are the
// other end of what the runtime writes and sends into every instance.
package baseimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"runtime"
	"sort"
	"strings"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container/incusop"
)

// DefaultAlias is the image alias that `slipway setup` imports and example
// manifests name in `image:`.
const DefaultAlias = "slipway/busybox"

// DefaultBusybox is where Debian's busybox-static puts its binary.
const DefaultBusybox = "/bin/busybox"

// Inittab is the base image's /etc/inittab. The container's loopback
// interface is down until something brings it up, and apps listen on
// 127.0.0.1, so that is the first thing sysinit does. The app's web process
// runs under init through Runner (see there). Incus stops a container with
// SIGPWR, which busybox init treats like poweroff: it runs the ::shutdown:
// actions, sends TERM then KILL to everything and exits. Incus restarts one
// with SIGINT, which busybox init maps to ::ctrlaltdel:.
const Inittab = `# slipway base image: read by busybox init (PID 1).
::sysinit:/sbin/ip link set lo up
::respawn:/etc/slipway/run
::ctrlaltdel:/sbin/reboot
::shutdown:/bin/sync
`

// Runner is /etc/slipway/run, the image's side of slipway's "start the app
// under the image's supervisor". The runtime writes the app's web process as
// /etc/slipway/web (cd /app, export the app's env, write its pid to
// /run/slipway/web.pid, exec the command) and then writes a line into the
// FIFO /run/slipway/start.
const Runner = `#!/bin/sh
# slipway app runner, run by busybox init from boot (::respawn: in
# /etc/inittab). It becomes the app's web process, /etc/slipway/web, as soon
# as slipway has written that, and init runs it again whenever it exits, so
# a crashed app is restarted (after busybox init's one-second pause).
#
# Why not append a ::respawn: line and send init SIGHUP: busybox init sleeps
# one second after every signal before it starts respawn entries, which would
# add a second to every deploy. Here slipway writes the script, then a line
# into the FIFO, and the read returns at once. The FIFO is opened read-write,
# so neither side ever blocks in open(), and the script is checked after the
# FIFO is open, so a wake-up sent before that is not needed; the read also
# times out every second, so nothing can wait forever.
#
# Every process start costs 15 ms on a small VM, and an instance started from
# a kept image runs this at boot on its way to serving, so the common path
# uses shell builtins only: the pid file of a web process before this boot is
# emptied by a redirection, and the receiver is started only when there is an
# app to receive.
fifo=/run/slipway/start
[ -d /run/slipway ] || mkdir -p /run/slipway
: >/run/slipway/web.pid
if [ ! -x /etc/slipway/web ]; then
	[ -p $fifo ] || mkfifo -m 600 $fifo 2>/dev/null || [ -p $fifo ] || exec sleep 1
	[ -e /run/slipway/delivery ] || /etc/slipway/receive &
	exec 3<>$fifo
	until [ -x /etc/slipway/web ]; do
		read -r -t 1 _ <&3
	done
	exec 3<&-
fi
# Sourced rather than run: this shell becomes the web process, one process
# start fewer (15 ms on a small VM) on every start of the app.
. /etc/slipway/web
`

// Receiver is /etc/slipway/receive, started by the runner while the
// instance has no app yet. A fresh instance gets
// its app through the FIFO /run/slipway/deliver: slipway opens it from the
// host and writes one tar holding app/ (the commit's tree) and
// etc/slipway/web.new (the web process), which costs no Incus exec (a tenth
// of a second each). The outcome goes to /run/slipway/delivery for slipway
// to read, then the runner is woken through its FIFO to start the app.
const Receiver = `#!/bin/sh
# slipway app receiver, started by the runner while the instance has no app:
# unpacks the one delivery slipway writes into /run/slipway/deliver, then
# wakes the runner.
[ -e /etc/slipway/web ] && exit 0
d=/run/slipway
umask 022
mkdir -p $d /etc/slipway
[ -p $d/deliver ] || mkfifo -m 600 $d/deliver || exit 1
r=failed
if tar -x -f $d/deliver -C / 2>$d/delivery.err && [ -s /etc/slipway/web.new ]; then
	chmod 755 /etc/slipway/web.new && mv -f /etc/slipway/web.new /etc/slipway/web && r=ok
fi
echo $r >$d/delivery.new && mv -f $d/delivery.new $d/delivery
[ -p $d/start ] || mkfifo -m 600 $d/start 2>/dev/null
[ -p $d/start ] && exec 3<>$d/start && echo start >&3
exit 0
`

// dirs are the directories every slipway base image has, with their modes.
var dirs = []struct {
	name string
	mode int64
}{
	{"bin", 0o755}, {"sbin", 0o755}, {"usr", 0o755}, {"usr/bin", 0o755}, {"usr/sbin", 0o755},
	{"dev", 0o755}, {"proc", 0o555}, {"sys", 0o555}, {"tmp", 0o1777}, {"run", 0o755},
	{"root", 0o700}, {"app", 0o755}, {"etc", 0o755}, {"etc/slipway", 0o755}, {"run/slipway", 0o755},
	{"var", 0o755}, {"var/log", 0o755}, {"var/tmp", 0o1777}, {"home", 0o755},
}

// files are the small configuration files of the image.
var files = []struct {
	name, content string
}{
	{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
	{"etc/group", "root:x:0:\nnobody:x:65534:\nnogroup:x:65534:\n"},
	{"etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
	{"etc/inittab", Inittab},
	// Without a resolver config busybox tools try 127.0.0.1:53 anyway; make
	// that explicit rather than surprising.
	{"etc/resolv.conf", "nameserver 127.0.0.1\n"},
}

// BuildBusybox writes a gzip-compressed Incus unified image tarball
// (metadata.yaml + rootfs/) built around the busybox binary at busyboxPath.
// The output depends only on that binary: every timestamp is its mtime, so
// building twice from the same busybox gives the same bytes and the same
// Incus fingerprint.
func BuildBusybox(w io.Writer, busyboxPath string) error {
	if busyboxPath == "" {
		busyboxPath = DefaultBusybox
	}
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	st, err := os.Stat(busyboxPath)
	if err != nil {
		return fmt.Errorf("read busybox: %w", err)
	}
	applets, err := listApplets(busyboxPath)
	if err != nil {
		return err
	}
	mtime := st.ModTime().UTC().Truncate(time.Second)
	version := busyboxVersion(busyboxPath)

	gz, err := gzip.NewWriterLevel(w, gzip.BestCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	hdr := func(h *tar.Header) error {
		h.ModTime = mtime
		h.Format = tar.FormatPAX
		return tw.WriteHeader(h)
	}

	desc := "slipway busybox base image"
	if version != "" {
		desc += " (" + version + ")"
	}
	meta := fmt.Sprintf("architecture: %s\ncreation_date: %d\nproperties:\n  description: %q\n  os: busybox\n  release: %q\n  architecture: %s\n",
		arch(), mtime.Unix(), desc, strings.TrimPrefix(version, "v"), arch())
	if err := writeFile(hdr, tw, "metadata.yaml", 0o644, []byte(meta)); err != nil {
		return err
	}
	if err := hdr(&tar.Header{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	for _, d := range dirs {
		if err := hdr(&tar.Header{Name: "rootfs/" + d.name + "/", Typeflag: tar.TypeDir, Mode: d.mode}); err != nil {
			return err
		}
	}
	if err := writeFile(hdr, tw, "rootfs/bin/busybox", 0o755, bin); err != nil {
		return err
	}
	for _, f := range files {
		if err := writeFile(hdr, tw, "rootfs/"+f.name, 0o644, []byte(f.content)); err != nil {
			return err
		}
	}
	if err := writeFile(hdr, tw, "rootfs/etc/slipway/run", 0o755, []byte(Runner)); err != nil {
		return err
	}
	if err := writeFile(hdr, tw, "rootfs/etc/slipway/receive", 0o755, []byte(Receiver)); err != nil {
		return err
	}
	for _, a := range applets {
		if err := hdr(&tar.Header{Name: "rootfs/" + a, Typeflag: tar.TypeSymlink, Linkname: "/bin/busybox", Mode: 0o777}); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("write image tarball: %w", err)
	}
	if err := gz.Close(); err != nil {
		return fmt.Errorf("write image tarball: %w", err)
	}
	return nil
}

// arch names the host's architecture the way Incus image metadata does. The
// image holds the host's own busybox, so it is the host's architecture.
func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	case "386":
		return "i686"
	}
	return runtime.GOARCH
}

func writeFile(hdr func(*tar.Header) error, tw *tar.Writer, name string, mode int64, data []byte) error {
	if err := hdr(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data))}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}

// listApplets returns the rootfs paths (e.g. "usr/bin/env") of busybox's
// applets, sorted, from `busybox --list-full`; builds without that flag fall
// back to `--list` with everything in bin/.
func listApplets(busyboxPath string) ([]string, error) {
	out, err := exec.Command(busyboxPath, "--list-full").Output()
	full := err == nil
	if !full {
		out, err = exec.Command(busyboxPath, "--list").Output()
		if err != nil {
			return nil, fmt.Errorf("list busybox applets with %s --list: %w", busyboxPath, err)
		}
	}
	seen := map[string]bool{"bin/busybox": true}
	var applets []string
	for _, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p := path.Clean(strings.TrimPrefix(line, "/"))
		if !full || !strings.Contains(p, "/") {
			// --list gives bare names; --list-full puts a few (linuxrc) at
			// the root. Keep the root tidy: those go to bin/.
			p = "bin/" + path.Base(p)
		}
		if strings.HasPrefix(p, "..") || seen[p] {
			continue
		}
		dir := path.Dir(p)
		if dir != "bin" && dir != "sbin" && dir != "usr/bin" && dir != "usr/sbin" {
			p = "bin/" + path.Base(p)
			if seen[p] {
				continue
			}
		}
		seen[p] = true
		applets = append(applets, p)
	}
	if len(applets) == 0 {
		return nil, errors.New("busybox lists no applets")
	}
	if !seen["sbin/init"] && !seen["bin/init"] {
		return nil, errors.New("this busybox has no init applet")
	}
	if !seen["sbin/init"] {
		applets = append(applets, "sbin/init")
	}
	sort.Strings(applets)
	return applets, nil
}

func busyboxVersion(busyboxPath string) string {
	out, _ := exec.Command(busyboxPath).Output()
	first, _, _ := strings.Cut(string(out), "\n")
	// "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary."
	f := strings.Fields(first)
	if len(f) >= 2 && f[0] == "BusyBox" {
		return f[1]
	}
	return ""
}

// Import builds the busybox image and makes alias point at it in srv's
// project. An image with the same fingerprint is reused; an alias that points
// elsewhere is moved (the image it pointed at is left in place: instances may
// still be made from it by fingerprint, and `incus image delete` is the
// operator's call).
func Import(ctx context.Context, srv incus.InstanceServer, alias string, busyboxPath string) error {
	if alias == "" {
		alias = DefaultAlias
	}
	tarball, fingerprint, err := build(busyboxPath)
	if err != nil {
		return err
	}

	fingerprint, err = importTarball(ctx, srv, bytes.NewReader(tarball), "slipway-busybox.tar.gz", fingerprint)
	if err != nil {
		return err
	}
	return pointAlias(srv, alias, fingerprint, "slipway busybox base image")
}

// importTarball imports a unified image tarball whose sha256 is fingerprint,
// unless srv has that image already, and returns the image's fingerprint.
func importTarball(ctx context.Context, srv incus.InstanceServer, tarball io.Reader, filename, fingerprint string) (string, error) {
	if _, _, err := srv.GetImage(fingerprint); err == nil {
		return fingerprint, nil
	} else if !api.StatusErrorCheck(err, 404) {
		return "", fmt.Errorf("look up image %s: %w", fingerprint[:12], err)
	}
	op, err := srv.CreateImage(api.ImagesPost{Filename: filename}, &incus.ImageCreateArgs{
		MetaFile: tarball,
		MetaName: filename,
		Type:     string(api.InstanceTypeContainer),
	})
	if err != nil {
		return "", fmt.Errorf("import image: %w", err)
	}
	final, err := wait(ctx, srv, op)
	if err != nil {
		// A concurrent import of the same bytes wins the race.
		if _, _, gerr := srv.GetImage(fingerprint); gerr != nil {
			return "", fmt.Errorf("import image: %w", err)
		}
	} else if fp, _ := final.Metadata["fingerprint"].(string); fp != "" {
		fingerprint = fp
	}
	return fingerprint, nil
}

// pointAlias makes alias name the image fingerprint, creating or moving it.
// The image an alias pointed at before is left in place: instances may
// still be made from it by fingerprint; deleting it is the caller's call.
func pointAlias(srv incus.InstanceServer, alias, fingerprint, description string) error {
	entry, etag, err := srv.GetImageAlias(alias)
	switch {
	case err == nil && entry.Target == fingerprint:
		return nil
	case err == nil:
		err = srv.UpdateImageAlias(alias, api.ImageAliasesEntryPut{Target: fingerprint, Description: entry.Description}, etag)
	case api.StatusErrorCheck(err, 404):
		err = srv.CreateImageAlias(api.ImageAliasesPost{ImageAliasesEntry: api.ImageAliasesEntry{
			Name: alias,
			Type: string(api.InstanceTypeContainer),
			ImageAliasesEntryPut: api.ImageAliasesEntryPut{
				Target:      fingerprint,
				Description: description,
			},
		}})
	}
	if err != nil {
		if entry, _, gerr := srv.GetImageAlias(alias); gerr == nil && entry.Target == fingerprint {
			return nil // made by a concurrent import
		}
		return fmt.Errorf("point image alias %s at %s: %w", alias, fingerprint[:12], err)
	}
	return nil
}

// Fingerprint is the Incus fingerprint (the tarball's sha256) of the image
// BuildBusybox makes from busyboxPath: comparing it with an alias's target
// tells whether the imported image is current.
func Fingerprint(busyboxPath string) (string, error) {
	_, fp, err := build(busyboxPath)
	return fp, err
}

func build(busyboxPath string) ([]byte, string, error) {
	var buf bytes.Buffer
	if err := BuildBusybox(&buf, busyboxPath); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(buf.Bytes())
	return buf.Bytes(), hex.EncodeToString(sum[:]), nil
}

// wait waits for op in srv's project (see incusop.Wait).
func wait(ctx context.Context, srv incus.InstanceServer, op incus.Operation) (*api.Operation, error) {
	project := ""
	if info, err := srv.GetConnectionInfo(); err == nil {
		project = info.Project
	}
	return incusop.Wait(ctx, srv, project, op, 30)
}

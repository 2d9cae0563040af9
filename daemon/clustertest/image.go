package clustertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// BusyboxTarball returns the path of a busybox unified image tarball in a
// temporary directory of t's. It is built offline from busybox-static, the
// same way slipway/busybox is; without that binary it is exported from the
// host's slipway/busybox (a read: nothing on the host's incusd changes).
func BusyboxTarball(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := os.Stat(baseimage.DefaultBusybox); err == nil {
		var buf bytes.Buffer
		if err := baseimage.BuildBusybox(&buf, baseimage.DefaultBusybox); err != nil {
			t.Fatalf("build busybox image: %v", err)
		}
		p := filepath.Join(dir, "busybox.tar.gz")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "incus", "image", "export", "slipway/busybox", filepath.Join(dir, "busybox"))
	// The host's incusd, by its default socket, whatever the test's env says.
	cmd.Env = append(os.Environ(), "INCUS_DIR=")
	if out, err := cmd.CombinedOutput(); err != nil {
		skip(t, "no %s and no host image slipway/busybox to export: %v: %s", baseimage.DefaultBusybox, err, out)
	}
	return filepath.Join(dir, "busybox.tar.gz")
}

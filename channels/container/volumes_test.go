package container_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slipway-dev/slipway/channels/container"
)

// newVolumeTestIncus is NewTestIncus whose clean-up also deletes the
// project's volumes (after its instances, which hold them), pass or fail.
func newVolumeTestIncus(t *testing.T) *container.Incus {
	t.Helper()
	c := container.NewTestIncus(t)
	t.Cleanup(func() { // runs before NewTestIncus's, which deletes the project
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		all, _ := c.Server().GetInstanceNames("")
		for _, name := range all {
			c.Delete(ctx, name)
		}
		if err := c.DeleteVolumes(ctx); err != nil {
			t.Errorf("delete test volumes: %v", err)
		}
	})
	return c
}

func TestVolumeSharedByInstancesAndBackedUp(t *testing.T) {
	t.Parallel()
	c := newVolumeTestIncus(t)
	ctx := context.Background()
	vol := "app_env_data" // underscores: slipway's volume names cannot collide with each other
	if err := c.CreateVolume(ctx, vol); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateVolume(ctx, vol); err != nil {
		t.Fatalf("creating an existing volume again: %v", err)
	}

	// Two instances mount the same volume: what one writes the other reads.
	one := launch(t, c, map[string]string{"installation": "1"})
	start := time.Now()
	if err := c.AttachVolumes(ctx, one, map[string]string{vol: "/data"}); err != nil {
		t.Fatal(err)
	}
	t.Logf("attach: %v", time.Since(start))
	if code, out := execT(t, c, one, nil, "sh", "-c", "echo first > /data/a.txt && mkdir -p /data/sub && printf 'x\\ny' > /data/sub/b && ln /data/a.txt /data/hard"); code != 0 {
		t.Fatalf("write: %d %s", code, out)
	}
	two := launch(t, c, map[string]string{"installation": "1"})
	if err := c.AttachVolumes(ctx, two, map[string]string{vol: "/srv/data"}); err != nil {
		t.Fatal(err)
	}
	if code, out := execT(t, c, two, nil, "cat", "/srv/data/a.txt"); code != 0 || out != "first\n" {
		t.Fatalf("second instance reads %d %q", code, out)
	}
	// Stopped and started again, an instance keeps its volume.
	if err := c.Stop(ctx, one); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, one); err != nil {
		t.Fatal(err)
	}
	if code, out := execT(t, c, one, nil, "cat", "/data/sub/b"); code != 0 || out != "x\ny" {
		t.Fatalf("after restart: %d %q", code, out)
	}

	var tarball bytes.Buffer
	start = time.Now()
	n, err := c.ExportVolume(ctx, vol, &tarball)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("export: %d bytes in %v", n, time.Since(start))
	if n != int64(tarball.Len()) {
		t.Fatalf("export reported %d bytes, wrote %d", n, tarball.Len())
	}
	inTar, err := c.ReadExport(bytes.NewReader(tarball.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"a.txt": sum("first\n"), "sub/b": sum("x\ny"), "hard": sum("first\n")}
	for path, s := range want {
		if inTar[path] != s {
			t.Errorf("tarball %s: %s, want %s (all: %v)", path, inTar[path], s, inTar)
		}
	}

	restored := "scratch_test_" + container.RandomSuffix()
	start = time.Now()
	if err := c.ImportVolume(ctx, restored, bytes.NewReader(tarball.Bytes())); err != nil {
		t.Fatal(err)
	}
	t.Logf("import: %v", time.Since(start))
	start = time.Now()
	got, err := c.VolumeChecksums(ctx, restored, container.TestImage)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("checksums: %v", time.Since(start))
	if len(got) != len(want) {
		t.Errorf("restored volume has %v, want %v", got, want)
	}
	for path, s := range want {
		if got[path] != s {
			t.Errorf("restored %s: %s, want %s", path, got[path], s)
		}
	}
	if err := c.ImportVolume(ctx, restored, bytes.NewReader(tarball.Bytes())); !errors.Is(err, container.ErrExists) {
		t.Errorf("importing over an existing volume: %v, want ErrExists", err)
	}

	// A damaged tarball does not import.
	bad := append([]byte(nil), tarball.Bytes()...)
	for i := len(bad) / 3; i < len(bad)/3+64 && i < len(bad); i++ {
		bad[i] ^= 0xff
	}
	if err := c.ImportVolume(ctx, "scratch_bad_"+container.RandomSuffix(), bytes.NewReader(bad)); err == nil {
		t.Error("a damaged tarball imported")
	}

	// The scratch instance is gone; only our two remain.
	list, _ := c.List(ctx)
	if len(list) != 2 {
		t.Errorf("instances after checksums: %+v", list)
	}
	if err := c.DeleteVolume(ctx, vol); err == nil {
		t.Error("deleted a volume two instances use")
	}
	names, err := c.Volumes(ctx)
	if err != nil || !strings.Contains(strings.Join(names, " "), vol) || !strings.Contains(strings.Join(names, " "), restored) {
		t.Errorf("volumes: %v %v", names, err)
	}
	if err := c.DeleteVolume(ctx, restored); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteVolume(ctx, restored); err != nil {
		t.Errorf("deleting a missing volume: %v", err)
	}
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

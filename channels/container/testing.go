package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/slipway-dev/slipway/channels/container/baseimage"
)

// TestImage is the base image alias tests launch.
const TestImage = baseimage.DefaultAlias

// RequireIncus skips t when integration tests against the local incusd
// cannot run here (not root, and not under CI); under CI=true it never skips.
func RequireIncus(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 && os.Getenv("CI") == "" {
		t.Skip("needs root and a local incusd (set CI=true to make this a failure)")
	}
}

// NewTestIncus connects to the local incusd in a new throwaway project
// (slipway-test-<random>), makes sure the base image alias exists in the
// default project, and deletes the project and its instances when the test
// ends, pass or fail.
func NewTestIncus(t testing.TB) *Incus {
	t.Helper()
	RequireIncus(t)
	if err := EnsureBaseImage(context.Background(), TestImage, baseimage.DefaultBusybox); err != nil {
		t.Fatalf("base image: %v", err)
	}
	project := "slipway-test-" + RandomSuffix()
	c, err := Connect(project, SupervisorForTest(t), nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := c.DeleteProject(ctx); err != nil {
			t.Errorf("delete test project %s: %v", project, err)
		}
		c.Close()
	})
	return c
}

// EnsureBaseImage imports the busybox base image into the default project
// under alias when that alias does not exist yet. An existing alias is never
// touched.
func EnsureBaseImage(ctx context.Context, alias, busyboxPath string) error {
	srv, err := ConnectServer(ctx)
	if err != nil {
		return err
	}
	defer srv.Disconnect()
	if _, _, err := srv.GetImageAlias(alias); err == nil {
		return nil
	} else if !api.StatusErrorCheck(err, 404) {
		return wrap(err, "look up image alias %s", alias)
	}
	return baseimage.Import(ctx, srv, alias, busyboxPath)
}

// RandomSuffix is 8 random hex digits, for throwaway names.
func RandomSuffix() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// SupervisorForTest builds the supervisor (daemon/cmd/slipway-supervisor)
// into a directory of the test's, installed as Connect wants it.
func SupervisorForTest(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "build", SupervisorBinary)
	build := exec.Command("go", "build", "-o", bin, "github.com/slipway-dev/slipway/daemon/cmd/slipway-supervisor")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the supervisor: %v\n%s", err, out)
	}
	installed, err := InstallSupervisor(bin, filepath.Join(dir, "supervisor"))
	if err != nil {
		t.Fatal(err)
	}
	return installed
}

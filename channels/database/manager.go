package database

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/slipway-dev/slipway/channels/container"
	"github.com/slipway-dev/slipway/channels/container/baseimage"
	"github.com/slipway-dev/slipway/channels/runtime"
)

// Runtime is what this package needs from Incus (container.Incus has it).
type Runtime interface {
	LaunchWithDevices(ctx context.Context, name, image string, labels map[string]string, devices container.Devices) error
	Start(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
	List(ctx context.Context) ([]runtime.Instance, error)
	ExecStreams(ctx context.Context, name string, cmd []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) (int, error)
	StartProcesses(ctx context.Context, name string, p runtime.Processes) error
	HostIDs(instance string, uid, gid int) (int, int, error)
	VolumePool() (string, error)
	Volumes(ctx context.Context) ([]string, error)
	CreateVolume(ctx context.Context, name string) error
	DeleteVolume(ctx context.Context, name string) error
}

// Config configures a Manager. Zero values mean the defaults.
type Config struct {
	DataDir string       // slipway's data directory: socket directories go under DataDir/databases
	Image   string       // image alias servers are made from (default slipway/postgres)
	Logger  *slog.Logger // the daemon's log; passwords never reach it
}

// Manager provisions, starts, dumps, verifies and restores servers.
type Manager struct {
	rt    Runtime
	image string
	dir   string
	log   *slog.Logger
}

// New makes a Manager over rt.
func New(rt Runtime, cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || !filepath.IsAbs(cfg.DataDir) {
		return nil, fmt.Errorf("database manager: DataDir %q is not an absolute path", cfg.DataDir)
	}
	if cfg.Image == "" {
		cfg.Image = baseimage.PostgresAlias
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Manager{rt: rt, image: cfg.Image, dir: filepath.Join(cfg.DataDir, "databases"), log: cfg.Logger}, nil
}

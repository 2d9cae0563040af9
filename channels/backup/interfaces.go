package backup

import (
	"context"
	"io"

	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// Volumes is what backups need from the runtime's volumes. The Incus runtime
// (channels/container) has them; the layout of its export tarballs is its
// own, read here only through ReadExport.
type Volumes interface {
	// DeleteVolume deletes a volume; a missing one is not an error.
	DeleteVolume(ctx context.Context, name string) error
	// Volumes lists the volumes by name.
	Volumes(ctx context.Context) ([]string, error)
	// ExportVolume writes a gzip tarball of the volume.
	ExportVolume(ctx context.Context, volume string, w io.Writer) (int64, error)
	// ImportVolume makes a new volume from such a tarball.
	ImportVolume(ctx context.Context, volume string, r io.Reader) error
	// VolumeChecksums returns the SHA-256 of each regular file by relative path.
	VolumeChecksums(ctx context.Context, volume, image string) (map[string]string, error)
	// ReadExport reads a tarball ExportVolume wrote to its end and returns
	// what VolumeChecksums would of the volume it holds. A damaged tarball
	// is an error.
	ReadExport(r io.Reader) (map[string]string, error)
}

// Instances is what recovery needs from the runtime: finding and deleting
// the scratch instances a stopped daemon left.
type Instances interface {
	// List returns the instances carrying slipway labels.
	List(ctx context.Context) ([]runtime.Instance, error)
	// Delete stops and deletes the instance; a missing instance is not an error.
	Delete(ctx context.Context, name string) error
}

// Log is the log of the operation the work runs in.
type Log interface {
	// Logf writes one line.
	Logf(format string, args ...any)
	// ID is the operation's.
	ID() int64
}

// Deployment is what a restore needs from the engine about the installation
// it restores into.
type Deployment interface {
	// CheckVolume fails, saying why, unless the manifest of the commit the
	// installation serves declares volume (or nothing is deployed).
	CheckVolume(inst store.Installation, volume string) error
	// VolumeName is the name the installation's volume is first made with.
	VolumeName(inst store.Installation, volume string) string
	// Redeploy replaces the installation's instance with one that mounts its
	// volumes as the store names them now, and moves the traffic to it.
	Redeploy(ctx context.Context, inst store.Installation) error
	// Afterwards runs fn once the operation has ended, after the old
	// instance is deleted.
	Afterwards(fn func() error)
}

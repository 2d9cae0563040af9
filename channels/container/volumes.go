package container

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"time"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
	"github.com/lxc/incus/v6/shared/cancel"
)

// Persistent data lives in Incus custom storage volumes of the project, on
// the pool of the default profile's root disk. They outlive instances: every
// new instance of an installation attaches the same volume.
//
// Backups go through Incus's custom volume backup API (extension
// custom_volume_backup, in 6.0): a plain (not pool-optimised) gzip tarball
// with backup/index.yaml and the volume's files under backup/volume/. On
// btrfs Incus takes it from a read-only snapshot, so it is consistent even
// while the app writes; on dir it is a live copy.

// VolumeMountPoint is where VolumeChecksums mounts a volume in its scratch instance.
const VolumeMountPoint = "/mnt/volume"

// ScratchLabel marks the short-lived instances VolumeChecksums makes, so
// that a daemon that stopped half-way can find and delete them.
const ScratchLabel = "scratch"

// VolumePool is the storage pool of the default profile's root disk: where
// `slipway setup` put the instances, and so where their volumes go.
func (c *Incus) VolumePool() (string, error) {
	prof, _, err := c.srv.GetProfile("default")
	if err != nil {
		return "", wrap(err, "read the default profile")
	}
	for _, dev := range prof.Devices {
		if dev["type"] == "disk" && dev["path"] == "/" && dev["pool"] != "" {
			return dev["pool"], nil
		}
	}
	return "", fmt.Errorf("the default profile has no root disk on a storage pool (run: slipway setup): %w", ErrNotFound)
}

// CreateVolume makes an empty custom filesystem volume. One that exists
// already is kept as it is: its data is the installation's.
func (c *Incus) CreateVolume(ctx context.Context, name string) error {
	return c.createVolumeOn(ctx, c.srv, name)
}

func (c *Incus) createVolumeOn(ctx context.Context, srv incus.InstanceServer, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pool, err := c.VolumePool()
	if err != nil {
		return err
	}
	err = srv.CreateStoragePoolVolume(pool, api.StorageVolumesPost{
		Name:        name,
		Type:        "custom",
		ContentType: "filesystem",
		StorageVolumePut: api.StorageVolumePut{
			Description: "slipway persistent data",
		},
	})
	if err != nil && !isExists(err) {
		return wrap(err, "create volume %s on pool %s", name, pool)
	}
	return nil
}

// DeleteVolume deletes a custom volume. A missing one is not an error; one
// still attached to an instance is.
func (c *Incus) DeleteVolume(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	pool, err := c.VolumePool()
	if err != nil {
		return err
	}
	err = c.srv.DeleteStoragePoolVolume(pool, "custom", name)
	if err != nil && !api.StatusErrorCheck(err, 404) {
		return wrap(err, "delete volume %s", name)
	}
	return nil
}

// Volumes lists the project's custom volumes by name.
func (c *Incus) Volumes(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	pool, err := c.VolumePool()
	if err != nil {
		return nil, err
	}
	vols, err := c.srv.GetStoragePoolVolumes(pool)
	if err != nil {
		return nil, wrap(err, "list volumes of pool %s", pool)
	}
	var names []string
	for _, v := range vols {
		if v.Type == "custom" {
			names = append(names, v.Name)
		}
	}
	sort.Strings(names)
	return names, nil
}

// AttachVolumes mounts custom volumes (name -> mount path) into an instance.
// A running container gets them at once (Incus hot-plugs disk devices into
// containers), and keeps them across stops and starts.
func (c *Incus) AttachVolumes(ctx context.Context, instance string, volumes map[string]string) error {
	if len(volumes) == 0 {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	pool, err := c.VolumePool()
	if err != nil {
		return err
	}
	inst, etag, err := c.srv.GetInstance(instance)
	if err != nil {
		return wrap(err, "attach volumes to %s", instance)
	}
	put := inst.Writable()
	if put.Devices == nil {
		put.Devices = map[string]map[string]string{}
	}
	for vol, path := range volumes {
		put.Devices[volumeDevice(vol)] = map[string]string{"type": "disk", "pool": pool, "source": vol, "path": path}
	}
	op, err := c.srv.UpdateInstance(instance, put, etag)
	if err == nil {
		_, err = c.wait(ctx, op)
	}
	if err != nil {
		return wrap(err, "attach volumes to %s", instance)
	}
	return nil
}

// volumeDevice names the disk device of a volume: Incus allows 63 characters.
func volumeDevice(vol string) string {
	name := "vol-" + vol
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(vol))
	return name[:50] + "-" + hex.EncodeToString(sum[:])[:12]
}

// ExportVolume writes a gzip tarball of a volume's files to w, by way of a
// short-lived Incus volume backup, and returns its size.
func (c *Incus) ExportVolume(ctx context.Context, volume string, w io.Writer) (int64, error) {
	pool, err := c.VolumePool()
	if err != nil {
		return 0, err
	}
	name := "slipway-" + RandomSuffix()
	op, err := c.srv.CreateStorageVolumeBackup(pool, volume, api.StorageVolumeBackupsPost{
		Name:                 name,
		ExpiresAt:            time.Now().Add(24 * time.Hour), // Incus removes it even if we cannot
		VolumeOnly:           true,
		CompressionAlgorithm: "gzip",
	})
	if err == nil {
		_, err = c.wait(ctx, op)
	}
	if err != nil {
		return 0, wrap(err, "back up volume %s", volume)
	}
	defer func() {
		dctx, stop := context.WithTimeout(context.Background(), time.Minute)
		defer stop()
		if op, err := c.srv.DeleteStorageVolumeBackup(pool, volume, name); err == nil {
			_, _ = c.wait(dctx, op)
		}
	}()
	canceller := cancel.NewHTTPRequestCanceller()
	stop := context.AfterFunc(ctx, func() { _ = canceller.Cancel() })
	defer stop()
	resp, err := c.srv.GetStorageVolumeBackupFile(pool, volume, name, &incus.BackupFileRequest{
		BackupFile: &streamWriter{ctx: ctx, w: w},
		Canceler:   canceller,
	})
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	if err != nil {
		return 0, wrap(err, "download the backup of volume %s", volume)
	}
	return resp.Size, nil
}

// ImportVolume makes a new custom volume named volume from a tarball
// ExportVolume wrote.
func (c *Incus) ImportVolume(ctx context.Context, volume string, r io.Reader) error {
	pool, err := c.VolumePool()
	if err != nil {
		return err
	}
	op, err := c.srv.CreateStoragePoolVolumeFromBackup(pool, incus.StorageVolumeBackupArgs{
		BackupFile: &streamReader{ctx: ctx, r: r},
		Name:       volume,
	})
	if err == nil {
		_, err = c.wait(ctx, op)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		if isExists(err) {
			return fmt.Errorf("import volume %s: %w (%v)", volume, ErrExists, err)
		}
		return wrap(err, "import volume %s", volume)
	}
	return nil
}

var checksumLine = regexp.MustCompile(`^([0-9a-f]{64})  \./(.+)$`)

// VolumeChecksums returns the SHA-256 of every regular file in a volume, by
// path relative to its root. Incus 6.0 has no API to read a volume's files,
// so it mounts the volume in a scratch instance of image and runs
// sha256sum there; the instance is deleted before it returns.
func (c *Incus) VolumeChecksums(ctx context.Context, volume, image string) (map[string]string, error) {
	name := "scratch-" + RandomSuffix()
	if err := c.Launch(ctx, name, image, map[string]string{ScratchLabel: volume}); err != nil {
		return nil, err
	}
	defer func() {
		dctx, stop := context.WithTimeout(context.Background(), time.Minute)
		defer stop()
		if err := c.Delete(dctx, name); err != nil {
			c.log.Warn("Could not delete scratch instance", "instance", name, "err", err)
		}
	}()
	if err := c.AttachVolumes(ctx, name, map[string]string{volume: VolumeMountPoint}); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	sums := map[string]string{}
	parsed := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var bad error
		for sc.Scan() {
			m := checksumLine.FindStringSubmatch(sc.Text())
			if m == nil {
				if bad == nil {
					bad = fmt.Errorf("checksum volume %s: unexpected output %q", volume, sc.Text())
				}
				continue
			}
			sums[m[2]] = m[1]
		}
		if bad == nil {
			bad = sc.Err()
		}
		io.Copy(io.Discard, pr)
		parsed <- bad
	}()
	code, err := c.Exec(ctx, name, []string{"/bin/sh", "-c", "cd " + VolumeMountPoint + " && find . -type f -exec sha256sum {} +"}, nil, nil, pw)
	pw.Close()
	perr := <-parsed
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("checksum volume %s: sha256sum exited with status %d", volume, code)
	}
	if perr != nil {
		return nil, perr
	}
	return sums, nil
}

// DeleteVolumes deletes every custom volume of the project (after its
// instances are gone). It is for tests that made a throwaway project.
func (c *Incus) DeleteVolumes(ctx context.Context) error {
	names, err := c.Volumes(ctx)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	var errs []error
	for _, n := range names {
		if err := c.DeleteVolume(ctx, n); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// streamWriter lets the Incus client download into any writer: it asks for
// an io.WriteSeeker but only ever writes in order. It stops the copy once
// ctx ends.
type streamWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (s *streamWriter) Write(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := s.w.Write(p)
	s.n += int64(n)
	return n, err
}

func (s *streamWriter) Seek(offset int64, whence int) (int64, error) {
	if (whence == io.SeekCurrent && offset == 0) || (whence == io.SeekStart && offset == s.n) {
		return s.n, nil
	}
	return 0, errors.New("backup download: seek is not supported")
}

// streamReader ends an upload once ctx ends.
type streamReader struct {
	ctx context.Context
	r   io.Reader
}

func (s *streamReader) Read(p []byte) (int, error) {
	if err := s.ctx.Err(); err != nil {
		return 0, err
	}
	return s.r.Read(p)
}

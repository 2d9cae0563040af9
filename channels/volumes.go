package channels

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/slipway-dev/slipway/channels/backup"
	"github.com/slipway-dev/slipway/store"
)

// Persistent data.
//
// A manifest's volumes are Incus custom volumes, one per installation and
// name (APP_ENV_NAME: underscores, which app, environment and volume names
// cannot hold, so two installations never share one). Every new instance of
// the installation mounts the same volume, so data outlives deploys,
// switches and restarts. During a deploy the old and the new instance both
// mount it from the health check until the old one is drained and stopped
// after the swap: it is one filesystem, not a copy, so nothing either writes
// is lost, and the old instance only finishes requests it already had.
// Their backups are package backup's.

// VolumeRuntime is what volumes and backups need from the runtime besides
// Runtime. The Incus runtime has it; a runtime without it can still deploy
// apps that declare no volumes.
type VolumeRuntime interface {
	// CreateVolume makes an empty volume; an existing one is kept as it is.
	CreateVolume(ctx context.Context, name string) error
	// AttachVolumes mounts volumes (name -> path) into an instance, for good.
	AttachVolumes(ctx context.Context, instance string, volumes map[string]string) error
	// Delete, list, export, import and checksum volumes.
	backup.Volumes
}

// ErrNoVolumeSupport means the runtime cannot make volumes.
var ErrNoVolumeSupport = backup.ErrNoVolumeSupport

func (e *Engine) volumeRuntime() (VolumeRuntime, error) {
	if vr, ok := e.rt.(VolumeRuntime); ok {
		return vr, nil
	}
	return nil, ErrNoVolumeSupport
}

// incusVolumeName is the Incus volume first made for an installation's volume.
func incusVolumeName(inst store.Installation, vol string) string {
	return inst.App + "_" + inst.Environment + "_" + vol
}

// attachVolumes mounts the installation's volumes that the manifest
// declares into a new instance, making those it does not have yet. It runs
// right after the launch, before the commit's tree goes in, so build and
// release steps (migrations) already see the data.
func (e *Engine) attachVolumes(ctx context.Context, l *opLog, inst store.Installation, name string, m *Manifest) error {
	if len(m.Volumes) == 0 {
		return nil
	}
	vr, err := e.volumeRuntime()
	if err != nil {
		return fmt.Errorf("%s declares volumes: %w", ManifestFile, err)
	}
	have, err := e.volumeMap(ctx, inst.ID)
	if err != nil {
		return err
	}
	step := time.Now()
	mounts := map[string]string{}
	var shown []string
	for _, vol := range sortedKeys(m.Volumes) {
		incusName, ok := have[vol]
		if !ok {
			incusName = incusVolumeName(inst, vol)
			if err := e.createVolumeFor(ctx, vr, incusName, name); err != nil {
				return e.stepError(ctx, "create volume "+vol, err)
			}
			if err := e.store.SetVolume(ctx, inst.ID, vol, incusName); err != nil {
				return fmt.Errorf("record volume %s: %w", vol, err)
			}
			l.Logf("       Created volume %s (%s) for %s", vol, incusName, inst.Resource())
		}
		mounts[incusName] = m.Volumes[vol]
		shown = append(shown, vol+" at "+m.Volumes[vol])
	}
	if err := vr.AttachVolumes(ctx, name, mounts); err != nil {
		return e.stepError(ctx, "attach volumes", err)
	}
	l.Logf("       Volumes mounted: %s (%s)", strings.Join(shown, ", "), time.Since(step).Round(time.Millisecond))
	return nil
}

func (e *Engine) volumeMap(ctx context.Context, installationID int64) (map[string]string, error) {
	vols, err := e.store.Volumes(ctx, installationID)
	if err != nil {
		return nil, fmt.Errorf("read volumes: %w", err)
	}
	out := map[string]string{}
	for _, v := range vols {
		out[v.Name] = v.IncusName
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// placedVolumes is a runtime whose volumes are bound to one member of a
// cluster (container.Incus on an Incus cluster).
type placedVolumes interface {
	// VolumeHome is the member holding the first of volumes that exists.
	VolumeHome(ctx context.Context, volumes []string) (string, error)
	// CreateVolumeNear makes a volume on the member where instance runs.
	CreateVolumeNear(ctx context.Context, volume, instance string) error
	// MemberOnline reports whether Incus counts a member as online.
	MemberOnline(member string) (bool, error)
}

// VolumesHome is the cluster member an installation's volumes keep it on,
// with their Incus names; "" off a cluster or without volumes.
func (e *Engine) VolumesHome(ctx context.Context, inst store.Installation) (member string, volumes []string) {
	pv, ok := e.rt.(placedVolumes)
	if !ok {
		return "", nil
	}
	vols, err := e.store.Volumes(ctx, inst.ID)
	if err != nil || len(vols) == 0 {
		return "", nil
	}
	for _, v := range vols {
		volumes = append(volumes, v.IncusName)
	}
	home, err := pv.VolumeHome(ctx, volumes)
	if err != nil {
		return "", nil
	}
	return home, volumes
}

// strandedVolumes says why an installation cannot run anywhere else: its
// volumes are on a cluster member that is offline. "" when it can.
func (e *Engine) strandedVolumes(ctx context.Context, inst store.Installation) string {
	home, names := e.VolumesHome(ctx, inst)
	if home == "" {
		return ""
	}
	pv := e.rt.(placedVolumes)
	if online, err := pv.MemberOnline(home); err != nil || online {
		return ""
	}
	return fmt.Sprintf("%s is degraded: its volumes (%s) are on cluster member %s, which is offline, and Incus's local volumes cannot move without it. "+
		"Bring %s back (its instances then start again), or restore the volumes from a backup onto the members left (restore %s BACKUP)",
		inst.Resource(), strings.Join(names, ", "), home, home, inst.Resource())
}

// LabelMember places an instance on a cluster member (container.LabelMember).
const LabelMember = "member"

// createVolumeFor makes a volume where instance can mount it.
func (e *Engine) createVolumeFor(ctx context.Context, vr VolumeRuntime, volume, instance string) error {
	if pv, ok := e.rt.(placedVolumes); ok {
		return pv.CreateVolumeNear(ctx, volume, instance)
	}
	return vr.CreateVolume(ctx, volume)
}

// placed adds to labels the member an installation with volumes must run
// on: where its volumes are. Without volumes, or before they exist, Incus
// places the instance.
func (e *Engine) placed(ctx context.Context, inst store.Installation, volumes map[string]string, labels map[string]string) map[string]string {
	pv, ok := e.rt.(placedVolumes)
	if !ok || len(volumes) == 0 {
		return labels
	}
	have, err := e.volumeMap(ctx, inst.ID)
	if err != nil {
		return labels
	}
	var names []string
	for _, vol := range sortedKeys(volumes) {
		if n, ok := have[vol]; ok {
			names = append(names, n)
		}
	}
	if home, err := pv.VolumeHome(ctx, names); err == nil && home != "" {
		labels[LabelMember] = home
	}
	return labels
}

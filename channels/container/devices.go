package container

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/lxc/incus/v6/shared/api"
)

// Devices are Incus devices by name, as in an instance's config.
type Devices = map[string]map[string]string

// LaunchWithDevices is Launch with more devices from the start (a shared
// directory, say): mounted by LXC before init runs, and kept across
// restarts. Names must not clash with the supervisor's ("slipway").
func (c *Incus) LaunchWithDevices(ctx context.Context, name, image string, labels map[string]string, devices Devices) error {
	return c.createWith(ctx, name, imageSource(image), "from "+image, labels, devices)
}

// AddDevices adds (or replaces) devices of an instance in one update. A
// running container gets disk devices at once (Incus hot-plugs them).
func (c *Incus) AddDevices(ctx context.Context, instance string, devices Devices) error {
	if len(devices) == 0 {
		return nil
	}
	inst, etag, err := c.srv.GetInstance(instance)
	if err != nil {
		return wrap(err, "add devices to %s", instance)
	}
	put := inst.Writable()
	if put.Devices == nil {
		put.Devices = Devices{}
	}
	for k, d := range devices {
		put.Devices[k] = d
	}
	op, err := c.srv.UpdateInstance(instance, put, etag)
	if err == nil {
		_, err = c.wait(ctx, op)
	}
	if err != nil {
		return wrap(err, "add devices to %s", instance)
	}
	return nil
}

// HostIDs are the host's uid and gid for uid and gid inside a started
// instance, from the id map Incus gave it (volatile.idmap.current): what a
// host directory shared with the instance must be owned by for that user
// to write there. A privileged instance (no map) shares the host's ids.
func (c *Incus) HostIDs(instance string, uid, gid int) (int, int, error) {
	inst, _, err := c.srv.GetInstance(instance)
	if err != nil {
		return -1, -1, wrap(err, "read the id map of %s", instance)
	}
	raw := inst.Config["volatile.idmap.current"]
	if raw == "" || raw == "[]" {
		if inst.StatusCode != api.Running {
			return -1, -1, fmt.Errorf("read the id map of %s: %w", instance, ErrNotRunning)
		}
		return uid, gid, nil
	}
	var entries []idmapEntry
	if err := json.Unmarshal([]byte(raw), &entries); err != nil {
		return -1, -1, fmt.Errorf("read the id map of %s: %w", instance, err)
	}
	hu, hg := shiftOut(entries, uid, true), shiftOut(entries, gid, false)
	if hu < 0 || hg < 0 {
		return -1, -1, fmt.Errorf("read the id map of %s: %d:%d is not mapped", instance, uid, gid)
	}
	return hu, hg, nil
}

// idmapEntry is one range of volatile.idmap.current, as Incus writes it
// (shared/idmap, whose package would pull in an xattr module for this).
type idmapEntry struct {
	IsUID    bool  `json:"Isuid"`
	IsGID    bool  `json:"Isgid"`
	HostID   int64 `json:"Hostid"`
	NSID     int64 `json:"Nsid"`
	MapRange int64 `json:"Maprange"`
}

// shiftOut maps id from inside the instance to the host, -1 when no range
// of the right kind holds it.
func shiftOut(entries []idmapEntry, id int, uid bool) int {
	for _, e := range entries {
		if (uid && !e.IsUID) || (!uid && !e.IsGID) {
			continue
		}
		if int64(id) >= e.NSID && int64(id) < e.NSID+e.MapRange {
			return int(e.HostID + int64(id) - e.NSID)
		}
	}
	return -1
}

package container

import (
	"context"
	"strconv"
)

// Limit sets an instance's CPU count and memory bound (Incus limits.cpu and
// limits.memory; 0 removes one). A running container takes them at once.
func (c *Incus) Limit(ctx context.Context, name string, cpus int, memory int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	inst, etag, err := c.srv.GetInstance(name)
	if err != nil {
		return wrap(err, "set limits of %s", name)
	}
	put := inst.Writable()
	if put.Config == nil {
		put.Config = map[string]string{}
	}
	setOrDelete(put.Config, "limits.cpu", int64(cpus))
	setOrDelete(put.Config, "limits.memory", memory)
	op, err := c.srv.UpdateInstance(name, put, etag)
	if err == nil {
		_, err = c.wait(ctx, op)
	}
	if err != nil {
		return wrap(err, "set limits of %s", name)
	}
	return nil
}

func setOrDelete(config map[string]string, key string, n int64) {
	if n == 0 {
		delete(config, key)
		return
	}
	config[key] = strconv.FormatInt(n, 10)
}

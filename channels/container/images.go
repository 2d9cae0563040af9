package container

import (
	"context"
	"fmt"
	"regexp"
	"time"

	"github.com/lxc/incus/v6/shared/api"
)

// imageProjectProperty marks the images a daemon publishes with its Incus
// project: with features.images=false they live in the default project, where
// every daemon's images meet.
const imageProjectProperty = "slipway.project"

var fingerprintRe = regexp.MustCompile(`^[0-9a-f]{64}$`)

// imageSource names an image by fingerprint or by alias.
func imageSource(image string) api.InstanceSource {
	if fingerprintRe.MatchString(image) {
		return api.InstanceSource{Type: "image", Fingerprint: image}
	}
	return api.InstanceSource{Type: "image", Alias: image}
}

// publishWait bounds a publish: a few hundred MB take seconds.
const publishWait = 5 * time.Minute

// PublishSnapshot makes an image of an instance's snapshot and returns its
// fingerprint. It is uncompressed: it is published on every deploy, read by
// this host only, and compressing costs more time than the disk it saves.
func (c *Incus) PublishSnapshot(ctx context.Context, name, snapshot string, properties map[string]string) (string, error) {
	props := map[string]string{imageProjectProperty: c.project}
	for k, v := range properties {
		props[k] = v
	}
	op, err := c.srv.CreateImage(api.ImagesPost{
		Source:               &api.ImagesPostSource{Type: "snapshot", Name: name + "/" + snapshot},
		CompressionAlgorithm: "none",
		ImagePut:             api.ImagePut{Properties: props},
	}, nil)
	if err != nil {
		return "", wrap(err, "publish %s/%s", name, snapshot)
	}
	// Waited for even when ctx ends: incusd cancels a publish by leaving
	// the snapshot mounted, and the instance can then never be deleted.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
	defer cancel()
	done, err := c.wait(wctx, op)
	if err != nil {
		return "", wrap(err, "publish %s/%s", name, snapshot)
	}
	fp, _ := done.Metadata["fingerprint"].(string)
	if !fingerprintRe.MatchString(fp) {
		return "", fmt.Errorf("publish %s/%s: incus did not say which image it made", name, snapshot)
	}
	if ctx.Err() != nil {
		c.DeleteImage(wctx, fp) // nobody is left to record it
		return "", ctx.Err()
	}
	c.warm(ctx, fp)
	return fp, nil
}

// warm unpacks a fresh image into the storage pool at once, by creating (not
// starting) a throwaway instance of it. On btrfs the first instance of an
// image unpacks it (0.13 s for a busybox app here, seconds for a few hundred
// MB), every later one is a snapshot; a rollback should not be the first.
func (c *Incus) warm(ctx context.Context, fingerprint string) {
	name := "slipway-warm-" + fingerprint[:12]
	op, err := c.srv.CreateInstance(api.InstancesPost{
		Name: name, Type: api.InstanceTypeContainer,
		Source: api.InstanceSource{Type: "image", Fingerprint: fingerprint},
	})
	if err != nil {
		return
	}
	// Waited for even when ctx ends, as the publish is: deleting an instance
	// still being created fails and would leave it behind.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), publishWait)
	defer cancel()
	if _, err := c.wait(wctx, op); err != nil {
		c.log.Debug("Warm image", "image", fingerprint[:12], "err", err)
	}
	c.Delete(wctx, name)
}

// DeleteImage deletes an image by fingerprint; a missing image is not an error.
func (c *Incus) DeleteImage(ctx context.Context, fingerprint string) error {
	op, err := c.srv.DeleteImage(fingerprint)
	if api.StatusErrorCheck(err, 404) {
		return nil
	}
	if err != nil {
		return wrap(err, "delete image %.12s", fingerprint)
	}
	if _, err := c.wait(ctx, op); err != nil && !api.StatusErrorCheck(err, 404) {
		return wrap(err, "delete image %.12s", fingerprint)
	}
	return nil
}

// deleteProjectImages deletes the images this project's daemon published.
func (c *Incus) deleteProjectImages(ctx context.Context) error {
	images, err := c.srv.GetImages()
	if err != nil {
		return wrap(err, "list images")
	}
	for _, img := range images {
		if img.Properties[imageProjectProperty] == c.project {
			if err := c.DeleteImage(ctx, img.Fingerprint); err != nil {
				return err
			}
		}
	}
	return nil
}

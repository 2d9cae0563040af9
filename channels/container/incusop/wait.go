// Package incusop waits for Incus operations safely; the Incus runtime and
// the base image importer both use it.
package incusop

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	incus "github.com/lxc/incus/v6/client"
	"github.com/lxc/incus/v6/shared/api"
)

// Wait waits for op to end, giving up (and asking Incus to cancel it) when ctx
// ends, in which case it returns ctx.Err().
//
// It asks incusd directly (GET /1.0/operations/ID/wait) instead of calling
// op.Wait: without the events websocket the client's Wait sets
// ResponseHeaderTimeout on the shared HTTP transport on every call, a data
// race with every other request in flight. incusd answers a wait that times
// out with error 500 "context deadline exceeded", so each request waits at
// most perRequest seconds and the loop asks again, keeping long builds clear
// of the client's one-hour response header timeout.
func Wait(ctx context.Context, srv incus.InstanceServer, project string, op incus.Operation, perRequest int) (*api.Operation, error) {
	path := fmt.Sprintf("/1.0/operations/%s/wait?timeout=%d&project=%s", url.PathEscape(op.Get().ID), perRequest, url.QueryEscape(project))
	type result struct {
		op  *api.Operation
		err error
	}
	done := make(chan result, 1)
	go func() {
		for {
			resp, _, err := srv.RawQuery("GET", path, nil, "")
			if err != nil && strings.Contains(err.Error(), "deadline exceeded") && ctx.Err() == nil {
				continue
			}
			if err != nil {
				done <- result{err: err}
				return
			}
			var final api.Operation
			if err := resp.MetadataAsStruct(&final); err != nil {
				done <- result{err: fmt.Errorf("operation %s: %w", op.Get().ID, err)}
				return
			}
			if !final.StatusCode.IsFinal() && ctx.Err() == nil {
				continue
			}
			if final.Err != "" {
				done <- result{op: &final, err: errors.New(final.Err)}
				return
			}
			done <- result{op: &final}
			return
		}
	}()
	select {
	case r := <-done:
		return r.op, r.err
	case <-ctx.Done():
		_ = op.Cancel()
		return nil, ctx.Err()
	}
}

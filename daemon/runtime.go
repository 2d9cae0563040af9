package daemon

import (
	"context"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/container"
)

// incusRuntime adapts the Incus runtime to the engine's view of a runtime;
// only List's result type differs, so neither package has to import the other.
type incusRuntime struct{ *container.Incus }

func (r incusRuntime) List(ctx context.Context) ([]channels.Instance, error) {
	list, err := r.Incus.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]channels.Instance, len(list))
	for i, in := range list {
		out[i] = channels.Instance{Name: in.Name, Labels: in.Labels, Running: in.Running}
	}
	return out, nil
}

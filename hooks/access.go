package hooks

import (
	"context"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// The access rules live in the engine; these name what each SSH path asks.

func (s *Server) canSeeEnv(ctx context.Context, u store.User, env string) bool {
	return s.engine.Can(ctx, u, env, channels.ActionView)
}

func (s *Server) canDeploy(ctx context.Context, u store.User, env string) bool {
	return s.engine.Can(ctx, u, env, channels.ActionDeploy)
}

func (s *Server) canAdmin(ctx context.Context, u store.User, env string) bool {
	return s.engine.Can(ctx, u, env, channels.ActionAdmin)
}

// canSeeApp: an app is visible to whoever may see one of its installations
// (admins see all apps, installed or not).
func (s *Server) canSeeApp(ctx context.Context, u store.User, app string) bool {
	if u.Admin {
		return true
	}
	insts, _ := s.store.Installations(ctx, app)
	for _, i := range insts {
		if s.canSeeEnv(ctx, u, i.Environment) {
			return true
		}
	}
	return false
}

// canPushApp: pushing stores commits; deploys are then limited per environment.
func (s *Server) canPushApp(ctx context.Context, u store.User, app string) bool {
	if u.Admin {
		return true
	}
	insts, _ := s.store.Installations(ctx, app)
	for _, i := range insts {
		if s.canDeploy(ctx, u, i.Environment) {
			return true
		}
	}
	return false
}

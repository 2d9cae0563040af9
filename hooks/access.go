package hooks

import (
	"context"

	"github.com/slipway-dev/slipway/store"
)

// Access checks. Admins may do everything; per-environment roles for other
// users are looked up in the store.

func (s *Server) canSeeApp(ctx context.Context, u store.User, app string) bool {
	return u.Admin
}

func (s *Server) canPushApp(ctx context.Context, u store.User, app string) bool {
	return u.Admin
}

func (s *Server) canDeploy(ctx context.Context, u store.User, env string) bool {
	return u.Admin
}

func (s *Server) canSeeEnv(ctx context.Context, u store.User, env string) bool {
	return u.Admin
}

func (s *Server) canAdmin(ctx context.Context, u store.User, env string) bool {
	return u.Admin
}

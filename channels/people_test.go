package channels

import (
	"context"
	"errors"
	"testing"

	"github.com/slipway-dev/slipway/store"
)

func TestWhoMayChangePeopleKeysAndRoles(t *testing.T) {
	te := newTestEngine(t)
	ctx := context.Background()
	te.CreateEnvironment(ctx, "stage")
	root, _ := te.store.CreateUser(ctx, "root", true)
	envAdmin, _ := te.store.CreateUser(ctx, "ada", false)
	te.store.SetGrant(ctx, "ada", "prod", store.RoleAdmin)
	dev, _ := te.store.CreateUser(ctx, "dev", false)
	te.store.SetGrant(ctx, "dev", "prod", store.RoleDeployer)

	forbidden := func(what string, err error) {
		t.Helper()
		if kind, _, _ := ForPeople(err); !errors.Is(err, ErrForbidden) && kind != KindNotFound {
			t.Errorf("%s: %v, want refused", what, err)
		}
	}
	forbidden("an environment admin adds a user", te.AddUser(ctx, envAdmin, "eve", false))
	forbidden("a deployer makes itself admin of prod", te.Grant(ctx, dev, "dev", "prod", store.RoleAdmin))
	forbidden("an admin of prod grants in stage", te.Grant(ctx, envAdmin, "dev", "stage", store.RoleViewer))
	forbidden("a deployer adds a key to another account", te.AddKey(ctx, dev, "ada", "SHA256:x", "ssh-ed25519 AAAA x"))
	forbidden("the server admin removes itself", te.RemoveUser(ctx, root, "root"))
	if err := te.Grant(ctx, envAdmin, "dev", "prod", store.RoleViewer); err != nil {
		t.Errorf("an admin of prod grants in prod: %v", err)
	}
	if err := te.AddKey(ctx, dev, "dev", "SHA256:dev", "ssh-ed25519 AAAA dev"); err != nil {
		t.Errorf("a user adds its own key: %v", err)
	}
	if err := te.RemoveKey(ctx, envAdmin, "SHA256:dev"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("removing another's key: %v, want unknown key", err)
	}
	if err := te.AddUser(ctx, root, "eve", false); err != nil {
		t.Errorf("the server admin adds a user: %v", err)
	}
	if err := te.Grant(ctx, root, "eve", "stage", "owner"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("an unknown role: %v", err)
	}
}

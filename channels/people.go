package channels

import (
	"context"
	"errors"

	"github.com/slipway-dev/slipway/store"
)

// Who may change people, keys and roles. Every path that changes them comes
// here, so the rule "who may grant what" lives in one place:
//   - the server's admins add and remove users, and any key;
//   - a user adds and removes its own keys;
//   - an environment's admins give and take roles in that environment.

// ErrForbidden means the user may not make that change.
var ErrForbidden = errors.New("not allowed")

// AddUser adds a user; only the server's admins may.
func (e *Engine) AddUser(ctx context.Context, by store.User, name string, admin bool) error {
	if !by.Admin {
		return failf(ErrForbidden, "only an admin may do that")
	}
	if err := CheckName("user", name); err != nil {
		return err
	}
	if _, err := e.store.CreateUser(ctx, name, admin); errors.Is(err, store.ErrExists) {
		return failf(ErrExists, "user %s already exists", name)
	} else if err != nil {
		return err
	}
	return nil
}

// RemoveUser removes a user, its keys, roles and sessions; only the server's
// admins may, and not themselves (a server must keep an admin who can act).
func (e *Engine) RemoveUser(ctx context.Context, by store.User, name string) error {
	if !by.Admin {
		return failf(ErrForbidden, "only an admin may do that")
	}
	if name == by.Name {
		return failf(ErrForbidden, "you cannot remove yourself")
	}
	if err := e.store.RemoveUser(ctx, name); errors.Is(err, store.ErrNotFound) {
		return failf(ErrUnknownUser, "unknown user %s", name)
	} else if err != nil {
		return err
	}
	return nil
}

// AddKey registers a public key (its fingerprint and authorized_keys line)
// for user: its own key, or anyone's for the server's admins.
func (e *Engine) AddKey(ctx context.Context, by store.User, user, fingerprint, publicKey string) error {
	if !by.Admin && user != by.Name {
		return failf(ErrForbidden, "you may add keys only to your own account")
	}
	u, err := e.store.UserByName(ctx, user)
	if err != nil {
		return failf(ErrUnknownUser, "unknown user %s", user)
	}
	if err := e.store.AddKey(ctx, u.ID, fingerprint, publicKey); errors.Is(err, store.ErrExists) {
		return failf(ErrExists, "key %s is registered already", fingerprint)
	} else if err != nil {
		return err
	}
	return nil
}

// RemoveKey unregisters a key: one's own, or any for the server's admins. A
// key of someone else is unknown to the others. The sessions it opened end.
func (e *Engine) RemoveKey(ctx context.Context, by store.User, fingerprint string) error {
	if !by.Admin {
		own, err := e.store.Keys(ctx, by.Name)
		if err != nil {
			return err
		}
		mine := false
		for _, k := range own {
			mine = mine || k.Fingerprint == fingerprint
		}
		if !mine {
			return failf(ErrUnknownKey, "unknown key %s", fingerprint)
		}
	}
	if err := e.store.RemoveKey(ctx, fingerprint); errors.Is(err, store.ErrNotFound) {
		return failf(ErrUnknownKey, "unknown key %s", fingerprint)
	} else if err != nil {
		return err
	}
	return nil
}

// Grant gives user role in env; the environment's admins may.
func (e *Engine) Grant(ctx context.Context, by store.User, user, env, role string) error {
	if err := e.mayGrant(ctx, by, env); err != nil {
		return err
	}
	switch role {
	case store.RoleViewer, store.RoleDeployer, store.RoleAdmin, store.RoleBackup:
	default:
		return failf(ErrInvalidName, "%q is not a role: viewer, deployer, admin or backup", role)
	}
	if err := e.store.SetGrant(ctx, user, env, role); errors.Is(err, store.ErrNotFound) {
		return failf(ErrUnknownUser, "unknown user %s", user)
	} else if err != nil {
		return err
	}
	return nil
}

// Revoke takes user's role in env away; the environment's admins may.
func (e *Engine) Revoke(ctx context.Context, by store.User, user, env string) error {
	if err := e.mayGrant(ctx, by, env); err != nil {
		return err
	}
	if err := e.store.DeleteGrant(ctx, user, env); errors.Is(err, store.ErrNotFound) {
		return failf(ErrUnknownUser, "%s has no role in %s", user, env)
	} else if err != nil {
		return err
	}
	return nil
}

// mayGrant: roles in env are given by its admins. An environment the user
// may not see is unknown to it.
func (e *Engine) mayGrant(ctx context.Context, by store.User, env string) error {
	if _, err := e.store.EnvironmentByName(ctx, env); err != nil || !e.Can(ctx, by, env, ActionView) && !by.Admin {
		return failf(ErrUnknownEnvironment, "unknown environment %s", env)
	}
	if !e.Can(ctx, by, env, ActionAdmin) {
		return failf(ErrForbidden, "only an admin of %s may do that", env)
	}
	return nil
}

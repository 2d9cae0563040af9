package hooks

import (
	"errors"
	"fmt"
	"strings"

	"github.com/slipway-dev/slipway/channels"
)

// Every command declares who may run it; one gate decides, before the
// command runs, from the command's arguments (soft-serve's permission hooks
// are the model). The rules themselves are the engine's (channels.Engine.Can):
// the gate only finds the environment an argument names. Something the user
// may not see is answered exactly like something that does not exist.

// gate decides whether c's user may run a command with these arguments.
type gate func(s *Server, c *call, a cmdArgs) error

// cmdArgs are a command's arguments split as its flag parsing will split them.
type cmdArgs struct {
	pos   []string
	flags map[string]string // flag name -> value ("" for a flag without one)
}

// boolFlags are the flags that take no value; every other flag takes one.
var boolFlags = map[string]bool{"json": true, "secret": true, "admin": true, "f": true, "follow": true, "store": true, "system": true, "app": true, "force": true}

func splitArgs(args []string) cmdArgs {
	a := cmdArgs{flags: map[string]string{}}
	for i := 0; i < len(args); i++ {
		w := args[i]
		if w == "--" {
			a.pos = append(a.pos, args[i+1:]...)
			break
		}
		if len(w) < 2 || w[0] != '-' {
			a.pos = append(a.pos, w)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(w, "-"), "=")
		if !hasValue && !boolFlags[name] && i+1 < len(args) {
			i++
			value = args[i]
		}
		a.flags[name] = value
	}
	return a
}

// arg is positional argument i, or "" when it is missing (the command then
// says how it is used).
func (a cmdArgs) arg(i int) string {
	if i < len(a.pos) {
		return a.pos[i]
	}
	return ""
}

// anyone: every signed-in user; the command shows only what they may see.
func anyone(*Server, *call, cmdArgs) error { return nil }

// serverAdmin: the admins of the whole server.
func serverAdmin(_ *Server, c *call, _ cmdArgs) error {
	if !c.user.Admin {
		return errAdminOnly
	}
	return nil
}

// onInstallation: the APP/ENV of argument 0, with action there.
func onInstallation(action channels.Action) gate {
	return func(s *Server, c *call, a cmdArgs) error {
		if a.arg(0) == "" {
			return nil
		}
		_, _, err := s.resource(c, a.arg(0), action)
		return err
	}
}

// onEnvironment: the ENV of argument i; admin asks for its admin role,
// otherwise seeing it is enough.
func onEnvironment(i int, admin bool) gate {
	return func(s *Server, c *call, a cmdArgs) error {
		switch {
		case a.arg(i) == "":
			return nil
		case admin:
			return s.envForAdmin(c, a.arg(i))
		default:
			return s.envForView(c, a.arg(i))
		}
	}
}

// onOperation: the environment of the operation named by argument 0.
func onOperation(action channels.Action) gate {
	return func(s *Server, c *call, a cmdArgs) error {
		if a.arg(0) == "" {
			return nil
		}
		op, err := s.visibleOperation(c, a.arg(0))
		if err != nil || action == channels.ActionView {
			return err
		}
		if !s.engine.Can(c.ctx, c.user, op.Environment, action) {
			return fmt.Errorf("you may not cancel operations in %s", op.Environment)
		}
		return nil
	}
}

// onOperationOrInstallation: argument 0 is an operation ID or an APP/ENV.
func onOperationOrInstallation(action channels.Action) gate {
	byOp, byInst := onOperation(action), onInstallation(action)
	return func(s *Server, c *call, a cmdArgs) error {
		if strings.Contains(a.arg(0), "/") {
			return byInst(s, c, a)
		}
		return byOp(s, c, a)
	}
}

// onBackups: the backups of the APP/ENV of argument 0 with action, or with
// --store or --system those of the store or of slipway itself, which hold
// every environment's data and secrets: global admins only.
func onBackups(action channels.Action) gate {
	return func(s *Server, c *call, a cmdArgs) error {
		_, storeFlag := a.flags["store"]
		_, systemFlag := a.flags["system"]
		if storeFlag || systemFlag {
			return serverAdmin(s, c, a)
		}
		if a.arg(0) == "" {
			return nil
		}
		_, _, err := s.backupResource(c, a.arg(0), action)
		return err
	}
}

// ownAccount: user argument i must be the caller, unless an admin calls;
// refusal says what the caller may do instead.
func ownAccount(i int, refusal string) gate {
	return func(s *Server, c *call, a cmdArgs) error {
		if c.user.Admin || a.arg(i) == "" || a.arg(i) == c.user.Name {
			return nil
		}
		return errors.New(refusal)
	}
}

// eitherEnvironmentOrServer: with an ENV argument, its admins; without,
// the server's.
func eitherEnvironmentOrServer(s *Server, c *call, a cmdArgs) error {
	if a.arg(0) == "" {
		return serverAdmin(s, c, a)
	}
	return s.envForAdmin(c, a.arg(0))
}

// installGate: installing is for the admins of the environment of APP/ENV.
func installGate(s *Server, c *call, a cmdArgs) error {
	if a.arg(0) == "" {
		return nil
	}
	_, env, err := channels.ParseResource(a.arg(0))
	if err != nil {
		return err
	}
	if s.canAdmin(c.ctx, c.user, env) {
		return nil
	}
	if s.canSeeEnv(c.ctx, c.user, env) {
		return fmt.Errorf("you may not install in %s: only an admin of %s may", env, env)
	}
	return fmt.Errorf("unknown environment %s", env)
}

// restoreGate: restoring a backup of APP/ENV, and into the APP/ENV of
// --to-new when given, is for the admins of their environments.
func restoreGate(s *Server, c *call, a cmdArgs) error {
	check := onBackups(channels.ActionRestore)
	if err := check(s, c, a); err != nil {
		return err
	}
	if to := a.flags["to-new"]; to != "" {
		return check(s, c, cmdArgs{pos: []string{to}})
	}
	return nil
}

package channels

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/slipway-dev/slipway/channels/database"
	"github.com/slipway-dev/slipway/channels/runtime"
	"github.com/slipway-dev/slipway/store"
)

// DatabaseServers runs the Postgres servers (database.Manager).
type DatabaseServers interface {
	Provision(ctx context.Context, db database.Database) (database.Credentials, error)
	Start(ctx context.Context, db database.Database) error
	Deprovision(ctx context.Context, db database.Database, keepVolume bool) error
	Attach(db database.Database, creds database.Credentials) database.Attachment
}

// DeviceRuntime adds devices to a running instance (container.Incus).
type DeviceRuntime interface {
	AddDevices(ctx context.Context, instance string, devices map[string]map[string]string) error
}

// DefaultDatabaseVariable is where an attached database's URL goes.
const DefaultDatabaseVariable = "DATABASE_URL"

// postgresVersions are the versions slipway/postgres has.
var postgresVersions = []string{"15"}

func (e *Engine) databaseServers() (DatabaseServers, error) {
	if e.cfg.Databases == nil {
		return nil, failf(ErrNotRunning, "this slipway runs no databases (its runtime has no Postgres image: slipway setup --postgres)")
	}
	return e.cfg.Databases, nil
}

// database reads a database by name, in words for people.
func (e *Engine) database(ctx context.Context, name string) (store.Database, error) {
	db, err := e.store.DatabaseByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return db, failf(ErrUnknownInstallation, "unknown database %s", name)
	}
	return db, err
}

// CreateDatabase starts a provision operation making a Postgres server
// called name for env, with its own volume and the apps' credentials.
func (e *Engine) CreateDatabase(ctx context.Context, name, env, version, user string) (store.Operation, error) {
	servers, err := e.databaseServers()
	if err != nil {
		return store.Operation{}, err
	}
	if version, err = e.recordNewDatabase(ctx, name, env, version); err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpProvision, Environment: env, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.provision(ctx, l, servers, name, env, version); err != nil {
			return err
		}
		l.Logf("-----> Database %s is running; attach it: db attach %s APP/%s", name, name, env)
		return nil
	})
}

// recordNewDatabase checks a new database's name and version and records
// it as being provisioned.
func (e *Engine) recordNewDatabase(ctx context.Context, name, env, version string) (string, error) {
	if err := (database.Database{Name: name}).Check(); err != nil {
		return "", failf(ErrInvalidName, "database name %q: lowercase letters, digits and single dashes, starting with a letter, at most 40", name)
	}
	if version == "" {
		version = postgresVersions[0]
	}
	if !slices.Contains(postgresVersions, version) {
		return "", failf(ErrInvalidName, "Postgres %s: slipway/postgres has %s", version, strings.Join(postgresVersions, ", "))
	}
	if _, err := e.store.CreateDatabase(ctx, name, env, version); errors.Is(err, store.ErrExists) {
		return "", failf(ErrExists, "database %s already exists", name)
	} else if errors.Is(err, store.ErrNotFound) {
		return "", failf(ErrUnknownEnvironment, "unknown environment %s", env)
	} else if err != nil {
		return "", err
	}
	return version, nil
}

// provision makes the server of a recorded database and records its
// credentials; on failure the name is free to try again.
func (e *Engine) provision(ctx context.Context, l *opLog, servers DatabaseServers, name, env, version string) error {
	l.Logf("-----> Provisioning Postgres %s for %s: its own instance and volume", version, env)
	creds, err := servers.Provision(ctx, database.Database{Name: name})
	if err != nil {
		e.store.DeleteDatabase(context.WithoutCancel(ctx), name)
		return err
	}
	l.hide(creds.Password)
	if err := e.store.SetDatabaseCredentials(ctx, name, creds.User, creds.Password, creds.Database); err != nil {
		return err
	}
	return e.store.SetDatabaseState(ctx, name, store.DatabaseRunning)
}

// ReloadDatabase restarts a database's server in place (a reload
// operation): its instance and Postgres, the data kept.
func (e *Engine) ReloadDatabase(ctx context.Context, name, user string) (store.Operation, error) {
	servers, err := e.databaseServers()
	if err != nil {
		return store.Operation{}, err
	}
	db, err := e.database(ctx, name)
	if err != nil {
		return store.Operation{}, err
	}
	op := store.Operation{Type: store.OpReload, Environment: db.Environment, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		instance := database.Database{Name: name}.Instance()
		if err := e.rt.Stop(ctx, instance); err != nil {
			return fmt.Errorf("stop the instance of %s: %w", name, err)
		}
		if err := e.rt.Start(ctx, instance); err != nil {
			return fmt.Errorf("start the instance of %s: %w", name, err)
		}
		if err := servers.Start(ctx, database.Database{Name: name}); err != nil {
			return err
		}
		l.Logf("-----> Database %s restarted and serving", name)
		return nil
	})
}

// DeprovisionDatabase deletes a database's server; its volume is kept (a
// database made again under the name finds its data). Refused while
// attached, unless force.
func (e *Engine) DeprovisionDatabase(ctx context.Context, name string, force bool, user string) (store.Operation, error) {
	servers, err := e.databaseServers()
	if err != nil {
		return store.Operation{}, err
	}
	db, err := e.database(ctx, name)
	if err != nil {
		return store.Operation{}, err
	}
	attached, err := e.store.Attachments(ctx, name, 0)
	if err != nil {
		return store.Operation{}, err
	}
	if len(attached) > 0 && !force {
		return store.Operation{}, failf(ErrInUse, "database %s is attached to %d installations: detach them first, or deprovision with --force", name, len(attached))
	}
	op := store.Operation{Type: store.OpDeprovision, Environment: db.Environment, Database: name, User: user}
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := servers.Deprovision(ctx, database.Database{Name: name}, true); err != nil {
			return err
		}
		for _, a := range attached { // --force: their URL leads nowhere now
			if err := e.store.UpdateConfig(ctx, a.InstallationID, nil, []string{a.Variable}); err != nil {
				return err
			}
			if inst, err := e.store.InstallationByID(ctx, a.InstallationID); err == nil {
				l.Logf("       %s unset in %s (its running instance keeps it until it is replaced)", a.Variable, inst.Resource())
			}
		}
		if err := e.store.DeleteDatabase(ctx, name); err != nil {
			return err
		}
		l.Logf("-----> Database %s deprovisioned; its volume %s is kept", name, database.Database{Name: name}.Volume())
		return nil
	})
}

// Databases lists the databases.
func (e *Engine) Databases(ctx context.Context) ([]store.Database, error) {
	return e.store.Databases(ctx)
}

// DatabaseInfo returns a database and the installations attached to it.
func (e *Engine) DatabaseInfo(ctx context.Context, name string) (store.Database, []store.Attachment, error) {
	db, err := e.database(ctx, name)
	if err != nil {
		return db, nil, err
	}
	attached, err := e.store.Attachments(ctx, name, 0)
	return db, attached, err
}

// AttachDatabase puts the URL of database name into APP/ENV's environment
// as variable (a secret) and redeploys, the new instance reaching the
// server over its socket: a configure operation.
func (e *Engine) AttachDatabase(ctx context.Context, name, app, env, variable, user string) (store.Operation, error) {
	servers, err := e.databaseServers()
	if err != nil {
		return store.Operation{}, err
	}
	db, inst, err := e.databaseAndInstallation(ctx, name, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	if variable == "" {
		variable = DefaultDatabaseVariable
	}
	if !configKey.MatchString(variable) || variable == "PORT" || strings.HasPrefix(variable, "SLIPWAY_") {
		return store.Operation{}, failf(ErrInvalidName, "--as %q is not a variable you can set (letters, digits and _, not PORT or SLIPWAY_*)", variable)
	}
	if db.State != store.DatabaseRunning {
		return store.Operation{}, failf(ErrNotRunning, "database %s is %s, not running", name, db.State)
	}
	url := servers.Attach(database.Database{Name: name}, database.Credentials{User: db.User, Password: db.Password, Database: db.DBName}).URL
	change := &pending{set: []store.ConfigVar{{Key: variable, Value: url, Secret: true}}}
	op := e.newOperation(store.OpConfigure, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		l.hide(db.Password)
		if err := e.store.Attach(ctx, name, inst.ID, variable); errors.Is(err, store.ErrExists) {
			return failf(ErrExists, "%s already has %s from a database: detach it first", inst.Resource(), variable)
		} else if err != nil {
			return err
		}
		l.Logf("-----> Attaching database %s to %s as %s (a secret)", name, inst.Resource(), variable)
		err := e.redeployWith(ctx, l, inst.ID, change)
		if err != nil {
			e.store.Detach(context.WithoutCancel(ctx), name, inst.ID)
		}
		return err
	})
}

// DetachDatabase takes database name's URL out of APP/ENV and redeploys
// without its socket.
func (e *Engine) DetachDatabase(ctx context.Context, name, app, env, user string) (store.Operation, error) {
	_, inst, err := e.databaseAndInstallation(ctx, name, app, env)
	if err != nil {
		return store.Operation{}, err
	}
	attached, err := e.store.Attachments(ctx, "", inst.ID)
	if err != nil {
		return store.Operation{}, err
	}
	var variable string
	for _, a := range attached {
		if a.Database == name {
			variable = a.Variable
		}
	}
	if variable == "" {
		return store.Operation{}, failf(ErrUnknownInstallation, "database %s is not attached to %s", name, inst.Resource())
	}
	op := e.newOperation(store.OpConfigure, inst, user)
	return e.submit(ctx, op, func(ctx context.Context, l *opLog) error {
		if err := e.store.Detach(ctx, name, inst.ID); err != nil {
			return err
		}
		l.Logf("-----> Detaching database %s from %s (%s unset)", name, inst.Resource(), variable)
		err := e.redeployWith(ctx, l, inst.ID, &pending{unset: []string{variable}})
		if err != nil {
			e.store.Attach(context.WithoutCancel(ctx), name, inst.ID, variable)
		}
		return err
	})
}

// databaseAndInstallation reads both, and refuses a database of another
// environment: production's data is not staging's.
func (e *Engine) databaseAndInstallation(ctx context.Context, name, app, env string) (store.Database, store.Installation, error) {
	db, err := e.database(ctx, name)
	if err != nil {
		return db, store.Installation{}, err
	}
	inst, err := e.installation(ctx, app, env)
	if err != nil {
		return db, inst, err
	}
	if db.Environment != inst.Environment {
		return db, inst, failf(ErrInvalidName, "database %s belongs to %s; %s is in %s", name, db.Environment, inst.Resource(), inst.Environment)
	}
	return db, inst, nil
}

// redeployWith replaces the installation's instance with change, or
// records change for the first deploy when nothing is deployed yet.
func (e *Engine) redeployWith(ctx context.Context, l *opLog, id int64, change *pending) error {
	now, err := e.store.InstallationByID(ctx, id)
	if err != nil {
		return err
	}
	if now.Commit == "" {
		l.Logf("       Nothing is deployed yet: the first deploy will have it")
		return e.store.UpdateConfig(ctx, id, change.set, change.unset)
	}
	e.resolved(l, now.Commit)
	return e.replace(ctx, l, store.OpConfigure, id, now.Commit, l.id, change)
}

// attachDatabases gives a new instance of inst the sockets of the
// databases attached to it.
func (e *Engine) attachDatabases(ctx context.Context, l *opLog, inst store.Installation, name string) error {
	attached, err := e.store.Attachments(ctx, "", inst.ID)
	if err != nil || len(attached) == 0 || e.cfg.Databases == nil {
		return err
	}
	dr, ok := e.rt.(DeviceRuntime)
	if !ok {
		return failf(ErrNotRunning, "this runtime cannot reach databases")
	}
	devices := map[string]map[string]string{}
	var names []string
	for _, a := range attached {
		for k, d := range e.cfg.Databases.Attach(database.Database{Name: a.Database}, database.Credentials{}).Devices {
			devices[k] = d
		}
		names = append(names, a.Database)
	}
	if err := dr.AddDevices(ctx, name, devices); err != nil {
		return e.stepError(ctx, "reach the databases", err)
	}
	l.Logf("       Databases reachable: %s", strings.Join(names, ", "))
	return nil
}

// recoverDatabases puts the databases right after a start: each running
// one's server started again (a host reboot stops every instance), scratch
// servers of interrupted verifications deleted, and a provision cut short
// marked failed (deprovision it, or create it again once deprovisioned).
func (e *Engine) recoverDatabases(ctx context.Context) {
	if e.cfg.Databases == nil {
		return
	}
	if sc, ok := e.cfg.Databases.(interface{ DeleteScratch(context.Context) error }); ok {
		if err := sc.DeleteScratch(ctx); err != nil {
			e.log.Warn("Delete scratch database servers", "err", err)
		}
	}
	dbs, err := e.store.Databases(ctx)
	if err != nil {
		e.log.Warn("List databases", "err", err)
		return
	}
	for _, db := range dbs {
		switch db.State {
		case store.DatabaseProvisioning:
			e.store.SetDatabaseState(ctx, db.Name, store.DatabaseFailed)
			e.log.Warn("A database's provision was interrupted", "database", db.Name)
		case store.DatabaseRunning:
			if err := e.cfg.Databases.Start(ctx, database.Database{Name: db.Name}); err != nil {
				e.log.Error("Start database server", "database", db.Name, "err", err)
			}
		}
	}
}

// DatabaseShell runs psql in database name's instance as the apps' role,
// over the same socket they use, with stdin and out: an execute operation.
// What the session shows is the data, so only its start and end are in the
// operation's log.
func (e *Engine) DatabaseShell(ctx context.Context, name string, stdin io.Reader, out io.Writer, term *runtime.Terminal, user string) (store.Operation, int, error) {
	if _, err := e.databaseServers(); err != nil {
		return store.Operation{}, 0, err
	}
	db, err := e.database(ctx, name)
	if err != nil {
		return store.Operation{}, 0, err
	}
	if db.State != store.DatabaseRunning {
		return store.Operation{}, 0, failf(ErrNotRunning, "database %s is %s, not running", name, db.State)
	}
	op, err := e.store.CreateOperation(ctx, store.Operation{Type: store.OpExecute, Environment: db.Environment, Database: name, User: user})
	if err != nil {
		return op, 0, err
	}
	e.store.StartOperation(ctx, op.ID)
	l := &opLog{hub: e.logs, id: op.ID}
	l.Logf("-----> psql on database %s as %s (what the session shows is not kept here: it is the data)", name, db.User)
	d := database.Database{Name: name}
	// No pager: over SSH it would wait for keys the session may never send
	// (\pset pager on brings it back).
	argv := []string{"psql", "-X", "-P", "pager=off", "-h", d.SocketDir(), "-U", db.User, "-d", db.DBName}
	code, err := e.exec(ctx, d.Instance(), argv, map[string]string{"PGPASSWORD": db.Password}, stdin, out, term)
	status, reason := store.StatusSucceeded, ""
	switch {
	case err != nil:
		status, reason = store.StatusFailed, err.Error()
	case code != 0:
		status, reason = store.StatusFailed, exitReason(code)
	}
	l.Logf("Operation %d %s", op.ID, strings.TrimSuffix(status+": "+reason, ": "))
	l.Flush()
	e.finish(op, status, reason)
	if err != nil && ctx.Err() == nil {
		err = failf(ErrExecFailed, "%s", reason)
	}
	return op, code, err
}

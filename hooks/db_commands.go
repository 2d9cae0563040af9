package hooks

import (
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/channels/database"
	"github.com/slipway-dev/slipway/store"
)

func init() {
	register([]command{
		{"db create DATABASE --env ENV [--version 15]", "provision a Postgres server for ENV: its own instance and volume, the apps' credentials kept as a secret", dbCreateGate, (*Server).cmdDBCreate},
		{"db list [--json]", "the databases of the environments you may see", anyone, (*Server).cmdDBList},
		{"db info DATABASE [--json]", "a database: environment, version, state and the installations it is attached to", onDatabase(channels.ActionView), (*Server).cmdDBInfo},
		{"db reload DATABASE", "restart the server in place, its data kept", onDatabase(channels.ActionDeploy), (*Server).cmdDBReload},
		{"db deprovision DATABASE [--force]", "delete the server, keeping its volume; refused while attached unless --force", onDatabase(channels.ActionAdmin), (*Server).cmdDBDeprovision},
		{"db attach DATABASE APP/ENV [--as DATABASE_URL]", "put the database's URL into the installation's environment (a secret) and redeploy", onDatabaseAndInstallation, (*Server).cmdDBAttach},
		{"db detach DATABASE APP/ENV", "take the database's URL out of the installation and redeploy", onDatabaseAndInstallation, (*Server).cmdDBDetach},
		{"db psql DATABASE", "psql on the database as the apps' role; SQL on stdin, or a session (recorded as an execute operation, its output not stored)", onDatabase(channels.ActionDeploy), (*Server).cmdDBPsql},
		{"db backup DATABASE", "dump the running server and prove the dump by restoring it into a scratch server, table by table", onDatabase(channels.ActionBackup), (*Server).cmdDBBackup},
		{"db backups DATABASE [--json]", "the database's backups: time, size, SHA-256, verified or why not", onDatabase(channels.ActionBackup), (*Server).cmdDBBackups},
		{"db schedule DATABASE [CRON|off|default]", "show or set when the database is backed up (cron, UTC; default: --database-backup-schedule)", onDatabase(channels.ActionBackup), (*Server).cmdDBSchedule},
		{"db purge DATABASE", "remove the database's backups past retention (also run after every scheduled backup)", onDatabase(channels.ActionBackup), (*Server).cmdDBPurge},
		{"db verify DATABASE BACKUP", "prove a backup again by a restore into a scratch server", onDatabase(channels.ActionBackup), (*Server).cmdDBVerify},
		{"db restore DATABASE BACKUP [--to-new DATABASE2]", "put a backup's data back (a safety backup first, attached apps in maintenance meanwhile), or into a new database", onDatabase(channels.ActionAdmin), (*Server).cmdDBRestore},
	}...)
}

// dbCreateGate: provisioning is for the admins of the environment, as
// installing is.
func dbCreateGate(s *Server, c *call, a cmdArgs) error {
	if env := a.flags["env"]; env != "" {
		return s.envForAdmin(c, env)
	}
	return nil
}

// onDatabase: the environment of the database named by argument 0.
func onDatabase(action channels.Action) gate {
	return func(s *Server, c *call, a cmdArgs) error {
		if a.arg(0) == "" {
			return nil
		}
		db, err := s.store.DatabaseByName(c.ctx, a.arg(0))
		// The backup role sees a database's backups and nothing else of it.
		if err != nil || !s.canSeeEnv(c.ctx, c.user, db.Environment) && !s.engine.Can(c.ctx, c.user, db.Environment, action) {
			return fmt.Errorf("unknown database %s", a.arg(0))
		}
		if !s.engine.Can(c.ctx, c.user, db.Environment, action) {
			return fmt.Errorf("you may not change database %s: ask an admin of %s", a.arg(0), db.Environment)
		}
		return nil
	}
}

// onDatabaseAndInstallation: deploying in the installation's environment
// (the database must be of the same one; the engine checks).
func onDatabaseAndInstallation(s *Server, c *call, a cmdArgs) error {
	if err := onDatabase(channels.ActionView)(s, c, a); err != nil {
		return err
	}
	if a.arg(1) == "" {
		return nil
	}
	_, _, err := s.resource(c, a.arg(1), channels.ActionDeploy)
	return err
}

// databaseView is the --json shape of a database; never its password.
type databaseView struct {
	Name        string    `json:"name"`
	Environment string    `json:"environment"`
	Type        string    `json:"type"`
	Version     string    `json:"version"`
	State       string    `json:"state"`
	Socket      string    `json:"socket"` // the URL's host in attached instances
	AttachedTo  []string  `json:"attached_to"`
	CreatedAt   time.Time `json:"created_at"`
}

func (s *Server) viewDatabase(c *call, db store.Database) databaseView {
	v := databaseView{Name: db.Name, Environment: db.Environment, Type: db.Type, Version: db.Version, State: db.State,
		Socket: database.Database{Name: db.Name}.SocketDir(), AttachedTo: []string{}, CreatedAt: db.CreatedAt}
	attached, _ := s.store.Attachments(c.ctx, db.Name, 0)
	for _, a := range attached {
		if inst, err := s.store.InstallationByID(c.ctx, a.InstallationID); err == nil {
			v.AttachedTo = append(v.AttachedTo, inst.Resource()+" as "+a.Variable)
		}
	}
	return v
}

func (s *Server) cmdDBCreate(c *call, args []string) error {
	fs := flag.NewFlagSet("db create", flag.ContinueOnError)
	env := fs.String("env", "", "")
	version := fs.String("version", "", "")
	fs.String("type", "postgres", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *env == "" {
		return usageError("db create takes a DATABASE name and --env ENV")
	}
	if t := fs.Lookup("type").Value.String(); t != "postgres" {
		return usageError(fmt.Sprintf("--type %q: slipway runs postgres", t))
	}
	return s.follow(c)(s.engine.CreateDatabase(c.ctx, pos[0], *env, *version, c.user.Name))
}

func (s *Server) cmdDBList(c *call, args []string) error {
	pos, asJSON, err := jsonFlagOnly("db list", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("db list takes no arguments")
	}
	all, err := s.engine.Databases(c.ctx)
	if err != nil {
		return err
	}
	views := []databaseView{}
	for _, db := range all {
		if s.canSeeEnv(c.ctx, c.user, db.Environment) {
			views = append(views, s.viewDatabase(c, db))
		}
	}
	if asJSON {
		return writeJSON(c.out, views)
	}
	if len(views) == 0 {
		fmt.Fprintln(c.out, "No databases yet: db create NAME --env ENV")
		return nil
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tENVIRONMENT\tTYPE\tSTATE\tATTACHED TO")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", v.Name, v.Environment, v.Type, v.Version, v.State, dash(strings.Join(v.AttachedTo, ", ")))
	}
	return tw.Flush()
}

func (s *Server) cmdDBInfo(c *call, args []string) error {
	pos, asJSON, err := jsonFlagOnly("db info", args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("db info takes a DATABASE")
	}
	db, _, err := s.engine.DatabaseInfo(c.ctx, pos[0])
	if err != nil {
		return err
	}
	v := s.viewDatabase(c, db)
	if asJSON {
		return writeJSON(c.out, []databaseView{v})
	}
	fmt.Fprintf(c.out, "database:    %s (%s %s)\nenvironment: %s\nstate:       %s\nsocket:      %s\nattached to: %s\ncreated:     %s\n",
		v.Name, v.Type, v.Version, v.Environment, v.State, v.Socket, dash(strings.Join(v.AttachedTo, ", ")), v.CreatedAt.UTC().Format(time.RFC3339))
	return nil
}

func (s *Server) cmdDBReload(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("db reload takes a DATABASE")
	}
	return s.follow(c)(s.engine.ReloadDatabase(c.ctx, args[0], c.user.Name))
}

func (s *Server) cmdDBDeprovision(c *call, args []string) error {
	fs := flag.NewFlagSet("db deprovision", flag.ContinueOnError)
	force := fs.Bool("force", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("db deprovision takes a DATABASE")
	}
	return s.follow(c)(s.engine.DeprovisionDatabase(c.ctx, pos[0], *force, c.user.Name))
}

func (s *Server) cmdDBAttach(c *call, args []string) error {
	fs := flag.NewFlagSet("db attach", flag.ContinueOnError)
	as := fs.String("as", channels.DefaultDatabaseVariable, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("db attach takes a DATABASE and APP/ENV")
	}
	app, env, err := channels.ParseResource(pos[1])
	if err != nil {
		return err
	}
	return s.follow(c)(s.engine.AttachDatabase(c.ctx, pos[0], app, env, *as, c.user.Name))
}

func (s *Server) cmdDBDetach(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("db detach takes a DATABASE and APP/ENV")
	}
	app, env, err := channels.ParseResource(args[1])
	if err != nil {
		return err
	}
	return s.follow(c)(s.engine.DetachDatabase(c.ctx, args[0], app, env, c.user.Name))
}

func (s *Server) cmdDBBackup(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("db backup takes a DATABASE")
	}
	return s.follow(c)(s.engine.BackupDatabase(c.ctx, args[0], c.user.Name, store.OriginManual))
}

func (s *Server) cmdDBBackups(c *call, args []string) error {
	pos, asJSON, err := jsonFlagOnly("db backups", args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("db backups takes a DATABASE")
	}
	list, err := s.engine.DatabaseBackups(c.ctx, pos[0])
	if err != nil {
		return err
	}
	if asJSON {
		views := []backupView{}
		for _, b := range list {
			views = append(views, s.viewBackup(b))
		}
		return writeJSON(c.out, views)
	}
	return writeBackups(c.out, list)
}

func (s *Server) cmdDBVerify(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("db verify takes a DATABASE and a BACKUP id")
	}
	return s.follow(c)(s.engine.VerifyDatabaseBackup(c.ctx, args[0], args[1], c.user.Name))
}

func (s *Server) cmdDBRestore(c *call, args []string) error {
	fs := flag.NewFlagSet("db restore", flag.ContinueOnError)
	toNew := fs.String("to-new", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("db restore takes a DATABASE and a BACKUP id")
	}
	return s.follow(c)(s.engine.RestoreDatabase(c.ctx, pos[0], pos[1], *toNew, c.user.Name))
}

func (s *Server) cmdDBPsql(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("db psql takes a DATABASE")
	}
	_, code, err := s.engine.DatabaseShell(c.ctx, args[0], c.sess, c.out, c.terminal(), c.user.Name)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func (s *Server) cmdDBSchedule(c *call, args []string) error {
	switch len(args) {
	case 1:
		db, err := s.store.DatabaseByName(c.ctx, args[0])
		if err != nil {
			return fmt.Errorf("unknown database %s", args[0])
		}
		spec := db.Schedule
		if spec == "" {
			spec = "default (" + s.cfg.DatabaseBackupSchedule + ")"
		}
		fmt.Fprintf(c.out, "database %s is backed up: %s\n", db.Name, spec)
		return nil
	case 2:
		spec, err := s.engine.SetDatabaseSchedule(c.ctx, args[0], args[1])
		if err != nil {
			return err
		}
		if spec == "" {
			spec = "the default"
		}
		fmt.Fprintf(c.out, "database %s is backed up on %s from now on\n", args[0], spec)
		return nil
	}
	return usageError("db schedule takes a DATABASE and optionally CRON, off or default")
}

func (s *Server) cmdDBPurge(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("db purge takes a DATABASE")
	}
	return s.follow(c)(s.engine.PurgeDatabase(c.ctx, args[0], c.user.Name))
}

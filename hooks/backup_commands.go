package hooks

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

func init() {
	register([]command{
		{"backup now APP/ENV | --store | --system", "back up the installation's volumes (or the store, or slipway itself) now, then test-restore the backup", onBackups(channels.ActionBackup), (*Server).cmdBackupNow},
		{"backup list APP/ENV | --store | --system [--json]", "backups with size, SHA-256 and whether their test restore matched", onBackups(channels.ActionBackup), (*Server).cmdBackupList},
		{"backup verify APP/ENV BACKUP | --store BACKUP | --system BACKUP", "check a backup's file against its SHA-256 and test-restore it again", onBackups(channels.ActionBackup), (*Server).cmdBackupVerify},
		{"backup schedule APP/ENV [CRON|off|default]", "show or set when the installation is backed up (cron, UTC)", onBackups(channels.ActionBackup), (*Server).cmdBackupSchedule},
		{"backup purge APP/ENV | --store | --system", "remove backups past retention (also run after every scheduled backup)", onBackups(channels.ActionBackup), (*Server).cmdBackupPurge},
		{"backup copy BACKUP", "copy a verified backup (any kind) to --backup-copy-dir and check it there against its SHA-256", backupByIDGate, (*Server).cmdBackupCopy},
		{"restore APP/ENV BACKUP [--to-new APP/ENV2]", "restore a volume backup (a safety backup is taken first) and redeploy without downtime", restoreGate, (*Server).cmdRestore},
	}...)
}

// backupResource parses APP/ENV and checks the user may act on its backups.
// The backup role sees the installations of its environments for backups
// only; an installation the user may not see is reported as unknown.
func (s *Server) backupResource(c *call, arg string, a channels.Action) (app, env string, err error) {
	app, env, err = channels.ParseResource(arg)
	if err != nil {
		return "", "", err
	}
	_, err = s.store.InstallationByName(c.ctx, app, env)
	visible := s.engine.Can(c.ctx, c.user, env, channels.ActionView) || s.engine.Can(c.ctx, c.user, env, channels.ActionBackup)
	if err != nil || !visible {
		return "", "", fmt.Errorf("unknown installation %s/%s", app, env)
	}
	if !s.engine.Can(c.ctx, c.user, env, a) {
		if a == channels.ActionRestore {
			return "", "", fmt.Errorf("only an admin of %s may restore backups of %s/%s", env, app, env)
		}
		return "", "", fmt.Errorf("you may not back up %s/%s: ask an admin of %s for the backup role", app, env, env)
	}
	return app, env, nil
}

// backupTarget reads "APP/ENV", "--store" or "--system" (the gate,
// onBackups, decided who may). kind is the backup kind: the flag's, or
// volume for APP/ENV.
func backupTarget(name string, args []string, more int) (kind, app, env string, rest []string, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	storeFlag := fs.Bool("store", false, "")
	systemFlag := fs.Bool("system", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return "", "", "", nil, err
	}
	bad := usageError(name + " takes APP/ENV, --store or --system")
	if *storeFlag || *systemFlag {
		if len(pos) != more || (*storeFlag && *systemFlag) {
			return "", "", "", nil, bad
		}
		if *systemFlag {
			return store.BackupKindSystem, "", "", pos, nil
		}
		return store.BackupKindStore, "", "", pos, nil
	}
	if len(pos) != 1+more {
		return "", "", "", nil, bad
	}
	app, env, err = channels.ParseResource(pos[0])
	return store.BackupKindVolume, app, env, pos[1:], err
}

func (s *Server) cmdBackupNow(c *call, args []string) error {
	kind, app, env, _, err := backupTarget("backup now", args, 0)
	if err != nil {
		return err
	}
	var op store.Operation
	switch kind {
	case store.BackupKindSystem:
		op, err = s.engine.BackupSystem(c.ctx, c.user.Name, store.OriginManual)
	case store.BackupKindStore:
		op, err = s.engine.BackupStore(c.ctx, c.user.Name, store.OriginManual)
	default:
		op, err = s.engine.Backup(c.ctx, app, env, c.user.Name, store.OriginManual)
	}
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

// backupView is the --json shape of a backup.
type backupView struct {
	ID          int64      `json:"id"`
	Kind        string     `json:"kind"`
	Resource    string     `json:"resource"`
	App         string     `json:"app,omitempty"`
	Environment string     `json:"environment,omitempty"`
	Volume      string     `json:"volume,omitempty"`
	Source      string     `json:"source,omitempty"`
	File        string     `json:"file"`
	Size        int64      `json:"size"`
	SHA256      string     `json:"sha256"`
	Files       int        `json:"files"`
	State       string     `json:"state"`
	Reason      string     `json:"reason,omitempty"`
	Origin      string     `json:"origin"`
	OperationID int64      `json:"operation_id"`
	CreatedAt   time.Time  `json:"created_at"`
	VerifiedAt  *time.Time `json:"verified_at"`
}

func (s *Server) viewBackup(b store.Backup) backupView {
	v := backupView{ID: b.ID, Kind: b.Kind, Resource: b.Resource(), App: b.App, Environment: b.Environment, Volume: b.Volume,
		Source: b.Source, File: s.engine.BackupPath(b), Size: b.Size, SHA256: b.SHA256, Files: b.Files, State: b.State,
		Reason: b.Reason, Origin: b.Origin, OperationID: b.OperationID, CreatedAt: b.CreatedAt}
	if !b.VerifiedAt.IsZero() {
		t := b.VerifiedAt
		v.VerifiedAt = &t
	}
	return v
}

func (s *Server) cmdBackupList(c *call, args []string) error {
	fs := flag.NewFlagSet("backup list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	storeFlag := fs.Bool("store", false, "")
	systemFlag := fs.Bool("system", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	rest := pos
	if *storeFlag {
		rest = append(rest, "--store")
	}
	if *systemFlag {
		rest = append(rest, "--system")
	}
	kind, app, env, _, err := backupTarget("backup list", rest, 0)
	if err != nil {
		return err
	}
	var list []store.Backup
	switch kind {
	case store.BackupKindSystem:
		list, err = s.engine.SystemBackups(c.ctx)
	case store.BackupKindStore:
		list, err = s.engine.StoreBackups(c.ctx)
	default:
		list, err = s.engine.Backups(c.ctx, app, env)
	}
	if err != nil {
		return err
	}
	if *asJSON {
		views := []backupView{}
		for _, b := range list {
			views = append(views, s.viewBackup(b))
		}
		return writeJSON(c.out, views)
	}
	if app != "" {
		spec, own, err := s.engine.BackupSchedule(c.ctx, app, env)
		if err != nil {
			return err
		}
		fmt.Fprintf(c.out, "Backups of %s/%s, %s\n", app, env, describeSchedule(spec, own))
	}
	return writeBackups(c.out, list)
}

// writeBackups prints backups as a table, newest first.
func writeBackups(w io.Writer, list []store.Backup) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tVOLUME\tTAKEN\tORIGIN\tSIZE\tFILES\tSHA256\tSTATE")
	for _, b := range list {
		state := b.State
		if b.State == store.BackupFailed {
			state = "verification failed: " + b.Reason
		}
		sum := b.SHA256
		if len(sum) > 16 {
			sum = sum[:16]
		}
		vol, files := b.Volume, strconv.Itoa(b.Files)
		switch b.Kind {
		case store.BackupKindStore:
			vol, files = "(store)", "-"
		case store.BackupKindSystem:
			vol = "(system)" // FILES: the repositories in it
		case store.BackupKindDatabase:
			vol = "(database " + b.Volume + ")" // FILES: its tables
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.ID, vol, stamp(b.CreatedAt), b.Origin, b.Size, files, dash(sum), strings.ReplaceAll(state, "\n", " "))
	}
	return tw.Flush()
}

func describeSchedule(spec string, own bool) string {
	switch {
	case spec == "" || spec == "off":
		return "no scheduled backups"
	case own:
		return fmt.Sprintf("scheduled %q (UTC, its own)", spec)
	}
	return fmt.Sprintf("scheduled %q (UTC, the daemon's default)", spec)
}

func (s *Server) cmdBackupVerify(c *call, args []string) error {
	kind, app, env, rest, err := backupTarget("backup verify", args, 1)
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(rest[0], "#"), 10, 64)
	if err != nil || id <= 0 {
		return usageError(fmt.Sprintf("%q is not a backup ID", rest[0]))
	}
	b, err := s.store.BackupByID(c.ctx, id)
	if err != nil || b.Kind != kind || (kind == store.BackupKindVolume && (b.App != app || b.Environment != env)) {
		return fmt.Errorf("unknown backup %d", id)
	}
	return s.follow(c)(s.engine.VerifyBackup(c.ctx, id, c.user.Name))
}

func (s *Server) cmdBackupSchedule(c *call, args []string) error {
	if len(args) < 1 {
		return usageError("backup schedule takes APP/ENV and, to change it, a cron schedule, off or default")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	if len(args) > 1 {
		// A cron line is five words; take them however the shell split them.
		if err := s.engine.SetBackupSchedule(c.ctx, app, env, strings.Join(args[1:], " ")); err != nil {
			return err
		}
	}
	spec, own, err := s.engine.BackupSchedule(c.ctx, app, env)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s/%s: %s\n", app, env, describeSchedule(spec, own))
	return nil
}

func (s *Server) cmdBackupPurge(c *call, args []string) error {
	kind, app, env, _, err := backupTarget("backup purge", args, 0)
	if err != nil {
		return err
	}
	var op store.Operation
	switch kind {
	case store.BackupKindSystem:
		op, err = s.engine.PurgeSystem(c.ctx, c.user.Name)
	case store.BackupKindStore:
		op, err = s.engine.PurgeStore(c.ctx, c.user.Name)
	default:
		op, err = s.engine.Purge(c.ctx, app, env, c.user.Name)
	}
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

func (s *Server) cmdRestore(c *call, args []string) error {
	fs := flag.NewFlagSet("restore", flag.ContinueOnError)
	to := fs.String("to-new", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usageError("restore takes APP/ENV and a backup ID")
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	id, err := strconv.ParseInt(strings.TrimPrefix(pos[1], "#"), 10, 64)
	if err != nil || id <= 0 {
		return usageError(fmt.Sprintf("%q is not a backup ID", pos[1]))
	}
	var toApp, toEnv string
	if *to != "" {
		if toApp, toEnv, err = channels.ParseResource(*to); err != nil {
			return err
		}
	}
	return s.follow(c)(s.engine.Restore(c.ctx, app, env, id, toApp, toEnv, c.user.Name))
}

// backupByIDGate: the backup named by argument 0, with the backup role of its
// environment; the store's and slipway's own, global admins only.
func backupByIDGate(s *Server, c *call, a cmdArgs) error {
	if a.arg(0) == "" {
		return nil
	}
	id, err := strconv.ParseInt(a.arg(0), 10, 64)
	b, berr := s.store.BackupByID(c.ctx, id)
	switch {
	case err != nil || berr != nil:
		return fmt.Errorf("no backup %s", a.arg(0))
	case b.Environment == "":
		return serverAdmin(s, c, a)
	case !s.engine.Can(c.ctx, c.user, b.Environment, channels.ActionBackup):
		return fmt.Errorf("no backup %s", a.arg(0)) // as unknown as one that does not exist
	}
	return nil
}

func (s *Server) cmdBackupCopy(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("backup copy takes a BACKUP id")
	}
	return s.follow(c)(s.engine.CopyBackup(c.ctx, args[0], c.user.Name))
}

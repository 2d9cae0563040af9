package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

func init() {
	register([]command{
		{"ops [--app A] [--env E] [--type T] [--user U] [--status S] [--since 24h|2026-11-01] [--limit N] [--json]", "operations, newest first", anyone, (*Server).cmdOps},
		{"logs OP|APP/ENV [-f] [--json] | logs APP/ENV --app [-f] [-n N] [--since 1h] [--process web]", "an operation's log (APP/ENV: its newest operation); --app: what the app's processes print, from every instance (each reading is recorded as a logs operation); -f follows live", onOperationOrInstallation(channels.ActionView), (*Server).cmdLogs},
		{"cancel OP", "stop a queued or running operation; its new instance is removed, the old one keeps serving", onOperation(channels.ActionDeploy), (*Server).cmdCancel},
		{"restart APP/ENV", "replace the instance with a fresh one of the same commit, without downtime", onInstallation(channels.ActionDeploy), (*Server).cmdRestart},
		{"rebuild APP/ENV", "build the served commit again from scratch (no kept image, an empty build cache) and deploy it", onInstallation(channels.ActionDeploy), (*Server).cmdRebuild},
		{"config APP/ENV [--json]", "list the environment variables (secret values masked)", onInstallation(channels.ActionView), (*Server).cmdConfig},
		{"config set APP/ENV [--secret] KEY=VALUE...", "set variables and redeploy; --secret values are never shown again", onInstallation(channels.ActionDeploy), (*Server).cmdConfigSet},
		{"config unset APP/ENV KEY...", "unset variables and redeploy", onInstallation(channels.ActionDeploy), (*Server).cmdConfigUnset},
		{"maintenance APP/ENV on|off [--message TEXT]", "answer 503 with a maintenance page, or serve again", onInstallation(channels.ActionDeploy), (*Server).cmdMaintenance},
		{"run APP/ENV -- CMD...", "run a one-off command in the serving instance", onInstallation(channels.ActionDeploy), (*Server).cmdRun},
		{"deprovision APP/ENV", "stop traffic and delete the installation's instances", onInstallation(channels.ActionAdmin), (*Server).cmdDeprovision},
	}...)
}

// operationStatuses are the values of ops --status.
var operationStatuses = []string{store.StatusQueued, store.StatusRunning, store.StatusSucceeded, store.StatusFailed, store.StatusCancelled}

func (s *Server) cmdOps(c *call, args []string) error {
	fs := flag.NewFlagSet("ops", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	limit := fs.Int("limit", 50, "")
	var f store.OperationFilter
	fs.StringVar(&f.App, "app", "", "")
	fs.StringVar(&f.Environment, "env", "", "")
	fs.StringVar(&f.Type, "type", "", "")
	fs.StringVar(&f.User, "user", "", "")
	status := fs.String("status", "", "")
	since := fs.String("since", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("ops takes only flags")
	}
	if *status != "" {
		if !slices.Contains(operationStatuses, *status) {
			return usageError(fmt.Sprintf("--status %q: give one of %s", *status, strings.Join(operationStatuses, ", ")))
		}
		f.Statuses = []string{*status}
	}
	if f.Type != "" && !slices.Contains(store.OpTypes, store.OpType(f.Type)) {
		var names []string
		for _, t := range store.OpTypes {
			names = append(names, string(t))
		}
		return usageError(fmt.Sprintf("--type %q: give one of %s", f.Type, strings.Join(names, ", ")))
	}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return usageError(err.Error())
		}
		f.Since = t
	}
	if *limit < 1 {
		return usageError(fmt.Sprintf("--limit %d: give a number of operations, 1 or more", *limit))
	}
	f.Limit = *limit
	f.Environments = s.engine.VisibleEnvironments(c.ctx, c.user)
	ops, err := s.store.Operations(c.ctx, f)
	if err != nil {
		return err
	}
	if *asJSON {
		views := []operationView{}
		for _, o := range ops {
			views = append(views, viewOperation(o))
		}
		return writeJSON(c.out, views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tTYPE\tRESOURCE\tUSER\tSTATUS\tCOMMIT\tSTARTED\tFINISHED")
	for _, o := range ops {
		status := o.Status
		if strings.HasPrefix(o.Cleanup, store.CleanupFailed) {
			status += " (clean-up failed: see logs)"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", o.ID, o.Type, o.Resource(), o.User, status,
			dash(shortID(o.Commit)), stamp(o.StartedAt), stamp(o.FinishedAt))
	}
	return tw.Flush()
}

// parseSince reads a duration back from now (24h, 7d) or a date/time.
func parseSince(v string, now time.Time) (time.Time, error) {
	if strings.HasSuffix(v, "d") {
		if n, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil && n >= 0 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--since %q: give a duration (24h, 7d) or a date (2026-11-01)", v)
}

// visibleOperation returns an operation the user may see, or "unknown operation".
func (s *Server) visibleOperation(c *call, arg string) (store.Operation, error) {
	id, err := strconv.ParseInt(strings.TrimPrefix(arg, "#"), 10, 64)
	if err != nil || id <= 0 {
		return store.Operation{}, usageError(fmt.Sprintf("%q is not an operation ID", arg))
	}
	op, err := s.store.Operation(c.ctx, id)
	if err != nil || (op.Environment != "" && !s.canSeeEnv(c.ctx, c.user, op.Environment)) || (op.Environment == "" && !c.user.Admin) {
		return store.Operation{}, fmt.Errorf("unknown operation %d", id)
	}
	return op, nil
}

func (s *Server) cmdLogs(c *call, args []string) error {
	fs := flag.NewFlagSet("logs", flag.ContinueOnError)
	follow := fs.Bool("f", false, "")
	fs.BoolVar(follow, "follow", false, "")
	asJSON := fs.Bool("json", false, "")
	app := fs.Bool("app", false, "")
	var af appLogFlags
	af.register(fs)
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("logs takes one operation ID or APP/ENV")
	}
	if *app {
		if !strings.Contains(pos[0], "/") {
			return usageError("logs --app takes APP/ENV: the app's own output is kept per installation")
		}
		return s.appLogs(c, pos[0], af, *follow, *asJSON)
	}
	var op store.Operation
	if strings.Contains(pos[0], "/") {
		app, env, err := channels.ParseResource(pos[0])
		if err != nil {
			return err
		}
		inst, _ := s.store.InstallationByName(c.ctx, app, env)
		ops, err := s.store.Operations(c.ctx, store.OperationFilter{InstallationID: inst.ID, Limit: 1})
		if err != nil {
			return err
		}
		if len(ops) == 0 {
			return fmt.Errorf("%s has no operations yet", pos[0])
		}
		op = ops[0]
	} else if op, err = s.visibleOperation(c, pos[0]); err != nil {
		return err
	}
	if !*follow {
		return s.printLog(c, op.ID, *asJSON)
	}
	enc := json.NewEncoder(c.out)
	final, err := s.engine.Follow(c.ctx, op.ID, 0, func(l store.LogLine) error {
		if *asJSON { // one object a line, as they come
			return enc.Encode(viewLogLine(l))
		}
		_, err := fmt.Fprintln(c.out, l.Text)
		return err
	})
	if err != nil {
		return nil // the reader went away
	}
	if final.Status != store.StatusSucceeded {
		return exitCode(1)
	}
	return nil
}

// logLineView is the --json shape of a log line.
type logLineView struct {
	Seq  int64     `json:"seq"`
	At   time.Time `json:"at"`
	Text string    `json:"text"`
}

func viewLogLine(l store.LogLine) logLineView { return logLineView{Seq: l.Seq, At: l.At, Text: l.Text} }

// printLog writes an operation's stored log a page at a time: as text, or as
// one JSON array of lines.
func (s *Server) printLog(c *call, opID int64, asJSON bool) error {
	const page = 1000
	var after int64
	first := true
	if asJSON {
		fmt.Fprint(c.out, "[")
		defer fmt.Fprintln(c.out, "]")
	}
	for {
		lines, err := s.store.Logs(c.ctx, opID, after, page)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if asJSON {
				data, _ := json.Marshal(viewLogLine(l))
				if !first {
					fmt.Fprint(c.out, ",")
				}
				first = false
				_, err = fmt.Fprintf(c.out, "\n  %s", data)
			} else {
				_, err = fmt.Fprintln(c.out, l.Text)
			}
			if err != nil {
				return nil // the reader went away
			}
			after = max(after, l.Seq)
		}
		if len(lines) < page {
			return nil
		}
	}
}

func (s *Server) cmdCancel(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("cancel takes one operation ID")
	}
	op, err := s.visibleOperation(c, args[0])
	if err != nil {
		return err
	}
	if err := s.engine.Cancel(op.ID, c.user.Name); errors.Is(err, channels.ErrNotRunning) {
		op, _ = s.store.Operation(c.ctx, op.ID)
		return fmt.Errorf("operation %d is %s, not queued or running", op.ID, op.Status)
	} else if err != nil {
		return err
	}
	final, err := s.engine.Wait(c.ctx, op.ID)
	if err != nil {
		return nil
	}
	fmt.Fprintf(c.out, "Operation %d %s\n", final.ID, final.Status)
	return nil
}

func (s *Server) cmdRestart(c *call, args []string) error {
	return s.redeploy(c, args, "restart", s.engine.Restart)
}

func (s *Server) cmdRebuild(c *call, args []string) error {
	return s.redeploy(c, args, "rebuild", s.engine.Rebuild)
}

// redeploy runs restart or rebuild on APP/ENV and follows the operation.
func (s *Server) redeploy(c *call, args []string, name string, run func(ctx context.Context, app, env, user string) (store.Operation, error)) error {
	app, env, err := oneResource(args, name)
	if err != nil {
		return err
	}
	op, err := run(c.ctx, app, env, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

type configView struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Secret bool   `json:"secret"`
}

func (s *Server) cmdConfig(c *call, args []string) error {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	app, env, err := oneResource(pos, "config")
	if err != nil {
		return err
	}
	inst, _ := s.store.InstallationByName(c.ctx, app, env)
	vars, err := s.store.Config(c.ctx, inst.ID)
	if err != nil {
		return err
	}
	if *asJSON {
		views := []configView{}
		for _, v := range vars {
			views = append(views, configView{Key: v.Key, Value: v.Masked(), Secret: v.Secret})
		}
		return writeJSON(c.out, views)
	}
	if len(vars) == 0 {
		fmt.Fprintf(c.out, "no variables set for %s (set some with: config set %s KEY=VALUE)\n", pos[0], pos[0])
	}
	for _, v := range vars {
		fmt.Fprintf(c.out, "%s=%s\n", v.Key, v.Masked())
	}
	return nil
}

func (s *Server) cmdConfigSet(c *call, args []string) error {
	fs := flag.NewFlagSet("config set", flag.ContinueOnError)
	secret := fs.Bool("secret", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 2 {
		return usageError("config set takes APP/ENV and KEY=VALUE pairs")
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	set := map[string]string{}
	for _, kv := range pos[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError(fmt.Sprintf("%q is not KEY=VALUE", redactAssignment(kv)))
		}
		set[k] = v
	}
	op, err := s.engine.Configure(c.ctx, app, env, set, *secret, nil, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

// redactAssignment keeps a value out of an error message in case it was a secret.
func redactAssignment(kv string) string {
	if len(kv) > 12 {
		return kv[:4] + "…"
	}
	return kv
}

func (s *Server) cmdConfigUnset(c *call, args []string) error {
	if len(args) < 2 {
		return usageError("config unset takes APP/ENV and KEYs")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	keys := append([]string(nil), args[1:]...)
	sort.Strings(keys)
	op, err := s.engine.Configure(c.ctx, app, env, nil, false, keys, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

func (s *Server) cmdMaintenance(c *call, args []string) error {
	fs := flag.NewFlagSet("maintenance", flag.ContinueOnError)
	message := fs.String("message", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 || (pos[1] != "on" && pos[1] != "off") {
		return usageError("maintenance takes APP/ENV and on or off")
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	op, err := s.engine.Maintenance(c.ctx, app, env, pos[1] == "on", *message, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

func (s *Server) cmdRun(c *call, args []string) error {
	if len(args) < 3 || args[1] != "--" {
		return usageError("run takes APP/ENV -- CMD...")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	_, code, err := s.engine.Execute(c.ctx, app, env, args[2:], c.sess, c.out, c.terminal(), c.user.Name)
	if err != nil {
		return err
	}
	if code != 0 {
		return exitCode(code)
	}
	return nil
}

func (s *Server) cmdDeprovision(c *call, args []string) error {
	app, env, err := oneResource(args, "deprovision")
	if err != nil {
		return err
	}
	op, err := s.engine.Deprovision(c.ctx, app, env, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

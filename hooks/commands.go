package hooks

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gliderlabs/ssh"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

// call is one SSH command being answered.
type call struct {
	ctx    context.Context
	sess   ssh.Session
	user   store.User
	out    io.Writer
	errOut io.Writer
	// keyFingerprint is the key the user came in with: a web sign-in it
	// asks for ends when that key is removed.
	keyFingerprint string
}

// usageError is a command used wrongly; its text is the one line to show.
type usageError string

func (e usageError) Error() string { return string(e) }

type command struct {
	usage string
	help  string
	gate  gate // who may run it (gate.go)
	run   func(s *Server, c *call, args []string) error
}

var commands = map[string]command{}

// register adds commands, keyed by the words before their first argument.
func register(cs ...command) {
	for _, c := range cs {
		commands[commandKey(c.usage)] = c
	}
}

func init() {
	register([]command{
		{"help", "show this help", anyone, (*Server).cmdHelp},
		{"app create NAME", "create an app (a git repository to push to)", serverAdmin, (*Server).cmdAppCreate},
		{"env create NAME", "create an environment", serverAdmin, (*Server).cmdEnvCreate},
		{"app delete NAME", "delete an app and its repository (not while it is installed)", serverAdmin, (*Server).cmdAppDelete},
		{"env delete NAME", "delete an environment (not while it has installations)", serverAdmin, (*Server).cmdEnvDelete},
		{"install APP/ENV --branch BRANCH [--host HOST]", "install APP in ENV following BRANCH", installGate, (*Server).cmdInstall},
		{"status [APP/ENV] [--json]", "channel, commit served, instance and state", onInstallation(channels.ActionView), (*Server).cmdStatus},
	}...)
}

// commandKey is the command's words before its first argument.
func commandKey(usage string) string {
	var words []string
	for _, w := range strings.Fields(usage) {
		if strings.ToUpper(w) == w || strings.HasPrefix(w, "[") || strings.HasPrefix(w, "-") {
			break
		}
		words = append(words, w)
	}
	return strings.Join(words, " ")
}

func (s *Server) runCommand(sess ssh.Session, user store.User, args []string) int {
	fp, _ := sess.Context().Value(fingerprintKey).(string)
	c := &call{ctx: sess.Context(), sess: sess, user: user, out: sess, errOut: sess.Stderr(), keyFingerprint: fp}
	cmd, rest, ok := lookupCommand(args)
	if !ok {
		fmt.Fprintf(c.errOut, "slipway: unknown command %q; run 'help' for the list\n", strings.Join(args, " "))
		return 1
	}
	if wantsHelp(rest) {
		writeUsage(c.out, cmd)
		return 0
	}
	err := checkNoFlags(cmd.usage, rest)
	if err == nil {
		err = cmd.gate(s, c, splitArgs(rest))
	}
	if err == nil {
		err = cmd.run(s, c, rest)
	}
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code)
	}
	fmt.Fprintf(c.errOut, "slipway: %s\n", userMessage(err))
	// A name written wrongly (APP/ENV without its /) is a usage error too.
	var ue usageError
	if errors.As(err, &ue) || errors.Is(err, channels.ErrInvalidName) {
		writeUsageLine(c.errOut, cmd)
	}
	return 1
}

func lookupCommand(args []string) (command, []string, bool) {
	for n := min(len(args), 3); n > 0; n-- {
		if cmd, ok := commands[strings.Join(args[:n], " ")]; ok {
			return cmd, args[n:], true
		}
	}
	return command{}, nil, false
}

// exitCode passes a command's own exit status through without a message.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// userMessage turns an error into the one line a person reads: the engine's
// errors for people carry it whole; this package's own errors are written
// for people too.
func userMessage(err error) string {
	msg := err.Error()
	if _, m, ok := channels.ForPeople(err); ok {
		msg = m
	}
	return strings.ReplaceAll(msg, "\n", " ")
}

// parseFlags parses flags that may come before or after positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageError(flagMessage(fs, err))
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// jsonFlagOnly parses the flags of a command whose one flag is --json.
func jsonFlagOnly(name string, args []string) ([]string, bool, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	return pos, *asJSON, err
}

func (s *Server) cmdHelp(c *call, args []string) error {
	if len(args) > 0 {
		cmd, _, ok := lookupCommand(args)
		if !ok {
			return fmt.Errorf("there is no command %q; run 'help' for the list", strings.Join(args, " "))
		}
		writeUsage(c.out, cmd)
		return nil
	}
	fmt.Fprintln(c.out, "slipway: git push to deploy. Run a command with: ssh -p PORT git@HOST COMMAND")
	fmt.Fprintln(c.out, "Push an app: git remote add deploy ssh://git@HOST:PORT/APP && git push deploy main")
	listed := map[string]bool{}
	for _, t := range helpTopics {
		fmt.Fprintf(c.out, "\n%s:\n", t.title)
		for _, k := range t.commands {
			if cmd, ok := commands[k]; ok {
				writeWrapped(c.out, "  ", cmd.usage)
				writeWrapped(c.out, "      ", cmd.help)
				listed[k] = true
			}
		}
	}
	var rest []string
	for k := range commands {
		if !listed[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	if len(rest) > 0 {
		fmt.Fprintln(c.out, "\nOther:")
		for _, k := range rest {
			writeWrapped(c.out, "  ", commands[k].usage)
			writeWrapped(c.out, "      ", commands[k].help)
		}
	}
	fmt.Fprintln(c.out, "\nhelp COMMAND (or COMMAND --help) shows one command.")
	return nil
}

func (s *Server) cmdAppCreate(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("app create takes one name")
	}
	if _, err := s.engine.CreateApp(c.ctx, args[0]); err != nil {
		return err
	}
	// The address the client reached us on is the one it can push to.
	fmt.Fprintf(c.out, "Created app %s. Push to it: git remote add deploy ssh://git@%s/%s\n", args[0], c.sess.LocalAddr(), args[0])
	return nil
}

func (s *Server) cmdEnvCreate(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("env create takes one name")
	}
	if _, err := s.engine.CreateEnvironment(c.ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Created environment %s\n", args[0])
	return nil
}

func (s *Server) cmdAppDelete(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("app delete takes one name")
	}
	if err := s.engine.DeleteApp(c.ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Deleted app %s and its repository; its operations stay on record\n", args[0])
	return nil
}

func (s *Server) cmdEnvDelete(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("env delete takes one name")
	}
	if err := s.engine.DeleteEnvironment(c.ctx, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Deleted environment %s and the roles in it; its operations and reports stay on record\n", args[0])
	return nil
}

func (s *Server) cmdInstall(c *call, args []string) error {
	fs := flag.NewFlagSet("install", flag.ContinueOnError)
	branch := fs.String("branch", "", "")
	host := fs.String("host", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || *branch == "" {
		return usageError("install takes APP/ENV and --branch BRANCH")
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	inst, op, err := s.engine.Install(c.ctx, app, env, *branch, *host, c.user.Name)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Installed %s following branch %s, served at http://%s/\n", inst.Resource(), *branch, s.withProxyPort(inst.Host))
	if op != nil {
		fmt.Fprintf(c.out, "Deploying the head of %s: operation %d (follow it with: logs %d)\n", *branch, op.ID, op.ID)
	} else {
		fmt.Fprintf(c.out, "Nothing is deployed until you push branch %s\n", *branch)
	}
	return nil
}

// installationView is the --json shape of an installation.
type installationView struct {
	App         string   `json:"app"`
	Environment string   `json:"environment"`
	Host        string   `json:"host"`
	Channel     string   `json:"channel"`
	ChannelKind string   `json:"channel_kind"`
	ChannelRef  string   `json:"channel_ref"`
	Commit      string   `json:"commit"`
	Instance    string   `json:"instance"`
	Instances   []string `json:"instances"` // every instance it serves from (ps tells more)
	// Running counts those of Instances Incus runs; null when Incus did not
	// answer. Fewer than Instances: some stopped or vanished (a heal is due).
	Running *int `json:"running"`
	// VolumesOn is the Incus cluster member whose volumes keep it there
	// (Incus's local volumes are member-bound); "" off a cluster.
	VolumesOn string     `json:"volumes_on,omitempty"`
	State     string     `json:"state"`
	Draining  []string   `json:"draining"` // old instances still being drained and deleted
	Limits    limitsView `json:"limits"`
	CreatedAt time.Time  `json:"created_at"`
	// LastOperation is the installation's newest operation, so a failed
	// deploy shows where people look first.
	LastOperation *operationView `json:"last_operation"`
	// LastFailure is the newest operation that was to change what serves,
	// when it did not succeed, even if reads (logs --app) or runs came after:
	// an installation whose deploys all failed says why. Null otherwise.
	LastFailure *operationView `json:"last_failure"`
}

// servingTypes are the operations that change what an installation serves.
var servingTypes = map[string]bool{
	string(store.OpDeploy): true, string(store.OpSwitch): true, string(store.OpRestart): true,
	string(store.OpConfigure): true, string(store.OpRebuild): true, string(store.OpRestore): true,
	string(store.OpMaintenance): true, string(store.OpDeprovision): true,
	string(store.OpScale): true, string(store.OpHeal): true,
}

// lastFailure is the newest of ops (newest first) that changes what serves,
// when it ended without succeeding.
func lastFailure(ops []store.Operation) *operationView {
	for _, o := range ops {
		if !servingTypes[string(o.Type)] {
			continue
		}
		if o.Status != store.StatusFailed && o.Status != store.StatusCancelled {
			return nil
		}
		v := viewOperation(o)
		return &v
	}
	return nil
}

func (s *Server) viewInstallation(i store.Installation, states map[string]map[string]int) installationView {
	draining := s.engine.Retiring(i.ID)
	sort.Strings(draining)
	if draining == nil {
		draining = []string{}
	}
	v := installationView{App: i.App, Environment: i.Environment, Host: i.Host, Channel: i.Channel(),
		ChannelKind: i.Following.Kind, ChannelRef: i.Following.Ref, Commit: i.Commit, Instance: i.Instance,
		State: i.State, Draining: draining, CreatedAt: i.CreatedAt,
		Limits: viewLimits(i.Limits), Instances: []string{}}
	for _, m := range i.Members {
		v.Instances = append(v.Instances, m.Name)
	}
	if counts, ok := states[i.Resource()]; ok {
		n := counts[channels.InstanceServing] + counts[channels.InstanceRunning]
		v.Running = &n
	}
	v.VolumesOn, _ = s.engine.VolumesHome(context.Background(), i)
	if ops, err := s.store.Operations(context.Background(), store.OperationFilter{InstallationID: i.ID, Limit: 50}); err == nil && len(ops) > 0 {
		last := viewOperation(ops[0])
		v.LastOperation = &last
		v.LastFailure = lastFailure(ops)
	}
	return v
}

// limitsView is the --json shape of an installation's limits (0: none).
type limitsView struct {
	CPU         int    `json:"cpu"`
	MemoryBytes int64  `json:"memory_bytes"`
	Text        string `json:"text"`
}

func viewLimits(l store.Limits) limitsView {
	return limitsView{CPU: l.CPU, MemoryBytes: l.Memory, Text: l.String()}
}

// stateLine is the STATE column of status: the state, and the newest
// operation when it did not succeed, or else the newest that was to change
// what serves when that one did not; with nothing served and no operation,
// what to do.
// degraded is the state, saying how many instances run when not all do.
func degraded(v installationView) string {
	state := v.State
	if v.Running != nil && v.State == store.StateRunning && *v.Running < len(v.Instances) {
		state = fmt.Sprintf("degraded (%d of %d instances run)", *v.Running, len(v.Instances))
	}
	if v.VolumesOn != "" {
		state += ", kept on member " + v.VolumesOn + " by its volumes"
	}
	return state
}

func stateLine(v installationView) string {
	last := v.LastOperation
	if last != nil && last.Status == store.StatusSucceeded {
		last = v.LastFailure
	}
	if last == nil {
		if v.Instance == "" && v.LastOperation == nil && v.ChannelKind == store.ChannelBranch {
			return v.State + ", nothing deployed yet: push branch " + v.ChannelRef
		}
		return degraded(v)
	}
	line := fmt.Sprintf("%s, last %s %s", degraded(v), last.Type, last.Status)
	if last.Reason != "" {
		line += ": " + last.Reason
	} else {
		line += fmt.Sprintf(" (see: logs %d)", last.ID)
	}
	return line
}

func (s *Server) cmdStatus(c *call, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	insts, err := s.installationsNamed(c, pos, "status")
	if err != nil {
		return err
	}
	states, _ := s.engine.InstanceStates(c.ctx) // none when Incus does not answer: status still shows the store
	if *asJSON {
		views := []installationView{}
		for _, i := range insts {
			views = append(views, s.viewInstallation(i, states))
		}
		return writeJSON(c.out, views) // an array, also for one APP/ENV
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "INSTALLATION\tCHANNEL\tCOMMIT\tINSTANCE\tHOST\tLIMITS\tSTATE")
	for _, i := range insts {
		v := s.viewInstallation(i, states)
		instance := dash(i.Instance)
		if more := len(v.Instances) - 1; more > 0 {
			instance += fmt.Sprintf(" +%d", more)
		}
		if len(v.Draining) > 0 {
			instance += " (" + strings.Join(v.Draining, ", ") + " draining)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", i.Resource(), i.Channel(), dash(shortID(i.Commit)), instance, i.Host, i.Limits, stateLine(v))
	}
	return tw.Flush()
}

// operationView is the --json shape of an operation.
type operationView struct {
	ID          int64      `json:"id"`
	Type        string     `json:"type"`
	Resource    string     `json:"resource"`
	App         string     `json:"app"`
	Environment string     `json:"environment"`
	User        string     `json:"user"`
	Status      string     `json:"status"`
	Commit      string     `json:"commit"`
	Channel     string     `json:"channel"`
	Reason      string     `json:"reason,omitempty"`
	Cleanup     string     `json:"cleanup,omitempty"` // after the swap: pending, done or failed: REASON
	QueuedAt    time.Time  `json:"queued"`
	StartedAt   *time.Time `json:"started"`
	FinishedAt  *time.Time `json:"finished"`
}

func viewOperation(o store.Operation) operationView {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return operationView{ID: o.ID, Type: string(o.Type), Resource: o.Resource(), App: o.App, Environment: o.Environment,
		User: o.User, Status: o.Status, Commit: o.Commit, Channel: o.Channel, Reason: o.Reason, Cleanup: o.Cleanup,
		QueuedAt: o.QueuedAt, StartedAt: opt(o.StartedAt), FinishedAt: opt(o.FinishedAt)}
}

// oneResource reads the one APP/ENV a command takes.
func oneResource(pos []string, command string) (app, env string, err error) {
	if len(pos) != 1 {
		return "", "", usageError(command + " takes APP/ENV")
	}
	return channels.ParseResource(pos[0])
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// withProxyPort is host as a browser reaches it through the front proxy:
// with the proxy's port when it is not 80.
func (s *Server) withProxyPort(host string) string {
	if s.cfg.ProxyAddr == nil {
		return host
	}
	_, port, err := net.SplitHostPort(s.cfg.ProxyAddr())
	if err != nil || port == "80" || port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// installationsNamed is the one installation of pos (its gate checked it),
// or with none every installation the user may see.
func (s *Server) installationsNamed(c *call, pos []string, command string) ([]store.Installation, error) {
	switch len(pos) {
	case 0:
		all, err := s.store.Installations(c.ctx, "")
		if err != nil {
			return nil, err
		}
		var insts []store.Installation
		for _, i := range all {
			if s.canSeeEnv(c.ctx, c.user, i.Environment) {
				insts = append(insts, i)
			}
		}
		return insts, nil
	case 1:
		inst, err := s.installationArg(c, pos[0])
		if err != nil {
			return nil, err
		}
		return []store.Installation{inst}, nil
	}
	return nil, usageError(command + " takes at most one APP/ENV")
}

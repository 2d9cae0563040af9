package hooks

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/slipway-dev/slipway/channels"
)

func init() {
	register([]command{
		{"user add NAME [--admin]", "add a user (then: key add NAME < key.pub)", serverAdmin, (*Server).cmdUserAdd},
		{"user remove NAME", "remove a user; their past operations keep their name", serverAdmin, (*Server).cmdUserRemove},
		{"users [--json]", "list users", serverAdmin, (*Server).cmdUsers},
		{"key add NAME", "register the public key on stdin for user NAME", ownAccount(0, "you may add keys only to your own account"), (*Server).cmdKeyAdd},
		{"key list [NAME] [--json]", "list registered keys", ownAccount(0, "you may list only your own keys"), (*Server).cmdKeyList},
		{"key remove FINGERPRINT", "unregister a key", anyone, (*Server).cmdKeyRemove},
		{"grant USER ENV viewer|deployer|admin|backup", "give USER a role in ENV", onEnvironment(1, true), (*Server).cmdGrant},
		{"revoke USER ENV", "take USER's role in ENV away", onEnvironment(1, true), (*Server).cmdRevoke},
		{"access [ENV] [--json]", "who holds which role where", eitherEnvironmentOrServer, (*Server).cmdAccess},
		{"report list ENV [--json]", "the weekly activity reports of ENV", onEnvironment(0, false), (*Server).cmdReportList},
		{"report get ENV WEEK", "one report as CSV on stdout (WEEK like 2026-W47)", onEnvironment(0, false), (*Server).cmdReportGet},
		{"report make ENV WEEK", "make (or remake) a week's report now", onEnvironment(0, true), (*Server).cmdReportMake},
	}...)
}

var errAdminOnly = errors.New("only an admin may do that")

func (s *Server) cmdUserAdd(c *call, args []string) error {
	fs := flag.NewFlagSet("user add", flag.ContinueOnError)
	admin := fs.Bool("admin", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("user add takes one name")
	}
	if err := s.engine.AddUser(c.ctx, c.user, pos[0], *admin); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Added user %s. Register their key: ssh ... key add %s < their_key.pub\n", pos[0], pos[0])
	return nil
}

func (s *Server) cmdUserRemove(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("user remove takes one name")
	}
	if err := s.engine.RemoveUser(c.ctx, c.user, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Removed user %s; their keys no longer work, their operations stay on record\n", args[0])
	return nil
}

// userView is the --json shape of a user.
type userView struct {
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) cmdUsers(c *call, args []string) error {
	pos, asJSON, err := jsonFlagOnly("users", args)
	if err != nil {
		return err
	}
	if len(pos) != 0 {
		return usageError("users takes no arguments")
	}
	users, err := s.store.Users(c.ctx)
	if err != nil {
		return err
	}
	if asJSON {
		views := []userView{}
		for _, u := range users {
			views = append(views, userView{Name: u.Name, Admin: u.Admin, CreatedAt: u.CreatedAt})
		}
		return writeJSON(c.out, views)
	}
	for _, u := range users {
		role := ""
		if u.Admin {
			role = " (admin everywhere)"
		}
		fmt.Fprintf(c.out, "%s%s\n", u.Name, role)
	}
	return nil
}

func (s *Server) cmdKeyAdd(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("key add takes a user name and the public key on stdin")
	}
	line, err := io.ReadAll(io.LimitReader(c.sess, 16<<10))
	if err != nil {
		return err
	}
	if n := countKeyLines(line); n > 1 {
		return fmt.Errorf("stdin holds %d keys: add one key at a time (key add NAME < key.pub)", n)
	}
	key, fp, err := ParseAuthorizedKey(line)
	if err != nil {
		return errors.New("stdin is not an SSH public key (give the .pub file: key add NAME < key.pub)")
	}
	if err := s.engine.AddKey(c.ctx, c.user, args[0], fp, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Added key %s for %s\n", fp, args[0])
	return nil
}

// countKeyLines counts the lines of an authorized_keys text that are not
// blank or comments.
func countKeyLines(text []byte) int {
	n := 0
	for _, l := range strings.Split(string(text), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			n++
		}
	}
	return n
}

// keyView is the --json shape of a registered key.
type keyView struct {
	User        string    `json:"user"`
	Fingerprint string    `json:"fingerprint"`
	Type        string    `json:"type"`
	CreatedAt   time.Time `json:"created_at"`
}

func (s *Server) cmdKeyList(c *call, args []string) error {
	args, asJSON, err := jsonFlagOnly("key list", args)
	if err != nil {
		return err
	}
	if len(args) > 1 {
		return usageError("key list takes at most a user name")
	}
	user := c.user.Name
	if len(args) == 1 {
		user = args[0]
	} else if c.user.Admin {
		user = ""
	}
	keys, err := s.store.Keys(c.ctx, user)
	if err != nil {
		return err
	}
	if asJSON {
		views := []keyView{}
		for _, k := range keys {
			kind, _, _ := strings.Cut(k.PublicKey, " ")
			views = append(views, keyView{User: k.User, Fingerprint: k.Fingerprint, Type: kind, CreatedAt: k.CreatedAt})
		}
		return writeJSON(c.out, views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tFINGERPRINT\tTYPE\tADDED")
	for _, k := range keys {
		kind, _, _ := strings.Cut(k.PublicKey, " ")
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.User, k.Fingerprint, kind, stamp(k.CreatedAt))
	}
	return tw.Flush()
}

func (s *Server) cmdKeyRemove(c *call, args []string) error {
	if len(args) != 1 {
		return usageError("key remove takes a fingerprint (see key list)")
	}
	if err := s.engine.RemoveKey(c.ctx, c.user, args[0]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Removed key %s\n", args[0])
	return nil
}

// envForAdmin checks an environment exists and the user administers it; one
// the user may not see is reported as unknown.
func (s *Server) envForAdmin(c *call, env string) error {
	if _, err := s.store.EnvironmentByName(c.ctx, env); err != nil || !s.canSeeEnv(c.ctx, c.user, env) && !c.user.Admin {
		return fmt.Errorf("unknown environment %s", env)
	}
	if !s.canAdmin(c.ctx, c.user, env) {
		return fmt.Errorf("only an admin of %s may do that", env)
	}
	return nil
}

func (s *Server) cmdGrant(c *call, args []string) error {
	if len(args) != 3 {
		return usageError("grant takes USER ENV ROLE")
	}
	user, env, role := args[0], args[1], args[2]
	if err := s.engine.Grant(c.ctx, c.user, user, env, role); err != nil {
		if errors.Is(err, channels.ErrInvalidName) {
			return usageError(userMessage(err))
		}
		return err
	}
	fmt.Fprintf(c.out, "%s is now %s in %s\n", user, role, env)
	return nil
}

func (s *Server) cmdRevoke(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("revoke takes USER ENV")
	}
	if err := s.engine.Revoke(c.ctx, c.user, args[0], args[1]); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s has no role in %s any more\n", args[0], args[1])
	return nil
}

// grantView is the --json shape of a role held in an environment.
type grantView struct {
	Environment string `json:"environment"`
	User        string `json:"user"`
	Role        string `json:"role"`
}

func (s *Server) cmdAccess(c *call, args []string) error {
	args, asJSON, err := jsonFlagOnly("access", args)
	if err != nil {
		return err
	}
	if len(args) > 1 {
		return usageError("access takes at most one environment")
	}
	env := ""
	if len(args) == 1 {
		env = args[0]
	}
	grants, err := s.store.Grants(c.ctx, env)
	if err != nil {
		return err
	}
	if asJSON {
		views := []grantView{}
		for _, g := range grants {
			views = append(views, grantView{Environment: g.Environment, User: g.User, Role: g.Role})
		}
		return writeJSON(c.out, views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tUSER\tROLE")
	for _, g := range grants {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", g.Environment, g.User, g.Role)
	}
	return tw.Flush()
}

// envForView checks the user may see an environment's activity.
func (s *Server) envForView(c *call, env string) error {
	if _, err := s.store.EnvironmentByName(c.ctx, env); err == nil && s.canSeeEnv(c.ctx, c.user, env) {
		return nil
	}
	// The reports of a deleted environment stay readable by admins.
	if reports, _ := s.store.Reports(c.ctx, env); c.user.Admin && len(reports) > 0 {
		return nil
	}
	return fmt.Errorf("unknown environment %s", env)
}

// reportView is the --json shape of a weekly report (its CSV: report get).
type reportView struct {
	Environment string    `json:"environment"`
	Week        string    `json:"week"`
	Operations  int       `json:"operations"`
	OperationID int64     `json:"operation_id"`
	CreatedAt   time.Time `json:"created_at"`
}

func (s *Server) cmdReportList(c *call, args []string) error {
	args, asJSON, err := jsonFlagOnly("report list", args)
	if err != nil {
		return err
	}
	if len(args) != 1 {
		return usageError("report list takes an environment")
	}
	reports, err := s.store.Reports(c.ctx, args[0])
	if err != nil {
		return err
	}
	if asJSON {
		views := []reportView{}
		for _, r := range reports {
			views = append(views, reportView{Environment: r.Environment, Week: r.Week, Operations: r.Rows,
				OperationID: r.OperationID, CreatedAt: r.CreatedAt})
		}
		return writeJSON(c.out, views)
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WEEK\tOPERATIONS\tMADE")
	for _, r := range reports {
		fmt.Fprintf(tw, "%s\t%d\t%s\n", r.Week, r.Rows, stamp(r.CreatedAt))
	}
	return tw.Flush()
}

func (s *Server) cmdReportGet(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("report get takes ENV and WEEK")
	}
	r, err := s.store.ReportByWeek(c.ctx, args[0], args[1])
	if err != nil {
		return fmt.Errorf("no report for %s in week %s (see: report list %s)", args[0], args[1], args[0])
	}
	_, err = c.out.Write(r.CSV)
	return err
}

func (s *Server) cmdReportMake(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("report make takes ENV and WEEK")
	}
	op, err := s.engine.MakeReport(c.ctx, args[0], args[1], c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

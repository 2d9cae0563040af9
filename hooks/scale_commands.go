package hooks

import (
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

func init() {
	register([]command{
		{"scale APP/ENV [TYPE=COUNT...] [--surge N] [--json]", "show how many instances of each process type run; with TYPE=COUNT (web=3 worker=2) start or retire instances to reach the counts, kept by every later deploy; --surge N has rolling deploys start N new instances at a time (0: all at once)", scaleGate, (*Server).cmdScale},
		{"ps APP/ENV [--json]", "every instance of the installation: process type, commit, state (starting, serving, running, draining, stopped), restarts and start time", onInstallation(channels.ActionView), (*Server).cmdPs},
	}...)
}

// scaleGate: reading the counts is for viewers, changing them for deployers.
func scaleGate(s *Server, c *call, a cmdArgs) error {
	_, surge := a.flags["surge"]
	if len(a.pos) > 1 || surge {
		return onInstallation(channels.ActionDeploy)(s, c, a)
	}
	return onInstallation(channels.ActionView)(s, c, a)
}

type scaleView struct {
	Resource  string         `json:"resource"`
	Formation map[string]int `json:"formation"` // the counts set; a type not in it runs once
	Surge     int            `json:"surge"`
}

func (s *Server) cmdScale(c *call, args []string) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	surgeFlag := fs.String("surge", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) < 1 {
		return usageError("scale takes APP/ENV, then TYPE=COUNT for each process type to change")
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	var surge *int
	if *surgeFlag != "" {
		n, err := strconv.Atoi(*surgeFlag)
		if err != nil {
			return usageError(fmt.Sprintf("--surge %q is not a number", *surgeFlag))
		}
		surge = &n
	}
	if len(pos) == 1 && surge == nil {
		return s.showScale(c, app, env, *asJSON)
	}
	if *asJSON {
		return usageError("--json reads the counts; it does not go with TYPE=COUNT or --surge")
	}
	op, err := s.engine.Scale(c.ctx, app, env, pos[1:], surge, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

func (s *Server) showScale(c *call, app, env string, asJSON bool) error {
	inst, err := s.store.InstallationByName(c.ctx, app, env)
	if err != nil {
		return fmt.Errorf("unknown installation %s/%s", app, env)
	}
	if asJSON {
		return writeJSON(c.out, []scaleView{{Resource: inst.Resource(), Formation: inst.Formation, Surge: inst.Surge}})
	}
	fmt.Fprintf(c.out, "%s: %s; rolling deploys start %s\n", inst.Resource(), s.engine.DescribeFormation(inst), channels.DescribeSurge(inst.Surge))
	return nil
}

type instanceView struct {
	Name      string     `json:"name"`
	Process   string     `json:"process"`
	Commit    string     `json:"commit"`
	State     string     `json:"state"`
	Restarts  int        `json:"restarts"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	Member    string     `json:"member,omitempty"` // the Incus cluster member it runs on
}

func (s *Server) cmdPs(c *call, args []string) error {
	fs := flag.NewFlagSet("ps", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	app, env, err := oneResource(pos, "ps")
	if err != nil {
		return err
	}
	inst, err := s.store.InstallationByName(c.ctx, app, env)
	if err != nil {
		return fmt.Errorf("unknown installation %s/%s", app, env)
	}
	reports, err := s.engine.Instances(c.ctx, inst)
	if err != nil {
		return fmt.Errorf("list the instances: %w", err)
	}
	views := make([]instanceView, 0, len(reports))
	for _, r := range reports {
		v := instanceView{Name: r.Name, Process: r.Process, Commit: r.Commit, State: r.State, Restarts: r.Restarts, Member: r.Member}
		if !r.StartedAt.IsZero() {
			t := r.StartedAt
			v.StartedAt = &t
		}
		views = append(views, v)
	}
	if *asJSON {
		return writeJSON(c.out, views)
	}
	return writeInstances(c, inst, views)
}

func writeInstances(c *call, inst store.Installation, views []instanceView) error {
	if len(views) == 0 {
		fmt.Fprintf(c.out, "%s runs no instance\n", inst.Resource())
		return nil
	}
	clustered := false
	for _, v := range views {
		clustered = clustered || v.Member != ""
	}
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	header := "INSTANCE\tPROCESS\tCOMMIT\tSTATE\tRESTARTS\tSTARTED"
	if clustered {
		header += "\tMEMBER"
	}
	fmt.Fprintln(tw, header)
	for _, v := range views {
		started := "-"
		if v.StartedAt != nil {
			started = v.StartedAt.UTC().Format(time.RFC3339)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", v.Name, dash(v.Process), shortID(v.Commit), v.State, v.Restarts, started)
		if clustered {
			line += "\t" + dash(v.Member)
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

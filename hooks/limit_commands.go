package hooks

import (
	"flag"
	"fmt"

	"github.com/slipway-dev/slipway/channels"
)

func init() {
	register([]command{
		{"limits APP/ENV [--cpu N|none] [--memory SIZE|none] [--json]", "show the CPU and memory limits of the installation's instances; with --cpu or --memory (512MiB, 2GiB) change them and redeploy", limitsGate, (*Server).cmdLimits},
	}...)
}

// limitsGate: reading limits is for viewers, changing them for deployers.
func limitsGate(s *Server, c *call, a cmdArgs) error {
	_, cpu := a.flags["cpu"]
	_, memory := a.flags["memory"]
	if cpu || memory {
		return onInstallation(channels.ActionDeploy)(s, c, a)
	}
	return onInstallation(channels.ActionView)(s, c, a)
}

func (s *Server) cmdLimits(c *call, args []string) error {
	fs := flag.NewFlagSet("limits", flag.ContinueOnError)
	cpuFlag := fs.String("cpu", "", "")
	memoryFlag := fs.String("memory", "", "")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	app, env, err := oneResource(pos, "limits")
	if err != nil {
		return err
	}
	var cpus *int
	var memory *int64
	fs.Visit(func(f *flag.Flag) {
		switch {
		case err != nil:
		case f.Name == "cpu":
			var n int
			n, err = channels.ParseCPU(*cpuFlag)
			cpus = &n
		case f.Name == "memory":
			var n int64
			n, err = channels.ParseMemory(*memoryFlag)
			memory = &n
		}
	})
	if err != nil {
		return err
	}
	if cpus == nil && memory == nil {
		inst, err := s.store.InstallationByName(c.ctx, app, env)
		if err != nil {
			return fmt.Errorf("unknown installation %s/%s", app, env)
		}
		if *asJSON { // an array of one, as every reading command
			return writeJSON(c.out, []limitsView{viewLimits(inst.Limits)})
		}
		fmt.Fprintf(c.out, "%s: %s\n", inst.Resource(), inst.Limits)
		return nil
	}
	if *asJSON {
		return usageError("--json reads the limits; it does not go with --cpu or --memory")
	}
	op, err := s.engine.SetLimits(c.ctx, app, env, cpus, memory, c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

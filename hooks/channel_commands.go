package hooks

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/slipway-dev/slipway/channels"
	"github.com/slipway-dev/slipway/store"
)

func init() {
	register([]command{
		{"track APP/ENV BRANCH", "follow a branch again and deploy its head", onInstallation(channels.ActionDeploy), (*Server).cmdTrack},
		{"pin APP/ENV COMMIT|TAG", "serve one commit (the rollback); pushes are ignored until track", onInstallation(channels.ActionDeploy), (*Server).cmdPin},
		{"history APP/ENV [--limit N] [--json]", "the channel's recent commits, marking the served and deployed ones", onInstallation(channels.ActionView), (*Server).cmdHistory},
		{"login", "print a one-time sign-in link for the web page (valid 5 minutes)", anyone, (*Server).cmdLogin},
	}...)
}

func (s *Server) cmdTrack(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("track takes APP/ENV and a branch")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	op, err := s.engine.Track(c.ctx, app, env, args[1], c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

func (s *Server) cmdPin(c *call, args []string) error {
	if len(args) != 2 {
		return usageError("pin takes APP/ENV and a commit or tag")
	}
	app, env, err := channels.ParseResource(args[0])
	if err != nil {
		return err
	}
	op, err := s.engine.Pin(c.ctx, app, env, args[1], c.user.Name)
	if err != nil {
		return err
	}
	return s.followOperation(c.ctx, c.out, op)
}

// resource parses APP/ENV and checks the user may do action on it, for the
// gate (gate.go); an installation the user may not see is reported exactly
// like one that does not exist.
func (s *Server) resource(c *call, arg string, a channels.Action) (app, env string, err error) {
	app, env, err = channels.ParseResource(arg)
	if err != nil {
		return "", "", err
	}
	if _, err := s.store.InstallationByName(c.ctx, app, env); err != nil || !s.engine.Can(c.ctx, c.user, env, channels.ActionView) {
		return "", "", fmt.Errorf("unknown installation %s/%s", app, env)
	}
	if !s.engine.Can(c.ctx, c.user, env, a) {
		return "", "", fmt.Errorf("you may not change %s/%s: ask an admin of %s for the deployer role", app, env, env)
	}
	return app, env, nil
}

// follow returns a function that follows the operation a command started,
// or returns the error that kept it from starting:
// return s.follow(c)(s.engine.Restart(...)).
func (s *Server) follow(c *call) func(store.Operation, error) error {
	return func(op store.Operation, err error) error {
		if err != nil {
			return err
		}
		return s.followOperation(c.ctx, c.out, op)
	}
}

// followOperation streams an operation's log until it ends; a failure becomes
// the command's exit status.
func (s *Server) followOperation(ctx context.Context, w io.Writer, op store.Operation) error {
	if op.Resource() == "" { // slipway's own: the store, the system, the web page's certificate
		fmt.Fprintf(w, "Operation %d: %s\n", op.ID, op.Type)
	} else {
		fmt.Fprintf(w, "Operation %d: %s of %s\n", op.ID, op.Type, op.Resource())
	}
	final, err := s.engine.Follow(ctx, op.ID, 0, func(l store.LogLine) error {
		_, err := fmt.Fprintln(w, l.Text)
		return err
	})
	if err != nil {
		return fmt.Errorf("stopped following operation %d; it goes on (follow it with: logs %d)", op.ID, op.ID)
	}
	if final.Status != store.StatusSucceeded {
		return fmt.Errorf("%s of %s %s: %s", final.Type, final.Resource(), final.Status, final.Reason)
	}
	return nil
}

// commitView is the --json shape of a commit of history: newest first, the
// installation itself is status's.
type commitView struct {
	ID       string    `json:"id"`
	Subject  string    `json:"subject"`
	Author   string    `json:"author"`
	Date     time.Time `json:"date"`
	Served   bool      `json:"served"`
	Deployed bool      `json:"deployed"`
}

func (s *Server) cmdHistory(c *call, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "")
	limit := fs.Int("limit", 20, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("history takes APP/ENV")
	}
	if *limit < 1 {
		return usageError(fmt.Sprintf("--limit %d: give a number of commits, 1 or more", *limit))
	}
	app, env, err := channels.ParseResource(pos[0])
	if err != nil {
		return err
	}
	h, err := s.engine.History(c.ctx, app, env, *limit)
	if err != nil {
		return err
	}
	if *asJSON {
		v := []commitView{}
		for _, e := range h.Commits {
			v = append(v, commitView{ID: e.ID, Subject: e.Subject, Author: e.Author,
				Date: time.Unix(e.When, 0).UTC(), Served: e.Served, Deployed: e.Deployed})
		}
		return writeJSON(c.out, v)
	}
	fmt.Fprintf(c.out, "%s follows %s\n", h.Installation.Resource(), h.Installation.Channel())
	tw := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	for _, e := range h.Commits {
		mark := " "
		switch {
		case e.Served:
			mark = "*"
		case e.Deployed:
			mark = "+"
		}
		fmt.Fprintf(tw, "%s %s\t%s\t%s\t%s\n", mark, shortID(e.ID), time.Unix(e.When, 0).UTC().Format("2006-01-02 15:04"), e.Author, e.Subject)
	}
	tw.Flush()
	fmt.Fprintln(c.out, "* served now   + deployed before (pin APP/ENV COMMIT to roll back to it)")
	return nil
}

func (s *Server) cmdLogin(c *call, args []string) error {
	if len(args) != 0 {
		return usageError("login takes no arguments")
	}
	token := store.NewSecret()
	if err := s.store.CreateLoginToken(c.ctx, c.user.ID, c.keyFingerprint, token, 5*time.Minute); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "%s/login/%s\n", s.cfg.WebURL(), token)
	fmt.Fprintln(c.out, "Open it within 5 minutes; it works once.")
	return nil
}
